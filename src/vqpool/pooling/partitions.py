"""The four partitions of docs/methods.md section 3, for a whole padded batch at once.

A partition is a ``[B, L]`` int64 tensor of *labels*: the part of frame ``t`` is named by the
index of its earliest frame (so labels are canonical and ``label[t] <= t``), padding is -1.
Every function takes ``codes [B, L, G]`` (int64 in ``[0, V)``, padding included: `pool` zeroes
it) and ``mask [B, L]`` (True on true frames; each utterance has at least one). No Python loop
runs over utterances or frames: loops run over codebooks, or over rounds of an iteration that
processes the whole batch each round.
"""

import functools
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from vqpool.pooling.stats import code_tuple_ids

NO_PART = -1
SHIFTS = 8  # offsets _next_disjoint tries on the whole batch before chasing the rare long runs


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
    orbit of frame 0 under ``next_start``, found by pointer doubling in ``log2 L`` rounds.
    """
    return _runs(_orbit_of_first_frame(_next_disjoint(codes, mask)), mask)


def allsquash_and(codes: Tensor, mask: Tensor) -> Tensor:
    """Frames with equal code tuples anywhere in the utterance."""
    return _masked(_first_equal(_tuple_keys(codes), mask), mask)


def allsquash_or(codes: Tensor, mask: Tensor) -> Tensor:
    """Paper: connected components of the graph linking frames that share a code in one codebook.

    The paper's squash-or runs are connected already, so they are the nodes (numbered over the
    flattened batch, in time order). Each codebook adds edges from a node to the node of the
    earliest frame holding each of its codes. FastSV (Zhang, Azad, Hu 2020) then hooks, in every
    round, the parents of both ends of an edge and the ends themselves to the least grandparent
    across it, and shortcuts. Parents only decrease and stay inside the component, so at the
    fixed point each component points at its earliest node, whose first frame labels it.
    """
    batch, length, _ = codes.shape
    starts = _new_run(codes, share=True) & mask
    node = starts.view(-1).cumsum(0) - 1  # padding inherits a node id, but joins no edge
    node_frame = starts.view(-1).nonzero().squeeze(1)
    values = int(codes.max()) + 1
    frames = torch.arange(batch * length, device=codes.device)
    spare = batch * values  # the table slot where padding goes
    row = torch.arange(batch, device=codes.device)[:, None] * values
    changes = (codes[:, 1:] != codes[:, :-1]).unbind(-1)
    sources, targets = [], []
    for code, code_change in zip(codes.unbind(-1), changes, strict=True):
        # the earliest frame of each (utterance, code) in this codebook
        slot = (row + code).masked_fill_(~mask, spare).view(-1)
        earliest = torch.full((spare + 1,), batch * length, device=codes.device)
        earliest.scatter_reduce_(0, slot, frames, "amin")
        # one edge per run of equal code is enough
        first_of_run = starts.clone()
        first_of_run[:, 1:] |= code_change & mask[:, 1:]
        frame = first_of_run.view(-1).nonzero().squeeze(1)
        sources.append(node.index_select(0, frame))
        targets.append(node.index_select(0, earliest.gather(0, slot.index_select(0, frame))))
    source, target = torch.cat(sources), torch.cat(targets)
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
    """
    batch, length, groups = codes.shape
    first, second = codes[..., 0], codes[..., min(1, groups - 1)]
    positions = torch.arange(length, device=codes.device)
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
    tuple_group = _first_equal(_tuple_keys(codes), mask)
    latest = torch.full_like(labels, NO_PART).scatter_reduce_(1, tuple_group, labels, "amax")
    part = latest.gather(1, tuple_group).clamp_min(0)
    return torch.where(mask, 1 / (parts * size.gather(1, part)), 0.0)


