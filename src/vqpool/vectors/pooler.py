"""Pooled vectors of a store: statistics fitted on training rows, each split pooled once.

Reading frames dominates on real corpora, so one pass over a store pools a batch with every
method at once, and a fold reads each row's frames once: code counts come from the codes stream
alone, and the whitening and soft-decay transforms are fitted on the AP vectors that pass pooled.
Methods without corpus statistics (AP among them) are pooled once for all folds.
"""

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from typing import Any

import torch
from torch import Tensor

from vqpool.pooling import (
    DEFAULT_OPTIONS,
    Available,
    CorpusStats,
    PoolOptions,
    get_method,
    output_dim,
    pool,
    select_methods,
)
from vqpool.pooling.stats import MIN_WHITENING, PARTS
from vqpool.progress import progress_bar
from vqpool.store import Store, store_path
from vqpool.vectors.folds import Fold

Batch = tuple[Tensor, Tensor, Tensor | None, list[int]]

log = logging.getLogger(__name__)


def store_offers(store: Any, *, training: bool = False) -> Available:
    """What a store can pool from (the registry decides which methods that allows)."""
    return Available(
        frames=store.has_frames,
        pooled=() if store.has_frames else tuple(store.pooled_methods),
        codes=store.num_codebooks is not None,
        stats=True,  # fitted on the training rows
        training=training,
    )


def choose_methods(store: Any, methods: Sequence[str] | str, *,
                   parameter: str = "methods") -> list[str]:
    """The methods the store can give, in the order asked; "all" is every registered one it
    can give (a logged note says which were left out and why). Errors name ``parameter``."""
    selection = select_methods(methods, store_offers(store))
    if methods == "all":
        for reason in selection.reasons():
            log.info("note: leaving out %s", reason)
    return selection.require(str(store_path(store) or "the store"), parameter=parameter)


