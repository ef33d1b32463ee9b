"""The four partitions of docs/methods.md section 3, for a whole padded batch at once.

A partition is a ``[B, L]`` int64 tensor of *labels*: the part of frame ``t`` is named by the
index of its earliest frame (so labels are canonical and ``label[t] <= t``), padding is -1.
Every function takes ``codes [B, L, G]`` (int32 or int64 in ``[0, V)``, padding included: `pool`
zeroes it) and ``mask [B, L]`` (True on a prefix of true frames, as `length_mask` makes it; each
utterance has at least one). No Python loop runs over frames: loops run over codebooks, over
chunks of utterances that bound a table's memory (`per_code`), or over rounds of an iteration
that processes the whole batch each round. On a CPU, most functions hand the work to a compiled
loop over one utterance at a time instead (`kernels`), which computes the same labels. Nothing
depends on ``V^G`` (codec codes have up to 32 codebooks of 2048 entries).
"""

import functools

import torch
from torch import Tensor

from vqpool.pooling import kernels
from vqpool.pooling.masking import index_dtype, row_chunks
from vqpool.pooling.stats import code_tuple_ids, exact_tuple_ids, summed_tuple_hash

NO_PART = kernels.NO_PART
SHIFTS = 8  # offsets _next_disjoint rules out from runs before chasing the rare long ones
# _next_disjoint's chunks (2 MiB of int32 codes): read from memory once, then worked in cache;
# smaller chunks cost more in calls than the cache saves (docs/benchmarks.md)
SHIFT_CHUNK_CODES = 2**19
TABLE_ENTRIES = 1 << 18  # per_code's (utterance, codebook, code) table: 1 MiB of int32
# per_code zeroes its table after a chunk that has at least 1/DENSE_RESET code a table entry (one
# sequential write is cheaper then: zeroing an entry costs about 1/14 of gathering a code); a
# sparser chunk reads its entries before adding instead
DENSE_RESET = 16
FEW_CODEBOOKS = 4  # up to this many, loops over codebooks beat reductions over them
ALL_TRUE = 0x0101010101010101  # eight True bools read as one int64


def squash_and(codes: Tensor, mask: Tensor) -> Tensor:
    """Maximal runs of consecutive frames with equal code tuples."""
    return _runs(_new_run(codes, share=False), mask)


def squash_or(codes: Tensor, mask: Tensor) -> Tensor:
    """Paper: maximal runs in which each frame shares a code (same codebook) with its predecessor."""
    return _runs(_new_run(codes, share=True), mask)


def squash_or_first(codes: Tensor, mask: Tensor) -> Tensor:
    """Reference: a run continues while the frame shares a code with the run's *first* frame.

    Sequential as stated, but exact in parallel: ``next_start[t]`` (the first later frame sharing
    no code with ``t``) is where a run starting at ``t`` would end, so the run starts are the
    orbit of frame 0 under ``next_start`` (`_orbit_of_first_frame`). A CPU follows the runs
    themselves in a compiled loop (`kernels.runs_sharing_with_first`).
    """
    if kernels.serves(codes):
        return kernels.runs_sharing_with_first(codes, mask.sum(1))
    return _runs(_orbit_of_first_frame(_next_disjoint(codes, mask)), mask)


def allsquash_and(codes: Tensor, mask: Tensor) -> Tensor:
    """Frames with equal code tuples anywhere in the utterance."""
    return _masked(_tuple_groups(codes, mask), mask)


