"""Corpus statistics fitted once on the training split and reused for every split.

Code counts and tuple frequencies feed `vq-gp`, `vq-bp` and `vq-sif` (docs/methods.md section 2); the
whitening and soft-decay transforms of the AP vectors feed the baselines of section 4.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.io import load_tagged, save_tagged
from vqpool.pooling import kernels
from vqpool.pooling.masking import index_dtype, length_mask, row_chunks, weighted_average
from vqpool.progress import progress_bar

Batch = tuple[Tensor | None, Tensor, Tensor | None]

PARTS = ("counts", "whitening", "softdecay")
MIN_WHITENING = 2  # utterances: one AP vector has no scatter to whiten with
SOFTDECAY_ALPHA = -0.6
# Eigenvalues of a D x D scatter or Gram matrix below this fraction of the largest are numerical
# zeros (fp32 inputs, float64 maths): their directions get weight 0 instead of being blown up.
EIGEN_RTOL = 1e-10
FORMAT = "vqpool.CorpusStats"
FORMAT_VERSION = 1


class StoreLike(Protocol):
    """What `CorpusStats.from_store` reads: a ``vqpool.store.FeatureStore`` or the like."""

    has_frames: bool
    codebook_size: int | None

    def indices(self, split: str | None = None) -> list[int]: ...

    def batches(self, indices: Sequence[int] | None = None, *, max_frames: int = ...,
                streams: Collection[str] | None = None, reuse: bool = False) -> Iterable[
        tuple[Tensor | None, Tensor, Tensor | None, list[int]]]: ...

    def pooled(self, method: str) -> Tensor: ...


def decay_singular_values(s: Tensor, alpha: float = SOFTDECAY_ALPHA) -> Tensor:
    """Soft-Decay: ``f(s) = -log(1 - alpha (s + alpha) + 1e-7) / alpha``, rescaled along the last
    dimension so that ``max f(s) = max s``."""
    f = -torch.log(1 - alpha * (s + alpha) + 1e-7) / alpha
    return f * (s.amax(-1, keepdim=True) / f.amax(-1, keepdim=True))


def code_tuple_ids(codes: Tensor, codebook_size: int) -> Tensor:
    """One integer per code tuple. ``[..., G] -> int64 [...]``.

    While ``V^G`` fits int64, the exact id ``sum_g q^g V^g`` (Horner's rule, one codebook at a
    time: a loop over the codebooks is much faster than a reduction over a last dimension of
    size G). Beyond (e.g. G = 8, V = 1024, or 32 EnCodec/Mimi levels), a 64-bit simple
    tabulation hash: the XOR of one fixed pseudo-random word per (codebook, code), `tuple_hash`.
    Saved statistics hold these ids, so both rules are part of their format."""
    if exact_tuple_ids(codebook_size, codes.shape[-1]):
        ids = codes[..., -1].long()
        for g in reversed(range(codes.shape[-1] - 1)):
            ids = torch.add(codes[..., g], ids, alpha=codebook_size)
        return ids
    return tuple_hash(codes, codebook_size)


def exact_tuple_ids(codebook_size: int, num_codebooks: int) -> bool:
    """Whether `code_tuple_ids` is the exact ``sum_g q^g V^g`` (``V^G`` fits int64)."""
    return codebook_size**num_codebooks <= torch.iinfo(torch.long).max


def tuple_hash(codes: Tensor, codebook_size: int) -> Tensor:
    """``[..., G]`` codes in ``[0, V)`` -> int64 ``[...]``: ``XOR_g T[g, q^g]``.

    Simple tabulation hashing (Patrascu and Thorup) with ``T`` a fixed table of splitmix64 words:
    two different tuples get one id with probability 2^-64, so among U distinct tuples a shared
    id is expected about U^2 / 2^65 times (1e-5 for ten million tuples). Vectorised: one gather
    per codebook, no ``V^G`` anything; on a CPU a compiled loop (`kernels.xor_of_words`)."""
    if kernels.serves(codes):
        return kernels.xor_of_words(codes, _hash_table(codes.shape[-1], codebook_size))
    return _tabulated(codes, codebook_size, _xor_fold)


def summed_tuple_hash(codes: Tensor, codebook_size: int) -> Tensor:
    """Like `tuple_hash`, but the words are added (wrapping mod 2^64): one reduction instead
    of log2 G XOR passes (a third less time at G = 32). Two different tuples get one id with
    probability 2^-64 all the same (a differing position adds an independent uniform word).
    For keys that live within one call; saved statistics keep `tuple_hash`."""
    return _tabulated(codes, codebook_size, lambda words, out: torch.sum(words, -1, out=out))


def _tabulated(codes: Tensor, codebook_size: int, combine: Callable[[Tensor, Tensor], object]) -> Tensor:
    """``combine(words [n, G], out [n])`` of each tuple's table words ``T[g, q^g]``, a chunk
    of tuples at a time."""
    groups = codes.shape[-1]
    table = _hash_table(groups, codebook_size).to(codes.device).view(-1)
    offsets = (torch.arange(groups, device=codes.device) * codebook_size).to(
        index_dtype(codes, groups * codebook_size))
    tuples = codes.reshape(-1, groups)
    ids = torch.empty(tuples.shape[0], dtype=torch.long, device=codes.device)
    for rows in row_chunks(tuples.shape[0], groups, codes.device):
        combine(table.index_select(0, (tuples[rows] + offsets).view(-1)).view(-1, groups), ids[rows])
    return ids.view(codes.shape[:-1])


def _xor_fold(words: Tensor, out: Tensor) -> None:
    """XOR of each row of ``words [n, G]`` into ``out [n]``: XOR is associative, so halves are
    folded onto each other, log2(G) passes."""
    while words.shape[-1] > 1:
        half = words.shape[-1] // 2
        folded = words[:, :half] ^ words[:, half : 2 * half]
        words = torch.cat([folded, words[:, 2 * half :]], -1) if words.shape[-1] % 2 else folded
    out.copy_(words[:, 0])


@functools.lru_cache(maxsize=8)
def _hash_table(num_codebooks: int, codebook_size: int) -> Tensor:
    """``[G, V]`` int64: splitmix64 of ``g 2^32 + q``, the same on every machine (unsigned numpy
    arithmetic wraps by definition)."""
    g, q = np.meshgrid(np.arange(num_codebooks, dtype=np.uint64),
                       np.arange(codebook_size, dtype=np.uint64), indexing="ij")
    z = (g << np.uint64(32)) + q + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return torch.from_numpy(z.view(np.int64).copy())


DIRECTORY_STEPS = 32  # a bucket directory lookup beyond this many steps loses to a binary search
SPARSE_BITS = 2  # 4 directory buckets a key: most queries (unseen tuples) find theirs empty


@dataclass(eq=False, repr=False)
class CorpusStats:
    """What the training corpus contributes to pooling; build with `CorpusStats.fit`,
    `CorpusStats.from_store` or `load`.

    ``include`` lists the parts fitted (of `PARTS`); the tensors of the other parts are None.
    ``code_counts`` holds raw counts: smoothing is added at pool time. Tensors live on the CPU.
    """

    include: tuple[str, ...]
    num_utterances: int
    total_frames: int
    dim: int | None = None
    num_codebooks: int | None = None
    codebook_size: int | None = None
    code_counts: Tensor | None = None  # int64 [G, V]
    tuple_ids: Tensor | None = None  # int64 [U], sorted: every code tuple seen
    tuple_counts: Tensor | None = None  # int64 [U]
    whitening_mean: Tensor | None = None  # float64 [D]
    whitening_matrix: Tensor | None = None  # float64 [D, D]
    softdecay_basis: Tensor | None = None  # float64 [D, K]: V of X = U diag(s) V^T
    softdecay_scale: Tensor | None = None  # float64 [K]: f(s) / s

    def __post_init__(self) -> None:
        self.include = tuple(self.include)
        self._directories: dict[torch.device, _SortedDirectory] = {}  # of tuple_ids, per device

    def __repr__(self) -> str:
        return (
            f"CorpusStats(include={self.include}, num_utterances={self.num_utterances}, "
            f"total_frames={self.total_frames}, dim={self.dim}, "
            f"num_codebooks={self.num_codebooks}, codebook_size={self.codebook_size})"
        )

    @classmethod
    def fit(
        cls,
        batches: Iterable[Batch],
        codebook_size: int | None = None,
        *,
        include: Iterable[str] | None = None,
        progress: bool = True,
    ) -> CorpusStats:
        """Fit on a stream of ``(frames, lengths, codes)`` batches, one pass, never holding frames.

        A store's ``(frames, lengths, codes, indices)`` batches (``store.batches(...)``) are
        taken as they come.

        ``frames`` is ``[B, L, D]`` (padded), or ``[B, D]`` AP vectors already pooled (stores
        that keep pooled vectors only), or None; ``lengths`` ``[B]`` counts each utterance's true
        frames; ``codes`` is ``[B, L, G]`` or None. Every batch must carry the same kinds.
        ``include`` picks parts of `PARTS` (default: all the batches allow; "whitening" needs
        the AP vectors of at least `MIN_WHITENING` utterances, and is left out of fewer unless
        asked for, which is an error); ``codebook_size`` (V)
        is needed for "counts". Pass the training split's batches; to reproduce the reference
        implementation, whose counts also covered the validation split, chain both splits.
        ``progress`` shows a bar of batches on stderr.
        """
        wanted = None if include is None else _check_include(include)
        parts: tuple[str, ...] = ()
        layout: tuple[bool, bool] | None = None
        counts: _CodeCounts | None = None
        moments: _Moments | None = None
        num_utterances = total_frames = 0
        with progress_bar(progress, desc="corpus statistics", unit="batch") as bar:
            for index, batch in enumerate(batches):
                bar.update()
                frames, lengths, codes = _check_batch(batch, index)
                if layout is None:
                    layout = (frames is not None, codes is not None)
                    parts = _choose_parts(wanted, *layout)
                    if "counts" in parts:
                        counts = _CodeCounts(
                            codes.shape[-1], _check_codebook_size(codebook_size, codes)
                        )
                    if "whitening" in parts or "softdecay" in parts:
                        moments = _Moments(frames.shape[-1])
                elif layout != (frames is not None, codes is not None):
                    raise VqpoolError(
                        f"batch {index}: every batch must carry the same kinds of data as the first "
                        f"(frames: {layout[0]}, codes: {layout[1]})"
                    )
                if counts is not None:
                    counts.update(codes, lengths, index)
                if moments is not None:
                    moments.update(_ap_vectors(frames, lengths), index)
                num_utterances += lengths.shape[0]
                total_frames += int(lengths.sum())
        if layout is None:
            raise VqpoolError(
                "CorpusStats.fit: batches is empty; pass the training split's batches"
            )

        if wanted is None and moments is not None and moments.count < MIN_WHITENING:
            parts = tuple(part for part in parts if part != "whitening")
        stats = cls(include=parts, num_utterances=num_utterances, total_frames=total_frames)
        if counts is not None:
            stats.num_codebooks, stats.codebook_size = counts.num_codebooks, counts.codebook_size
            stats.code_counts = counts.counts.view(counts.num_codebooks, counts.codebook_size)
            stats.tuple_ids, stats.tuple_counts = counts.tuple_ids, counts.tuple_counts
        if moments is not None:
            stats.dim = moments.mean.shape[0]
        if "whitening" in parts:
            stats.whitening_mean = moments.mean
            stats.whitening_matrix = _whitening_matrix(moments.scatter, moments.count)
        if "softdecay" in parts:
            gram = moments.scatter + moments.count * torch.outer(moments.mean, moments.mean)
            stats.softdecay_basis, stats.softdecay_scale = _softdecay_transform(gram)
        return stats

    @classmethod
    def from_store(
        cls,
        store: StoreLike,
        split: str | None = "train",
        *,
        indices: Sequence[int] | None = None,
        include: Iterable[str] | None = None,
        max_frames: int | None = None,
        progress: bool = True,
        ap_vectors: Tensor | None = None,
    ) -> CorpusStats:
        """Fit on the rows of ``split`` of a feature store (or on its rows ``indices``, which
        take the place of ``split``), reading it one batch at a time.

        A store that keeps frames gives its frames and codes; a pooled-only store gives its
        stored AP vectors (``store.pooled("ap")``) in place of frames, with its codes; so do
        ``ap_vectors`` (``[len(store), D]``, e.g. pooled by a pass that had the frames anyway:
        only the chosen rows are used). ``split`` None takes every row. ``include`` is as for
        `fit`; only the streams its parts need are read (codes alone for ``("counts",)``).
        ``max_frames`` bounds a batch's padded frames (default: the store's). ``progress``
        shows a bar of utterances on stderr when stderr is a terminal. ``vqpool stats fit``
        saves what this returns.
        """
        chosen = list(store.indices(split) if indices is None else indices)
        if not chosen:
            where = f"split {split!r}" if indices is None else "indices"
            raise VqpoolError(f"CorpusStats.from_store: {where} selects no rows of the store")
        parts = PARTS if include is None else _check_include(include)
        ap = ap_vectors
        if ap is None and not store.has_frames:
            ap = torch.as_tensor(store.pooled("ap")).float()
        streams = [stream for stream, needed in (
            ("frames", ap is None and {"whitening", "softdecay"} & set(parts)),
            ("codes", "counts" in parts)) if needed]
        options = {} if max_frames is None else {"max_frames": max_frames}
        bar = progress_bar(progress, total=len(chosen), desc="statistics", unit="utt")

        def batches() -> Iterator[Batch]:
            # fit keeps nothing of a batch, so the store may reuse its tensors
            for frames, lengths, codes, rows in store.batches(chosen, streams=streams, reuse=True,
                                                              **options):
                yield (frames if ap is None else ap[rows], lengths, codes)
                bar.update(len(rows))

        # Closed even on an error, so no bar is left on screen under the error message.
        with bar, closing(batches()) as stream:
            return cls.fit(stream, store.codebook_size, include=include, progress=False)

    def tuple_frequency(self, codes: Tensor, *, in_range: bool = False) -> Tensor:
        """``p(q_t)``: corpus count of each frame's code tuple / total frames, 0 for a tuple never
        seen. ``[B, L, G] -> fp32 [B, L]`` on the codes' device; padding values are not checked.
        ``in_range``: every code is known to lie in ``[0, V)`` (`pool` checked them)."""
        self._require("counts", "tuple frequencies (vq-sif)")
        if not in_range and not exact_tuple_ids(self.codebook_size, self.num_codebooks):
            low, high = torch.aminmax(codes) if codes.numel() else (0, 0)
            in_range = bool(low >= 0 and high < self.codebook_size)
        if in_range or exact_tuple_ids(self.codebook_size, self.num_codebooks):
            counts = self._tuple_counts(code_tuple_ids(codes, self.codebook_size).flatten())
        else:  # the hash reads a table: tuples with codes outside [0, V) (padding) count 0
            inside = ((codes >= 0) & (codes < self.codebook_size)).all(-1).flatten()
            ids = code_tuple_ids(codes.clamp(0, self.codebook_size - 1), self.codebook_size)
            counts = torch.where(inside, self._tuple_counts(ids.flatten()), 0)
        return (counts.view(codes.shape[:-1]).double() / self.total_frames).float()

    def check_codes(self, codes: Tensor, lengths: Tensor | None = None, *,
                    bounds: tuple[int, int] | None = None) -> None:
        """Raise VqpoolError unless ``codes [B, L, G]`` matches the fitted G and V (values are
        checked on the true frames only when ``lengths`` is given; ``bounds``, their least and
        largest value when the caller knows them)."""
        self._require("counts", "codes")
        if codes.is_floating_point() or codes.dtype == torch.bool or codes.ndim != 3:
            raise VqpoolError(
                f"codes must be an integer tensor [B, L, G]; got {codes.dtype} {tuple(codes.shape)}"
            )
        if codes.shape[-1] != self.num_codebooks:
            raise VqpoolError(
                f"codes have G={codes.shape[-1]} codebooks but the corpus statistics were fitted "
                f"with G={self.num_codebooks}"
            )
        if bounds is None:
            values = codes if lengths is None else codes[length_mask(lengths, codes.shape[1])]
            bounds = tuple(map(int, torch.aminmax(values))) if values.numel() else (0, 0)
        if bounds[0] < 0 or bounds[1] >= self.codebook_size:
            raise VqpoolError(
                f"codes range over [{bounds[0]}, {bounds[1]}] but the corpus "
                f"statistics were fitted with V={self.codebook_size} (codes in [0, V))"
            )

    def state(self) -> dict:
        """Every field plus the constants they were fitted with (what `save` writes)."""
        payload = {field.name: getattr(self, field.name) for field in fields(self)}
        payload.update(
            include=list(self.include), softdecay_alpha=SOFTDECAY_ALPHA, eigen_rtol=EIGEN_RTOL
        )
        return payload

    @classmethod
    def from_state(cls, payload: dict, where: str = "corpus statistics") -> CorpusStats:
        missing = [field.name for field in fields(cls) if field.name not in payload]
        if missing:
            raise VqpoolError(f"{where}: corpus statistics lack {', '.join(missing)}")
        return cls(**{field.name: payload[field.name] for field in fields(cls)})

    def save(self, path: str | os.PathLike) -> None:
        """Write one file atomically: `state` plus a format tag and version."""
        save_tagged(path, self.state(), format=FORMAT, version=FORMAT_VERSION)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CorpusStats:
        payload = load_tagged(path, format=FORMAT, version=FORMAT_VERSION, what="corpus statistics")
        return cls.from_state(payload, str(path))

    def _tuple_counts(self, ids: Tensor) -> Tensor:
        """Corpus count of each tuple id ``[N]``, 0 for ids never seen. A dense table of all
        ``V^G`` ids when it is small next to N (one lookup per id), else the seen ids' bucket
        directory (`_SortedDirectory`: a few lookups per id, where a binary search over a
        million ids took 17 cache misses, 100-300 ns an id)."""
        known = self.tuple_ids.to(ids.device)
        counts = self.tuple_counts.to(ids.device)
        size = self.codebook_size**self.num_codebooks
        if size <= 16 * ids.numel():
            table = torch.zeros(size + 1, dtype=torch.long, device=ids.device)
            table.index_copy_(0, known, counts)  # table[size] stays 0: ids outside [0, V^G)
            return table.index_select(0, torch.where((ids >= 0) & (ids < size), ids, size))
        if ids.device not in self._directories:
            self._directories[ids.device] = _SortedDirectory(known)
        directory = self._directories[ids.device]
        if directory.useful:
            position = directory.find(ids)
            return torch.where(position >= 0, counts.index_select(0, position.clamp_min(0)), 0)
        position = torch.searchsorted(known, ids).clamp_max_(known.numel() - 1)
        found = known.index_select(0, position) == ids
        return torch.where(found, counts.index_select(0, position), 0)

    def _require(self, part: str, what: str) -> None:
        if part not in self.include:
            raise VqpoolError(
                f"{what} need corpus statistics fitted with {part!r}, but these were fitted with "
                f"{self.include} (fit on batches that carry {'codes' if part == 'counts' else 'frames'})"
            )


class _SortedDirectory:
    """Where each query lies in sorted, distinct int64 ``keys [U]`` that look uniformly random
    (tuple hashes; `useful` says whether they are spread evenly enough for it).

    The top ``b`` bits of a key (2^b >= 4 U) name its bucket, and ``start`` says where each
    bucket begins in ``keys``. Most queries of unseen tuples find their bucket empty; the others
    compare themselves with its keys one step at a time, all such queries at once."""

    def __init__(self, keys: Tensor) -> None:
        self.keys = keys
        self.shift = 64 - max(1, (keys.numel() - 1).bit_length() + SPARSE_BITS)
        sizes = torch.bincount(self._bucket(keys), minlength=1 << (64 - self.shift))
        self.start = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)])
        self.widest = int(sizes.max()) if keys.numel() else 0

    @property
    def useful(self) -> bool:
        """Whether the fullest bucket is small enough to beat a binary search (hashes: yes;
        exact ids of correlated codes may crowd a few buckets)."""
        return self.widest <= DIRECTORY_STEPS

    def _bucket(self, keys: Tensor) -> Tensor:
        """The top bits, as a bucket number in key order (keys are signed)."""
        return (keys >> self.shift) + (1 << (63 - self.shift))

    def find(self, queries: Tensor) -> Tensor:
        """``[N]`` int64: the position of each query in ``keys``, or -1."""
        found = torch.full_like(queries, -1)
        if not self.keys.numel():
            return found
        bucket = self._bucket(queries)
        position, end = self.start.index_select(0, bucket), self.start.index_select(0, bucket + 1)
        which = (position < end).nonzero().squeeze(1)  # queries whose bucket holds keys
        position, end, queries = position[which], end[which], queries[which]
        while which.numel():
            hit = self.keys.index_select(0, position) == queries
            found[which[hit]] = position[hit]
            position += 1
            going = ~hit & (position < end)  # keys are distinct: a hit ends the search
            which, position, end, queries = which[going], position[going], end[going], queries[going]
        return found


class _CodeCounts:
    """Per-codebook code counts and code-tuple counts, merged batch by batch."""

    def __init__(self, num_codebooks: int, codebook_size: int) -> None:
        self.num_codebooks, self.codebook_size = num_codebooks, codebook_size
        self.counts = torch.zeros(num_codebooks * codebook_size, dtype=torch.long)
        self.tuple_ids = torch.zeros(0, dtype=torch.long)
        self.tuple_counts = torch.zeros(0, dtype=torch.long)

    def update(self, codes: Tensor, lengths: Tensor, index: int) -> None:
        if codes.shape[-1] != self.num_codebooks:
            raise VqpoolError(
                f"batch {index}: codes have G={codes.shape[-1]}, earlier batches G={self.num_codebooks}"
            )
        q = codes[length_mask(lengths, codes.shape[1])].long()  # [M, G] true frames only
        if q.numel() and (q.min() < 0 or q.max() >= self.codebook_size):
            raise VqpoolError(
                f"batch {index}: codes range over [{int(q.min())}, {int(q.max())}], outside "
                f"[0, codebook_size={self.codebook_size})"
            )
        # one bincount for all codebooks: codebook g's codes are shifted to [g V, (g + 1) V)
        offsets = torch.arange(self.num_codebooks, device=q.device) * self.codebook_size
        self.counts += torch.bincount((q + offsets).flatten(), minlength=self.counts.numel()).cpu()
        ids, counts = torch.unique(code_tuple_ids(q, self.codebook_size), return_counts=True)
        merged, inverse = torch.unique(torch.cat([self.tuple_ids, ids.cpu()]), return_inverse=True)
        totals = torch.cat([self.tuple_counts, counts.cpu()])
        self.tuple_counts = torch.zeros_like(merged).index_add_(0, inverse, totals)
        self.tuple_ids = merged


class _Moments:
    """Count, mean and scatter of the AP vectors in float64, merged batch by batch (Chan et al.),
    so streaming gives the one-batch result up to rounding and memory stays O(D^2)."""

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.mean = torch.zeros(dim, dtype=torch.float64)
        self.scatter = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, vectors: Tensor, index: int) -> None:
        if vectors.shape[-1] != self.mean.shape[0]:
            raise VqpoolError(
                f"batch {index}: frames have D={vectors.shape[-1]}, earlier batches D={self.mean.shape[0]}"
            )
        x = vectors.double().cpu()
        n, total = x.shape[0], self.count + x.shape[0]
        if n == 0:
            return
        mean = x.mean(0)
        centred, delta = x - mean, mean - self.mean
        self.scatter += centred.T @ centred + torch.outer(delta, delta) * (self.count * n / total)
        self.mean += delta * (n / total)
        self.count = total


def _ap_vectors(frames: Tensor, lengths: Tensor) -> Tensor:
    """AP of each utterance's true frames (``[B, D]`` input is taken as AP vectors already)."""
    if frames.ndim == 2:
        return frames
    mask = length_mask(lengths, frames.shape[1])
    return weighted_average(frames, mask / lengths[:, None])


