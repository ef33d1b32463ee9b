"""The unsupervised benchmark (paper Table 1): pool, then exact cosine 1-NN, fold by fold."""

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from vqpool.arguments import at_least, check_device
from vqpool.evaluate.bootstrap import bootstrap_ci
from vqpool.evaluate.knn import one_nn_hits, resolve_search
from vqpool.evaluate.results import make_row, write_rows
from vqpool.evaluate.splits import (
    encode_labels,
    holds_out_validation,
    resolve_task,
    select_folds,
    warn_about_rows,
)
from vqpool.pooling import PoolOptions, requested_options
from vqpool.store import Store, open_store, store_path
from vqpool.vectors import FoldPooler, choose_methods, resolve_pool_options


def run_bench(
    store: Store | str | Path,
    methods: Sequence[str] | str = "all",
    *,
    task: str | None = None,
    folds: str | int | Sequence[int] = "all",
    splits: Sequence[Sequence[str]] | None = None,
    options: Mapping[str, Any] | PoolOptions | None = None,
    include_validation: bool = False,
    device: str | torch.device = "cpu",
    chunk: int | None = None,
    search: str = "auto",
    max_frames: int | None = None,
    results: str | Path | None = None,
    write: bool = True,
    progress: bool = True,
    **pool_options: Any,
) -> list[dict[str, Any]]:
    """1-NN accuracy of each pooling method on a store; one result row per method.

    For every fold (``vqpool.data.folds`` of the store's rows unless ``splits`` is given; 1-based
    ``folds`` picks some), corpus statistics come from the training rows only (plus validation
    with ``include_validation``, as the reference implementation did); each test vector takes the
    label of its most cosine-similar training vector. ``accuracy`` is the mean over folds.
    Leave-one-session-out folds (rows with a ``session``) hold validation rows out for the probe
    only: here every training session's rows are training rows, as in the paper.
    ``methods="all"`` is every registered method the store can give (a logged note lists the
    others). Pooling options come as ``options`` (a mapping or a `PoolOptions`) and as keyword options
    (``semantics="reference"``, ``a=1e-4``, a registered method's own); those not named take
    docs/methods.md's defaults, or for a pooled-only store those it was pooled with (a stored
    method refuses other values). ``search`` picks the 1-NN
    backend ("auto", "faiss" or "matmul": `vqpool.evaluate.knn`; every one gives the same
    answers); rows record the one that ran in ``settings.search``.
    Rows are appended to ``results`` (default ``STORE/results.jsonl``) unless ``write`` is False.
    """
    device = check_device(device)
    search = resolve_search(search, device)
    if chunk is not None:
        at_least("chunk", chunk, 1)
    if max_frames is not None:
        at_least("max_frames", max_frames, 1)
    store = open_store(store)
    where = str(store_path(store) or "the store")
    warn_about_rows(store, where)
    methods = choose_methods(store, methods)
    resolved, pooled_with = resolve_pool_options(store, methods, requested_options(options, pool_options),
                                                 where=where)
    chosen = select_folds(store.meta, folds, splits, where=where)
    if splits is None and holds_out_validation(store.meta):
        # Leave-one-session-out: the paper's reference set is every training session.
        chosen = [fold.without_validation() for fold in chosen]
    labels, _ = encode_labels(store.meta, sorted({i for fold in chosen for i in fold.used}))
    pooler = FoldPooler(store, methods, resolved, include_validation=include_validation,
                        device=device, max_frames=max_frames, progress=progress)
    task = resolve_task(store, task)

    hits: dict[str, list[torch.Tensor]] = {m: [] for m in pooler.methods}  # per fold
    search_seconds = dict.fromkeys(pooler.methods, 0.0)
    for fold in chosen:
        vectors = pooler.vectors(fold, fold.train + fold.test)  # validation rows sit out
        for method in pooler.methods:  # less any the fold's statistics could not serve
            start = time.perf_counter()
            hits[method].append(one_nn_hits(
                vectors[method][fold.train], labels[fold.train],
                vectors[method][fold.test], labels[fold.test], chunk=chunk, device=device,
                search=search,
            ))
            search_seconds[method] += time.perf_counter() - start

    settings = {
        "include_validation": include_validation,
        "folds": [fold.number for fold in chosen],
        "fold_sizes": [[len(fold.train), len(fold.test)] for fold in chosen],
        "device": str(device),
        "search": search,
    }
    path = store_path(store)
    rows = []
    for method in pooler.methods:
        per_fold = [100.0 * h.double().mean().item() for h in hits[method]]
        row = make_row(
            protocol="1nn", method=method, task=task, header=store.header,
            store=str(path) if path else None, per_fold=per_fold, per_seed=None,
            num_train=sum(len(fold.train) for fold in chosen),
            num_test=sum(len(fold.test) for fold in chosen),
            settings={**pooled_with[method].as_dict(), **settings},
            seconds=pooler.seconds.get(method, 0.0) + search_seconds[method],
            timings={"pool": pooler.seconds.get(method, 0.0), "search": search_seconds[method]},
            ci95=bootstrap_ci([[h] for h in hits[method]]),
        )
        rows.append(row)
    if write:
        write_rows(store, rows, results)
    return rows