def allsquash_or(codes: Tensor, mask: Tensor) -> Tensor:
    """Paper: connected components of the graph linking frames that share a code in one codebook.

    The paper's squash-or runs are connected already, so they are the nodes (numbered over the
    flattened batch, in time order). Each codebook adds edges from a node to the node of the
    earliest frame holding each of its codes. FastSV (Zhang, Azad, Hu 2020) then hooks, in every
    round, the parents of both ends of an edge and the ends themselves to the least grandparent
    across it, and shortcuts. Parents only decrease and stay inside the component, so at the
    fixed point each component points at its earliest node, whose first frame labels it.
    A CPU runs union-find instead, one utterance at a time (`kernels.linked_components`).
    """
    if kernels.serves(codes):
        return kernels.linked_components(codes, mask.sum(1), int(codes.max()) + 1)
    batch, length, groups = codes.shape
    changed = codes[:, 1:] != codes[:, :-1]
    starts = torch.cat([mask[:, :1], _all_codebooks(changed) & mask[:, 1:]], 1)
    node = starts.view(-1).cumsum(0) - 1  # padding inherits a node id, but joins no edge
    node_frame = starts.view(-1).nonzero().squeeze(1)
    # Edges from the first frame of each run of equal code in each codebook to the node of the
    # earliest frame of the utterance holding that code (nodes count up in time, so: the least
    # node holding it); edges inside one node carry nothing.
    # A run start is a change in every codebook, so `changed` alone marks the first frames of
    # runs; padding's edges (its code 0 may be held earlier) are dropped from the short list.
    target = per_code(codes, mask, int(codes.max()) + 1, node.view(batch, length))
    edge = target != node.int().view(batch, length, 1)
    edge[:, 1:] &= changed
    frame_code = edge.view(-1).nonzero().squeeze(1)  # (b L + t) G + g
    frame_code = frame_code[mask.view(-1).index_select(0, frame_code // groups)]
    source = node.index_select(0, frame_code // groups)
    target = target.view(-1).index_select(0, frame_code).long()
    parent = torch.arange(len(node_frame), device=codes.device)
    parent.scatter_reduce_(0, source, target, "amin")
    for _ in range(length):  # each round at least halves the distance to the root (FastSV)
        grandparent = parent.gather(0, parent)
        update = grandparent.clone()
        for near, far in ((source, target), (target, source)):
            across = grandparent.gather(0, far)
            update.scatter_reduce_(0, parent.gather(0, near), across, "amin")
            update.scatter_reduce_(0, near, across, "amin")
        if torch.equal(update, parent):
            break
        parent = update
    first_frame = node_frame.gather(0, parent.gather(0, node.clamp_min(0))).view(batch, length)
    return _masked(first_frame - torch.arange(batch, device=codes.device)[:, None] * length, mask)


def allsquash_or_greedy(codes: Tensor, mask: Tensor) -> Tensor:
    """Reference: the greedy chaining of docs/methods.md section 3, exactly.

    Cut runs of equal first code. A run R merges into the part seeded with second code v iff its
    frame-by-frame scan meets v before any larger code, i.e. iff v is one of the running-maximum
    values of R's second codes, its *record set*. The first remaining run always seeds, so run j
    seeds iff no earlier *seed* has its v in j's record set: the lexicographically first maximal
    independent set of a time-ordered conflict graph, and run j joins the earliest such seed.
    Rounds decide, in parallel, every run whose earlier conflicts are all decided (Blelloch et
    al., "Greedy sequential maximal independent set is parallel on average"): few rounds, never
    more than the number of runs. With one codebook, its code serves as both first and second.
    A CPU decides the runs one after another in a compiled loop (`kernels.greedy_chaining`).
    """
    if kernels.serves(codes):
        values = int(codes[..., : min(2, codes.shape[2])].max()) + 1  # the two codebooks it reads
        return kernels.greedy_chaining(codes, mask.sum(1), values)
    batch, length, groups = codes.shape
    first, second = codes[..., 0].long(), codes[..., min(1, groups - 1)].long()
    positions = torch.arange(length, device=codes.device)
    if int(second.max()) >= length:  # only order and equality within an utterance matter
        second = _ranks(second, mask)
    values = int(second.max()) + 1
    none = length + 1  # "no run": larger than every run index

    # runs of equal first code, numbered in time order; run `length` is a sink for padding
    starts = _new_run(first[..., None], share=False) & mask
    run = (starts.cumsum(1) - 1).masked_fill(~mask, length)
    run_slot = torch.where(starts, run, length)
    run_start = torch.zeros(batch, length + 1, dtype=torch.long, device=codes.device)
    run_start.scatter_(1, run_slot, positions.expand(batch, -1))
    seed_code = torch.full_like(run_start, values)  # v: the second code of the run's first frame
    seed_code.scatter_(1, run_slot, second)
    seed_code[:, length] = values
    num_runs = starts.sum(1, keepdim=True)

    # record set: the running maximum of the second code inside each run (a segmented cummax)
    offset = run * values
    running_max = (second + offset).cummax(1).values - offset
    record = starts.clone()
    record[:, 1:] |= running_max[:, 1:] != running_max[:, :-1]
    record &= mask
    record_run = torch.where(record, run, length)
    record_code = torch.where(record, running_max, values)

    undecided, seed, merged = 0, 1, 2
    run_index = torch.arange(length + 1, device=codes.device).expand(batch, -1)
    status = torch.where(run_index < num_runs, undecided, merged)

    def conflicts(status: Tensor) -> tuple[Tensor, Tensor]:
        """Per run, the earliest not-merged run seeded with a code of its record set, and the
        earliest *seed* seeded so: per code that seed, if any, is the earliest not-merged run."""
        alive = torch.where(status != merged, run_index, none)
        first_alive = torch.full((batch, values + 1), none, device=codes.device)
        first_alive.scatter_reduce_(1, seed_code, alive, "amin")
        is_seed = status.gather(1, first_alive.clamp_max(length)) == seed
        first_seed = torch.where(is_seed, first_alive, none)
        return earliest(first_alive), earliest(first_seed)

    def earliest(per_code: Tensor) -> Tensor:
        """For every run, the least of ``per_code[v]`` over the v of its record set."""
        found = torch.full_like(run_start, none)
        return found.scatter_reduce_(1, record_run, per_code.gather(1, record_code), "amin")

    for _ in range(length):
        conflict, claimed_by = conflicts(status)
        open_ = status == undecided
        status = torch.where(open_ & (claimed_by < run_index), merged, status)
        status = torch.where(open_ & (conflict == run_index), seed, status)
        if not (status == undecided).any():
            break
    part = torch.where(status == seed, run_index, conflicts(status)[1]).clamp_max(length)
    return _masked(run_start.gather(1, part.gather(1, run)), mask)


def partition_weights(labels: Tensor, mask: Tensor) -> Tensor:
    """``w_t = 1 / (K size(P(t)))``: each of the K parts gets 1/K, shared by its frames."""
    size, parts = _part_sizes(labels, mask)
    return torch.where(mask, 1 / (parts * size.gather(1, labels.clamp_min(0))), 0.0)


def greedy_tuple_weights(labels: Tensor, codes: Tensor, mask: Tensor) -> Tensor:
    """Reference vq-allsquash-or weights: per code tuple, ``1 / (|part| K)`` of the *latest*
    created part holding that tuple (parts are created in time order of their first frame, so
    the latest is the largest label); no renormalisation."""
    size, parts = _part_sizes(labels, mask)
    tuple_group = _tuple_groups(codes, mask)
    latest = torch.full_like(labels, NO_PART).scatter_reduce_(1, tuple_group, labels, "amax")
    part = latest.gather(1, tuple_group).clamp_min(0)
    return torch.where(mask, 1 / (parts * size.gather(1, part)), 0.0)


def _part_sizes(labels: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Frames per part (``[B, L]``, indexed by label, fp32) and parts per utterance ``[B, 1]``."""
    size = torch.zeros(labels.shape, device=labels.device).scatter_add_(
        1, labels.clamp_min(0), mask.float()
    )
    return size, (size > 0).sum(1, keepdim=True)


def per_code(codes: Tensor, mask: Tensor, values: int, least: Tensor | None = None, *,
             total: bool = False) -> Tensor:
    """``[B, L, G]`` int32: for frame t and codebook g, over the true frames of t's utterance
    that hold code ``q_t^g`` in codebook g, their number, or with ``least [B, L]`` (integers
    below 2^31) the least of theirs; ``total`` sums the counts over the codebooks (``[B, L]``).
    Codes lie in ``[0, values)`` and are 0 on padding (`pool` zeroes it); padding entries of the
    result are meaningless. Padding frames' ``least`` must be no smaller than every true frame's
    of their utterance (node ids that count up in time are), so that they never lower it.

    A table of (utterance, codebook, code) entries serves a few utterances at a time (at most
    `TABLE_ENTRIES`, or one utterance's G V, entries, and on a CPU at most `row_chunks`'s codes:
    it stays in cache): memory is bounded and work O(B L G), whatever V and G. The counts table
    is zeroed after a chunk with many codes per entry; a sparser chunk instead reads its
    entries before and after adding to them (cheaper than any reset). Padding is counted in
    and then taken out of code 0 (it holds 0), which is cheaper than masking it; the least
    values need no mask (see above) and reset the table after each chunk. A CPU counts in a
    compiled loop instead (`kernels.code_counts`)."""
    if least is None and kernels.serves(codes):
        return kernels.code_counts(codes, mask.sum(1), values, total=total)
    batch, length, groups = codes.shape
    width = groups * values
    never = torch.iinfo(torch.int32).max
    chunks = row_chunks(batch, length * groups, codes.device, most=max(1, TABLE_ENTRIES // width))
    rows = min(chunks[0].stop, batch)  # utterances a chunk holds: the table's size
    entries = rows * width
    table = torch.full((entries,), 0 if least is None else never, dtype=torch.int32, device=codes.device)
    code_zero = table.view(rows, groups, values)[..., 0]  # [rows, G]
    base = torch.arange(rows, device=codes.device)[:, None, None] * width + torch.arange(
        groups, device=codes.device) * values
    base = base.to(index_dtype(codes, entries)).expand(rows, length, groups).contiguous()  # adding it needs no broadcast
    padding_frames = (length - mask.sum(1)).int()
    ones = torch.ones(rows * length * groups, dtype=torch.int32, device=codes.device)  # index_add_ copies an expanded one
    first = None if least is None else least.int()[..., None].expand(codes.shape)
    found = torch.empty(codes.shape[:2] if total else codes.shape, dtype=torch.int32, device=codes.device)
    for chunk in chunks:
        part = codes[chunk]
        used = part.shape[0]
        slot = (part + base[:used]).view(-1)
        if first is None:
            dense = table.numel() <= DENSE_RESET * slot.numel()
            before = None if dense else table.index_select(0, slot).view(part.shape)
            table.index_add_(0, slot, ones[: slot.numel()])
            code_zero[:used] -= padding_frames[chunk, None]
            got = table.index_select(0, slot).view(part.shape)
            if total:
                torch.sum(got, -1, dtype=torch.int32, out=found[chunk])
                if before is not None:
                    found[chunk] -= before.sum(-1, dtype=torch.int32)
            else:
                torch.sub(got, 0 if before is None else before, out=found[chunk])
            if dense and chunk.stop < batch:
                table.zero_()
        else:
            table.scatter_reduce_(0, slot.long(), first[chunk].reshape(-1), "amin")
            got = table.index_select(0, slot).view(part.shape)
            found[chunk] = got.sum(-1, dtype=torch.int32) if total else got
            if chunk.stop < batch:
                table.fill_(never)
    return found


def _ranks(codes: Tensor, mask: Tensor) -> Tensor:
    """``[B, L]`` codes -> their dense ranks within each utterance's true frames (order and
    equality kept; padding ranks above them all)."""
    keys, order = codes.masked_fill(~mask, torch.iinfo(torch.long).max).sort(dim=1)
    new = torch.ones_like(mask)
    new[:, 1:] = keys[:, 1:] != keys[:, :-1]
    return torch.empty_like(order).scatter_(1, order, new.cumsum(1) - 1)


def _new_run(codes: Tensor, *, share: bool) -> Tensor:
    """``[B, L]`` True where a run starts: frame 0, and frames that differ from their predecessor
    in some codebook (``share=False``) or in every codebook (``share=True``)."""
    differs = codes[:, 1:] != codes[:, :-1]
    cut = _all_codebooks(differs) if share else _any_codebook(differs)
    return torch.cat([cut.new_ones(cut.shape[0], 1), cut], dim=1)


def _runs(starts: Tensor, mask: Tensor) -> Tensor:
    """Label every frame with the latest run start at or before it."""
    positions = torch.arange(starts.shape[1], device=starts.device)
    return _masked(torch.where(starts, positions, 0).cummax(1).values, mask)


def _masked(labels: Tensor, mask: Tensor) -> Tensor:
    return labels.masked_fill(~mask, NO_PART)


def _tuple_groups(codes: Tensor, mask: Tensor) -> Tensor:
    """`_first_equal` of the code tuples: on a CPU a compiled loop compares the tuples
    themselves (`kernels.first_equal_tuples`), elsewhere their `_tuple_keys` are sorted."""
    if not kernels.serves(codes):
        return _first_equal(_tuple_keys(codes), mask)
    own = torch.arange(codes.shape[1], device=codes.device).expand(mask.shape)
    return torch.where(mask, kernels.first_equal_tuples(codes, mask.sum(1)), own)


def _tuple_keys(codes: Tensor) -> Tensor:
    """One int64 per code tuple, equal iff the tuples are equal: ``sum_g q^g V^g`` with V from
    the data while ``V^G`` fits int64, else the 64-bit `summed_tuple_hash` (two different
    tuples of one utterance share a key with probability 2^-64 per pair)."""
    values = int(codes.max()) + 1
    if exact_tuple_ids(values, codes.shape[-1]):
        return code_tuple_ids(codes, values)
    return summed_tuple_hash(codes, values)


def _all_codebooks(flags: Tensor) -> Tensor:
    """``[..., G]`` bool -> ``[...]``, True where every codebook's flag is."""
    return _fold_codebooks(flags, every=True)


def _any_codebook(flags: Tensor) -> Tensor:
    """``[..., G]`` bool -> ``[...]``, True where some codebook's flag is."""
    return _fold_codebooks(flags, every=False)


def _fold_codebooks(flags: Tensor, *, every: bool) -> Tensor:
    """AND (``every``) or OR over the last dimension. With few codebooks an explicit loop is
    much faster than a PyTorch reduction over a last dimension of size G; with many (codecs:
    8 to 32), so is reading 8 flags at once as one int64 word (a bool is one byte, 0 or 1),
    padded to a multiple of 8 with flags that change nothing, beats ``all(-1)``."""
    groups = flags.shape[-1]
    if groups <= FEW_CODEBOOKS:
        return functools.reduce(torch.logical_and if every else torch.logical_or, flags.unbind(-1))
    if groups % 8:
        flags = torch.cat([flags, flags.new_full((*flags.shape[:-1], 8 - groups % 8), every)], -1)
    words = flags.contiguous().view(torch.int64).unbind(-1)
    if every:
        return functools.reduce(torch.logical_and, (word == ALL_TRUE for word in words))
    return functools.reduce(torch.logical_or, (word != 0 for word in words))


def _first_equal(keys: Tensor, mask: Tensor) -> Tensor:
    """``[B, L]``: for each true frame, the earliest true frame of its utterance with the same key
    (a stable sort per row puts equal keys together, earliest first). Padding frames point at
    padding only, so they never join a true frame's group."""
    length = keys.shape[1]
    keys = keys.masked_fill(~mask, torch.iinfo(torch.long).max)
    sorted_keys, order = keys.sort(dim=1, stable=True)
    head = torch.ones_like(mask)
    head[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    positions = torch.arange(length, device=keys.device)
    earliest = order.gather(1, torch.where(head, positions, 0).cummax(1).values)
    return torch.empty_like(order).scatter_(1, order, earliest)


def _next_disjoint(codes: Tensor, mask: Tensor) -> Tensor:
    """``[B, L]``: for each true frame t, the first later frame sharing no code with t, or the
    utterance length; L on padding.

    No frame before ``t + o*`` qualifies, o* the first offset by which every codebook's run
    through t has ended (a run still going shares its code with t). Runs are short, so o*
    (up to SHIFTS) comes from flags of equal neighbours, cheap bool work, a cache-sized chunk
    of utterances at a time; then only ``t + o*`` needs its codes compared with t's (a code may
    come back). The rare frames where one did search on one frame at a time."""
    batch, length, groups = codes.shape
    lengths = mask.sum(1)
    positions = torch.arange(length, device=codes.device)
    answer = torch.where(mask, lengths[:, None], length)
    probe = torch.empty_like(answer)  # the first frame not yet ruled out, or L: none left
    for rows in row_chunks(batch, length * groups, codes.device, codes=SHIFT_CHUNK_CODES):
        part = codes[rows]
        candidate = positions + _runs_ended(part)  # [r, L]: t + o*
        tuples = part.reshape(-1, groups)
        at = (torch.arange(part.shape[0], device=codes.device)[:, None] * length
              + candidate.clamp_max(length - 1)).view(-1)
        disjoint = _all_codebooks(tuples.index_select(0, at) != tuples).view(part.shape[:2])
        inside = mask[rows] & (candidate < lengths[rows, None])
        answer[rows] = torch.where(inside & disjoint, candidate, answer[rows])
        probe[rows] = torch.where(inside & ~disjoint, candidate + 1, length)
    searching = probe < length
    if not searching.any():
        return answer
    flat_codes, flat_answer = codes.reshape(batch * length, groups), answer.view(-1)
    frame = searching.view(-1).nonzero().squeeze(1)  # flat index b L + t
    own = flat_codes.index_select(0, frame)
    row_start = frame - frame % length
    end = lengths.index_select(0, frame // length)
    probe = probe.view(-1).index_select(0, frame)  # a position in the utterance
    while frame.numel():
        differs = flat_codes.index_select(0, row_start + probe.clamp_max(length - 1)) != own
        stop = (probe >= end) | _all_codebooks(differs)
        flat_answer[frame[stop]] = torch.minimum(probe, end)[stop]
        keep = ~stop
        frame, own, row_start, end, probe = frame[keep], own[keep], row_start[keep], end[keep], probe[keep] + 1
    return answer


def _runs_ended(codes: Tensor) -> Tensor:
    """``[r, L]``: for each frame t, the first offset o <= SHIFTS such that in every codebook
    some frame of ``t+1 .. t+o`` holds another code than its predecessor, else SHIFTS + 1:
    one more than the most frames any codebook repeats t's code for, counted in bytes."""
    chunk, length, _ = codes.shape
    same = codes[:, 1:] == codes[:, :-1]  # [r, L-1, G]: frame t+1 repeats frame t's code
    repeats = same.to(torch.uint8)  # [r, L-1, G]: frames after t repeating its code, so far
    running = same  # [r, L-1-o, G]: codebook g repeats t's code through t+1+o
    for offset in range(1, min(SHIFTS, length - 1)):
        running = running[:, :-1] & same[:, offset:]
        repeats[:, : length - 1 - offset] += running
    ended = torch.full((chunk, length), SHIFTS + 1, device=codes.device)
    ended[:, :-1] = repeats.int().amax(-1) + 1  # a uint8 amax is twice as slow as widen + amax
    return ended


def _orbit_of_first_frame(next_start: Tensor, *, doubling: bool | None = None) -> Tensor:
    """``[B, L]`` True on ``0, f(0), f(f(0)), ...`` for ``f = next_start`` (values in (t, L]).

    A GPU doubles: after round r the marks hold ``f^i(0)`` for every ``i < 2^r``, log2 L
    rounds over the whole ``[B, L]`` batch. A CPU follows the orbits themselves, one step for
    every utterance at a time: as many steps as the longest orbit has runs, each touching B
    entries, which costs far less than the rounds' full-batch passes (``doubling`` chooses)."""
    batch, length = next_start.shape
    sink = torch.full((batch, 1), length, device=next_start.device)
    jump = torch.cat([next_start, sink], dim=1)
    on = torch.zeros_like(jump, dtype=torch.bool)
    if doubling is None:
        doubling = next_start.device.type != "cpu"
    if not doubling:
        frame = torch.zeros_like(sink)
        while True:
            on.scatter_(1, frame, True)
            frame = jump.gather(1, frame)
            if bool((frame == length).all()):
                return on[:, :length]
    on[:, 0] = True
    for _ in range(max(1, (length - 1).bit_length())):
        on.scatter_(1, torch.where(on, jump, length), True)
        jump = jump.gather(1, jump)
        if (jump[:, 0] == length).all():  # every orbit is shorter than 2^r: all found
            break
    return on[:, :length]