def _whitening_matrix(scatter: Tensor, count: int) -> Tensor:
    """``W = U diag(1 / sqrt(s))`` from the SVD of the scatter matrix; null directions get 0."""
    if count < MIN_WHITENING:
        raise VqpoolError(
            f"whitening needs the AP vectors of at least {MIN_WHITENING} utterances; fit on more "
            "data or pass include without 'whitening'"
        )
    u, s, _ = torch.linalg.svd(scatter)
    return u * torch.where(s > EIGEN_RTOL * s[0], s.rsqrt(), 0.0)


def _softdecay_transform(gram: Tensor) -> tuple[Tensor, Tensor]:
    """``V`` and ``f(s) / s`` for ``X = U diag(s) V^T``, read off ``X^T X = V diag(s^2) V^T`` (the
    Gram matrix streams; X does not), keeping the directions X spans."""
    v, eigenvalues, _ = torch.linalg.svd(gram)
    keep = eigenvalues > EIGEN_RTOL * eigenvalues[0]
    if not keep.any():
        raise VqpoolError("soft-decay: every AP vector of the corpus is zero")
    s = eigenvalues[keep].sqrt()
    return v[:, keep], decay_singular_values(s) / s


def _check_include(include: Iterable[str]) -> tuple[str, ...]:
    parts = (include,) if isinstance(include, str) else tuple(include)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise VqpoolError(f"include: unknown part(s) {unknown}; choose from {PARTS}")
    return tuple(part for part in PARTS if part in parts)