def pool_split(
    batches: Iterable[Batch],
    methods: Sequence[str],
    indices: Sequence[int],
    stats: CorpusStats | None = None,
    options: PoolOptions = DEFAULT_OPTIONS,
    *,
    device: str | torch.device = "cpu",
    seconds: dict[str, float] | None = None,
    out: dict[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Pool every utterance of ``indices`` with each method: ``{method: fp32 [len(indices), D']}``.

    ``batches`` yield ``(frames [B,L,D], lengths [B], codes [B,L,G] | None, store indices)``
    covering ``indices`` (``FeatureStore.batches`` does; nothing of a batch is kept, so its
    tensors may be reused); row k of each output is ``indices[k]``. With ``out`` (``{method:
    [N, D']}`` for every method) the vectors are written in place instead, row i holding store
    index i, and ``out`` is returned. Time spent in each method's pooling is added to
    ``seconds`` when given.
    """
    position = {index: k for k, index in enumerate(indices)}
    pooled: dict[str, Tensor] = {} if out is None else out
    seen = torch.zeros(len(indices), dtype=torch.bool)
    for frames, lengths, codes, batch_indices in batches:
        positions = torch.tensor([position[i] for i in batch_indices], dtype=torch.long)
        rows = positions if out is None else torch.tensor(batch_indices, dtype=torch.long)
        frames, lengths = frames.to(device), lengths.to(device)
        codes = codes.to(device) if codes is not None else None
        for method in methods:
            start = time.perf_counter()
            vectors = pool(frames, lengths, codes, method, stats, **options.as_dict()).float().cpu()
            if seconds is not None:
                seconds[method] = seconds.get(method, 0.0) + time.perf_counter() - start
            if method not in pooled:
                pooled[method] = torch.zeros(len(indices), vectors.shape[1])
            pooled[method][rows] = vectors
        seen[positions] = True
    if not seen.all():
        missing = [indices[k] for k in torch.nonzero(~seen).flatten().tolist()[:5]]
        raise ValueError(f"the batches missed {int((~seen).sum())} rows, e.g. {missing}")
    return pooled


def store_batches(store: Store, indices: Sequence[int], desc: str, *, progress: bool = True,
                  max_frames: int | None = None) -> Iterator[Batch]:
    """``store.batches`` over ``indices`` with a progress bar counting utterances. Each batch's
    tensors are reused for the next one (`pool_split` keeps none of them).

    Consume it under ``contextlib.closing``: a generator left suspended by an error keeps its
    bar on screen until garbage collection, and the error message would land on the bar's line.
    """
    options = {} if max_frames is None else {"max_frames": max_frames}
    with progress_bar(progress, total=len(indices), desc=desc, unit="utt") as bar:
        for batch in store.batches(list(indices), reuse=True, **options):
            yield batch
            bar.update(len(batch[3]))


def fit_stats(store: Store, indices: Sequence[int], *, progress: bool = True,
              max_frames: int | None = None) -> CorpusStats:
    """Corpus statistics of the rows ``indices`` only (the training split: nothing else leaks in)."""
    return CorpusStats.from_store(store, indices=indices, progress=progress, max_frames=max_frames)


class FoldPooler:
    """Pools a store for fold after fold, reusing what does not depend on the fold.

    ``vectors(fold)`` returns ``{method: fp32 [len(store), D']}`` filled on the fold's rows.
    Methods without corpus statistics are pooled in the first pass and cached for later folds;
    statistics are fitted once per fold, on its training rows (plus validation if asked),
    unless ``stats`` gives them. A fold reads each row's frames at most once: code counts come
    from the codes alone, before the pass; whitening and soft-decay are fitted on the AP
    vectors it pooled, after (both as `CorpusStats.from_store` fits them from frames).
    """

    def __init__(self, store: Store, methods: Sequence[str], options: PoolOptions = DEFAULT_OPTIONS,
                 *, include_validation: bool = False, device: str | torch.device = "cpu",
                 max_frames: int | None = None, progress: bool = True,
                 stats: CorpusStats | None = None) -> None:
        self.store = store
        where = str(store_path(store) or "the store")
        self.methods = select_methods(methods, store_offers(store)).require(where)
        self.options = options
        self.include_validation = include_validation
        self.device = device
        self.max_frames = max_frames
        self.progress = progress
        self.stats = stats
        self.seconds: dict[str, float] = {}
        self._fixed: dict[str, Tensor] = {}  # fold-free vectors [len(store), D'], AP among them
        self._done = torch.zeros(len(store), dtype=torch.bool)

    def vectors(self, fold: Fold, rows: Sequence[int] | None = None) -> dict[str, Tensor]:
        """``{method: fp32 [len(store), D']}`` holding the pooled ``rows`` (default: all of the
        fold's rows) with statistics fitted on the fold's training rows; other rows are zero,
        or hold fold-free vectors pooled for another fold or for fitting."""
        rows = sorted(fold.used if rows is None else rows)
        if self.store.has_frames:
            return self._pool_frames(fold, rows)
        # A pooled-only store may hold some statistics methods already pooled at extraction.
        to_fit = [m for m in self.methods
                  if get_method(m).needs_stats and m not in self.store.pooled_methods]
        stats = self._fit(fold, to_fit) if to_fit and self.stats is None else self.stats
        return {m: self._from_pooled(m, rows, stats) for m in self.methods}

    def _fit(self, fold: Fold, methods: list[str], **fitting: Any) -> CorpusStats:
        """Statistics of the fold's fitting rows (``fitting`` goes to `CorpusStats.from_store`),
        their time added to ``methods``; those they cannot serve are left out (`_unserved`)."""
        start = time.perf_counter()
        fit_rows = fold.fit_indices(self.include_validation)
        stats = CorpusStats.from_store(self.store, indices=fit_rows, progress=self.progress,
                                       max_frames=self.max_frames, **fitting)
        for method in methods:
            self.seconds[method] = self.seconds.get(method, 0.0) + time.perf_counter() - start
        self._unserved(methods, stats, fold, len(fit_rows))
        return stats

    def _unserved(self, methods: list[str], stats: CorpusStats, fold: Fold, count: int) -> list[str]:
        """The methods whose statistics the fold's training rows could not give (too few for
        whitening): left out of every fold from now on, with a logged note, not an abort."""
        unserved = [m for m in methods if not get_method(m).stats_parts <= set(stats.include)]
        for method in unserved:
            lacking = ", ".join(sorted(get_method(method).stats_parts - set(stats.include)))
            log.info("note: leaving out %s: fold %d has %d training utterance(s), too few to fit "
                     "its corpus statistics (%s)", method, fold.number, count, lacking)
        self.methods = [m for m in self.methods if m not in unserved]
        return unserved

    def _pool_frames(self, fold: Fold, rows: list[int]) -> dict[str, Tensor]:
        records = {m: get_method(m) for m in self.methods}
        fixed = [m for m, r in records.items() if not r.needs_stats]
        transforms = [m for m, r in records.items() if r.needs_stats and r.transform is not None]
        weighted = [m for m, r in records.items() if r.needs_stats and r.transform is None]
        fit_rows = fold.fit_indices(self.include_validation)
        stats = moments = self.stats
        if weighted and stats is None:
            parts = set().union(*(records[m].stats_parts or set(PARTS) for m in weighted))
            if parts <= {"counts"}:  # from the codes alone: the pass below reads the frames
                stats = self._fit(fold, weighted, include=("counts",))
            else:  # frames pooled with the transforms' statistics need them before the pass
                stats = moments = self._fit(fold, weighted + transforms)
        weighted = [m for m in weighted if m in self.methods]
        transforms = [m for m in transforms if m in self.methods]
        fit_ap = bool(transforms) and moments is None  # the AP vectors of fit_rows are needed too
        fold_free = fixed + (["ap"] if transforms and "ap" not in fixed else [])
        wanted = sorted(set(rows) | set(fit_rows)) if fit_ap else rows
        todo = [r for r in wanted if not self._done[r]] if fold_free else []
        # One pass when the fold-free methods need every row the others do (always so for a
        # single fold, or validation rows fitted on); the others' extra rows are zeroed after.
        extra = sorted(set(todo) - set(rows))
        one_pass = set(rows) <= set(todo)
        passes = [(fold_free + weighted, todo)] if one_pass else [(fold_free, todo), (weighted, rows)]
        for method in fold_free:
            if method not in self._fixed:
                self._fixed[method] = torch.zeros(len(self.store), output_dim(method, self.store.dim))
        out = {m: torch.zeros(len(self.store), output_dim(m, self.store.dim)) for m in weighted}
        for methods, indices in passes:
            if not methods or not indices:
                continue
            with closing(store_batches(self.store, indices, "pooling", progress=self.progress,
                                       max_frames=self.max_frames)) as batches:
                pool_split(batches, methods, indices, stats, self.options, device=self.device,
                           seconds=self.seconds, out={m: self._fixed.get(m, out.get(m)) for m in methods})
        self._done[todo] = True
        for vectors in out.values():
            vectors[extra] = 0.0
        if "ap" not in fixed and transforms:  # AP pooled for the transforms only: their cost
            ap_seconds = self.seconds.pop("ap", 0.0)
            for method in transforms:
                self.seconds[method] = self.seconds.get(method, 0.0) + ap_seconds
        if fit_ap:
            moments = self._fit(fold, transforms, include=self._moment_parts(transforms, fit_rows),
                                ap_vectors=self._fixed["ap"])
        for method in [m for m in transforms if m in self.methods]:
            out[method] = self._transformed(method, self._fixed["ap"], rows, moments)
        return {m: self._fixed[m] if m in self._fixed else out[m] for m in self.methods}

    @staticmethod
    def _moment_parts(transforms: list[str], fit_rows: Sequence[int]) -> tuple[str, ...]:
        """The parts the transforms read, less whitening on too few rows (as `CorpusStats.fit`
        leaves it out of its default parts)."""
        parts = set().union(*(get_method(m).stats_parts for m in transforms))
        if len(fit_rows) < MIN_WHITENING:
            parts.discard("whitening")
        return tuple(part for part in PARTS if part in parts)

    def _transformed(self, method: str, ap: Tensor, rows: list[int],
                     stats: CorpusStats | None) -> Tensor:
        """``method``'s transform of the AP vectors of ``rows``, batch by batch as a pass over
        ``rows`` would pool them (the same matrix products, so the same rounding)."""
        start = time.perf_counter()
        transform = get_method(method).transform
        vectors = torch.zeros(len(self.store), output_dim(method, self.store.dim))
        options = {} if self.max_frames is None else {"max_frames": self.max_frames}
        for *_, batch in self.store.batches(rows, streams=(), **options):
            index = torch.tensor(batch, dtype=torch.long)
            vectors[index] = transform(ap[index], stats, self.options).float()
        self.seconds[method] = self.seconds.get(method, 0.0) + time.perf_counter() - start
        return vectors

    def _from_pooled(self, method: str, rows: list[int], stats: CorpusStats | None) -> Tensor:
        if method in self.store.pooled_methods:
            return self._stored(method)
        # What the registry let through here is a transform of the stored AP vectors.
        return self._transformed(method, self._stored("ap"), rows, stats)

    def _stored(self, method: str) -> Tensor:
        """Vectors pooled at extraction, read once."""
        if method not in self._fixed:
            start = time.perf_counter()
            self._fixed[method] = torch.as_tensor(self.store.pooled(method)).float()
            self.seconds[method] = self.seconds.get(method, 0.0) + time.perf_counter() - start
        return self._fixed[method]
