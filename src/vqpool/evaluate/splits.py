"""What a store's rows mean to an evaluation: the task, the folds and the labels."""

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vqpool.errors import ParameterError, VqpoolError
from vqpool.rows import row_warnings
from vqpool.store import Store
from vqpool.vectors.folds import Fold

log = logging.getLogger(__name__)


def warn_about_rows(store: Store, where: str) -> None:
    """Log what about the store's rows would quietly skew the benchmark (`vqpool.rows.row_warnings`)."""
    for warning in row_warnings(store.meta, where):
        log.warning("%s", warning)


def resolve_task(store: Store, task: str | None = None) -> str:
    """The task name: given, recorded in the store header, implied by the header's corpus, or
    (for stores that record neither, as older ones and some written through the API) the name
    of the store's folder, with a note (logged) saying so."""
    if task:
        return task
    if store.header.task:
        return store.header.task
    corpus = store.header.corpus
    if corpus:
        from vqpool.data import TASK_OF_CORPUS

        return TASK_OF_CORPUS.get(corpus, str(corpus))
    path = getattr(store, "path", None)
    if path is None:
        raise ParameterError("task", "is needed: the store header names no task or corpus")
    name = Path(path).resolve().name
    log.info("note: %s records no task or corpus; using its folder name %r as the task "
             "(name a task to choose another)", path, name)
    return name


def holds_out_validation(meta: Sequence[Mapping[str, Any]]) -> bool:
    """True when validation rows were held out of training sessions by ``vqpool.data.folds``
    (rows with a ``session``, as IEMOCAP's) rather than given by the corpus."""
    return any(row.get("session") for row in meta)


def select_folds(
    meta: Sequence[Mapping[str, Any]],
    folds: str | int | Sequence[int] = "all",
    splits: Sequence[Sequence[str]] | None = None,
    *,
    where: str = "the store",
    need: Sequence[str] = ("train", "test"),
) -> list[Fold]:
    """The chosen folds of a store (``where`` names it in errors).

    ``splits`` holds one list of split names per fold, aligned with ``meta`` (by default
    ``vqpool.data.folds(meta)``: the rows' own split, or leave-one-session-out). Rows named
    anything but train/validation/test take no part. Every fold must have rows of each split
    in ``need``.
    """
    if splits is None:
        from vqpool.data import folds as data_folds

        splits = data_folds(list(meta))
    numbers = range(1, len(splits) + 1) if folds == "all" else _fold_numbers(folds)
    chosen = []
    for number in numbers:
        if not 1 <= number <= len(splits):
            raise ParameterError("folds", f"{number}: the store has folds 1..{len(splits)}")
        names = splits[number - 1]
        if len(names) != len(meta):
            raise ValueError(f"fold {number} names {len(names)} splits for {len(meta)} rows")
        by_split: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
        for index, name in enumerate(names):
            if name in by_split:
                by_split[name].append(index)
        missing = [name for name in need if not by_split[name]]
        if missing:
            raise VqpoolError(_missing_splits(where, number, len(splits), names, missing))
        chosen.append(Fold(number, by_split["train"], by_split["validation"], by_split["test"]))
    return chosen


def _missing_splits(where: str, number: int, num_folds: int, names: Sequence[str],
                    missing: list[str]) -> str:
    fold = f"fold {number}" if num_folds > 1 else "it"
    wanted = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} or {missing[-1]}"
    counts = Counter(name for name in names if name)
    found = (f"its rows' splits are {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}"
             if counts else "no row has a split: the manifest had no 'split' column")
    return (
        f"{where}: {fold} has no {wanted} rows ({found}). Give every row a split (train, "
        "validation or test): prepare the corpus with `vqpool data prepare`, which assigns them, "
        "or add a split column to your manifest; then extract the store again"
    )


def _fold_numbers(folds: str | int | Sequence[int]) -> list[int]:
    if isinstance(folds, int):
        return [folds]
    if isinstance(folds, str):
        try:
            return [int(part) for part in folds.split(",")]
        except ValueError:
            raise ParameterError("folds", f"{folds!r}: expected 'all' or fold numbers") from None
    return list(folds)


def encode_labels(meta: Sequence[Mapping[str, Any]], indices: Sequence[int]) -> tuple[Tensor, list[str]]:
    """``[len(meta)]`` class ids (-1 outside ``indices``) and the sorted class names."""
    classes = sorted({_label(meta, i) for i in indices})
    ids = {name: k for k, name in enumerate(classes)}
    labels = torch.full((len(meta),), -1, dtype=torch.long)
    for i in indices:
        labels[i] = ids[_label(meta, i)]
    return labels, classes


def _label(meta: Sequence[Mapping[str, Any]], index: int) -> str:
    label = meta[index].get("label")
    if label is None or label == "":
        raise VqpoolError(f"row {index} ({meta[index].get('id', '?')}) has no label")
    return str(label)