def _choose_parts(
    wanted: tuple[str, ...] | None, has_frames: bool, has_codes: bool
) -> tuple[str, ...]:
    available = tuple(part for part in PARTS if (has_codes if part == "counts" else has_frames))
    if wanted is None:
        return available
    lacking = [part for part in wanted if part not in available]
    if lacking:
        raise VqpoolError(
            f"include asks for {lacking}, but the batches carry no "
            f"{'codes' if 'counts' in lacking else 'frames'}"
        )
    return wanted


def _check_codebook_size(codebook_size: int | None, codes: Tensor) -> int:
    if codebook_size is None or codebook_size < 1:
        raise VqpoolError("CorpusStats.fit: pass codebook_size (V) when the batches carry codes")
    return codebook_size


def _check_batch(batch: Batch, index: int) -> Batch:
    try:  # a store's batches also carry their indices, which fitting does not need
        frames, lengths, codes, *indices = batch
        if len(indices) > 1:
            raise ValueError(f"{len(batch)} items")
    except (TypeError, ValueError) as error:
        raise VqpoolError(f"batch {index}: expected a (frames, lengths, codes[, indices]) tuple") from error
    if not isinstance(lengths, Tensor) or lengths.ndim != 1 or lengths.is_floating_point():
        raise VqpoolError(f"batch {index}: lengths must be an integer tensor [B]")
    if frames is None and codes is None:
        raise VqpoolError(f"batch {index}: carries neither frames nor codes")
    padded = [x for x in (frames, codes) if x is not None and x.ndim == 3]
    if frames is not None and frames.ndim not in (2, 3):
        raise VqpoolError(
            f"batch {index}: frames must be [B, L, D] or AP vectors [B, D]; got {tuple(frames.shape)}"
        )
    if codes is not None and (codes.ndim != 3 or codes.is_floating_point()):
        raise VqpoolError(
            f"batch {index}: codes must be an integer tensor [B, L, G]; got {tuple(codes.shape)}"
        )
    for x in (frames, codes):
        if x is not None and x.shape[0] != lengths.shape[0]:
            raise VqpoolError(
                f"batch {index}: {lengths.shape[0]} lengths for {x.shape[0]} utterances"
            )
    for x in padded:
        if lengths.numel() and (lengths.min() < 1 or lengths.max() > x.shape[1]):
            raise VqpoolError(f"batch {index}: lengths must lie in [1, L={x.shape[1]}]")
    return frames, lengths, codes