def _part_sizes(labels: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Frames per part (``[B, L]``, indexed by label, fp32) and parts per utterance ``[B, 1]``."""
    size = torch.zeros(labels.shape, device=labels.device).scatter_add_(
        1, labels.clamp_min(0), mask.float()
    )
    return size, (size > 0).sum(1, keepdim=True)


def _new_run(codes: Tensor, *, share: bool) -> Tensor:
    """``[B, L]`` True where a run starts: frame 0, and frames that differ from their predecessor
    in some codebook (``share=False``) or in every codebook (``share=True``)."""
    differs = (codes[:, 1:] != codes[:, :-1]).unbind(-1)
    cut = _each_codebook(torch.logical_and if share else torch.logical_or, differs)
    return torch.cat([cut.new_ones(cut.shape[0], 1), cut], dim=1)


def _runs(starts: Tensor, mask: Tensor) -> Tensor:
    """Label every frame with the latest run start at or before it."""
    positions = torch.arange(starts.shape[1], device=starts.device)
    return _masked(torch.where(starts, positions, 0).cummax(1).values, mask)


def _masked(labels: Tensor, mask: Tensor) -> Tensor:
    return labels.masked_fill(~mask, NO_PART)


def _tuple_keys(codes: Tensor) -> Tensor:
    """One int64 per code tuple, equal iff the tuples are equal: ``sum_g q^g V^g`` with V from
    the data, or dense ranks when ``V^G`` would overflow."""
    groups = codes.shape[-1]
    values = int(codes.max()) + 1
    if values**groups < 2**62:
        return code_tuple_ids(codes, values)
    return torch.unique(codes.reshape(-1, groups), dim=0, return_inverse=True)[1].view(
        codes.shape[:-1]
    )


def _each_codebook(op: Callable[[Tensor, Tensor], Tensor], tensors: Iterable[Tensor]) -> Tensor:
    """Fold a binary op over per-codebook tensors: an explicit loop over the (few) codebooks is
    much faster than a PyTorch reduction over a last dimension of size G."""
    return functools.reduce(op, tensors)


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
    utterance length; L on padding. Offsets 1..SHIFTS compare the whole batch with itself shifted
    (runs are short); the rare frames still unresolved then search on one by one."""
    batch, length, _ = codes.shape
    lengths = mask.sum(1, keepdim=True)
    positions = torch.arange(length, device=codes.device)
    answer = torch.where(mask, lengths, length)
    unresolved = mask.clone()  # true frames whose probe t + offset is still a true frame
    offsets = range(1, min(SHIFTS, length - 1) + 1)
    for offset in offsets:
        inside = mask[:, offset:]
        disjoint = _each_codebook(
            torch.logical_and, (codes[:, offset:] != codes[:, :-offset]).unbind(-1)
        )
        hit = unresolved[:, :-offset] & inside & disjoint
        answer[:, :-offset] = torch.where(hit, positions[offset:], answer[:, :-offset])
        unresolved[:, :-offset] &= inside & ~disjoint
        unresolved[:, -offset:] = False
        if not unresolved.any():
            return answer
    flat_codes, answer = codes.reshape(batch * length, -1), answer.view(-1)
    frame = unresolved.view(-1).nonzero().squeeze(1)  # flat index b L + t
    own = flat_codes.index_select(0, frame)
    row_start = frame - frame % length
    end = row_start + lengths.view(-1).index_select(0, frame // length)
    offset = len(offsets) + 1
    while frame.numel():
        probe = frame + offset
        differs = (flat_codes.index_select(0, probe.clamp_max(batch * length - 1)) != own).unbind(
            -1
        )
        stop = (probe >= end) | _each_codebook(torch.logical_and, differs)
        answer[frame[stop]] = (probe - row_start)[stop]
        keep = ~stop
        frame, own, row_start, end = frame[keep], own[keep], row_start[keep], end[keep]
        offset += 1
    return answer.view(batch, length)


def _orbit_of_first_frame(next_start: Tensor) -> Tensor:
    """``[B, L]`` True on ``0, f(0), f(f(0)), ...`` for ``f = next_start`` (values in (t, L]),
    by doubling: after round r the marks hold ``f^i(0)`` for every ``i < 2^r``."""
    batch, length = next_start.shape
    sink = torch.full((batch, 1), length, device=next_start.device)
    jump = torch.cat([next_start, sink], dim=1)
    on = torch.zeros_like(jump, dtype=torch.bool)
    on[:, 0] = True
    for _ in range(max(1, (length - 1).bit_length())):
        on.scatter_(1, torch.where(on, jump, length), True)
        jump = jump.gather(1, jump)
        if (jump[:, 0] == length).all():  # every orbit is shorter than 2^r: all found
            break
    return on[:, :length]
