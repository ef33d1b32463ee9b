"""A store's pooled vectors for the verbs that hand them out (``index build``, ``export``).

The same vectors ``bench`` scores: corpus statistics fitted on the training split only, options
resolved as bench resolves them (a pooled-only store's stored settings), the evaluate layer's
pooling. Rows come chunk by chunk in the order asked, so a caller can write them as they come:
for a store with frames, memory holds one chunk of vectors and one batch of frames, never the
corpus. (A pooled-only store's vectors are read whole, as the evaluate layer reads them.)
"""

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vqpool.arguments import check_device
from vqpool.errors import ParameterError, VqpoolError
from vqpool.pooling import CorpusStats, PoolOptions, get_method, output_dim, requested_options
from vqpool.progress import progress_bar
from vqpool.store import open_store, store_path
from vqpool.vectors.folds import Fold
from vqpool.vectors.options import resolve_pool_options
from vqpool.vectors.pooler import FoldPooler, choose_methods, pool_split

log = logging.getLogger(__name__)

CHUNK_ROWS = 4096


@dataclass
class StorePooling:
    """How a store's rows are pooled: the methods, their options, the fitted statistics."""

    store: Any
    methods: list[str]
    options: PoolOptions
    stats: CorpusStats | None
    stats_split: str | None  # the split the statistics were fitted on (None: given, or unneeded)
    dims: dict[str, int]  # method -> size of its vectors

    @property
    def where(self) -> str:
        return str(store_path(self.store) or "the store")


def plan_pooling(
    store: Any,
    methods: Sequence[str] | str,
    *,
    split: str = "train",
    stats: CorpusStats | str | os.PathLike | None = None,
    options: Mapping[str, Any] | PoolOptions | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    parameter: str = "methods",
) -> StorePooling:
    """Choose what to pool (any registered method the store can give; "all" for every one, with
    a logged note on those left out) and fit the corpus statistics the methods need on the rows
    of ``split`` (unless ``stats``, a `CorpusStats` or its file, is given). Errors about the
    methods name ``parameter``."""
    store = open_store(store)
    where = str(store_path(store) or "the store")
    chosen = choose_methods(store, methods, parameter=parameter)
    resolved, _ = resolve_pool_options(store, chosen, requested_options(options), where=where)
    if isinstance(stats, (str, os.PathLike)):
        stats = CorpusStats.load(stats)
    to_fit = [m for m in chosen if get_method(m).needs_stats
              and (store.has_frames or m not in store.pooled_methods)]
    stats_split = None
    if to_fit and stats is None:
        rows = store.indices(split)
        if not rows:
            raise ParameterError("split", f"{split!r} has no rows in {where}: the corpus "
                                 f"statistics of {', '.join(to_fit)} are fitted on it")
        log.info("fitting corpus statistics for %s on the %d %s rows of %s",
                 ", ".join(to_fit), len(rows), split, where)
        stats = CorpusStats.from_store(store, indices=rows, max_frames=max_frames,
                                       progress=progress)
        stats_split = split
    dims = {m: output_dim(m, store.dim) for m in chosen}
    return StorePooling(store, chosen, resolved, stats if to_fit else None, stats_split, dims)


def select_rows(store: Any, splits: Sequence[str] | str | None = None) -> list[int]:
    """Store positions of the rows of ``splits`` (names, comma-separated text, or None / "all"
    for every row), in store order."""
    if splits is None or splits == "all":
        return list(store.indices())
    names = [s.strip() for s in splits.split(",")] if isinstance(splits, str) else list(splits)
    wanted = set()
    for name in names:
        if not name:
            raise ParameterError("splits", f"names an empty split in {splits!r}")
        wanted.update(store.indices(name))
    rows = sorted(wanted)
    if not rows:
        raise ParameterError("splits", f"{', '.join(names)} select no rows of "
                             f"{store_path(store) or 'the store'}")
    return rows


def pooled_chunks(
    pooling: StorePooling,
    rows: Sequence[int],
    *,
    chunk_rows: int = CHUNK_ROWS,
    max_frames: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
    """``(chunk of rows, {method: fp32 [len(chunk), D']})`` for consecutive chunks of ``rows``,
    in the order given. Use it under ``contextlib.closing`` if you may stop early."""
    device = check_device(device)
    if chunk_rows < 1:
        raise ParameterError("chunk_rows", f"must be at least 1; got {chunk_rows}")
    rows = list(rows)
    store = pooling.store
    if not store.has_frames:
        # The evaluate layer's pooler: stored vectors, and transforms of the stored AP vectors.
        pooler = FoldPooler(store, pooling.methods, pooling.options, stats=pooling.stats,
                            device=device, progress=progress)
        vectors = pooler.vectors(Fold(1, [], [], sorted(rows)), rows)
        for start in range(0, len(rows), chunk_rows):
            chunk = rows[start : start + chunk_rows]
            yield chunk, _checked(pooling, {m: vectors[m][chunk].numpy() for m in pooling.methods})
        return
    options = {} if max_frames is None else {"max_frames": max_frames}
    with progress_bar(progress, total=len(rows), desc="pooling", unit="utt") as bar:
        for start in range(0, len(rows), chunk_rows):
            chunk = rows[start : start + chunk_rows]
            with closing(_counted(store.batches(chunk, reuse=True, **options), bar)) as batches:
                pooled = pool_split(batches, pooling.methods, chunk, pooling.stats,
                                    pooling.options, device=device)
            yield chunk, _checked(pooling, {m: pooled[m].numpy() for m in pooling.methods})


def _counted(batches: Iterator[Any], bar: Any) -> Iterator[Any]:
    for batch in batches:
        yield batch
        bar.update(len(batch[3]))


def _checked(pooling: StorePooling, vectors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for method, array in vectors.items():
        if array.shape[1] != pooling.dims[method]:
            raise VqpoolError(f"pooling method {method!r} gave {array.shape[1]}-dimensional "
                              f"vectors, not the {pooling.dims[method]} its record declares")
    return vectors
