"""What a manifest row is, for every layer that handles rows (data, extract, store, evaluate).

At the bottom of the package, so that the store can check split names without importing the
corpus recipes above it, and so that there is one spelling of a row's audio path.
"""

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from vqpool.errors import VqpoolError

SPLITS = ("train", "validation", "test")


def canonical_path(path: str | os.PathLike) -> str:
    """The one spelling of an audio file's path: absolute, symbolic links resolved.

    Manifests are written with it and extraction keys its rows by it, so rows that reach the
    same files through a symlinked folder, a relative path or ``..`` are the same rows.
    """
    try:
        return str(Path(path).resolve())
    except (RuntimeError, OSError) as error:  # Python < 3.13 raises RuntimeError on a loop
        raise VqpoolError(f"{path}: cannot resolve the path: a loop of symbolic links ({error})") from None


def canonical_rows(rows: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Copies of ``rows`` with their ``path`` in :func:`canonical_path` spelling."""
    return [{**row, "path": canonical_path(row["path"])} for row in rows]


def row_warnings(rows: Sequence[Mapping[str, object]], where: str) -> list[str]:
    """What about the rows' splits would quietly skew a benchmark: rows without a split among
    rows with one (no benchmark uses them), one audio file under two splits (the test set
    leaks into training) and labels that no training row has (1-NN can never predict them).
    ``where`` names the rows' source at the start of each message."""
    found = []
    if any(row.get("split") for row in rows):
        unsplit = [str(row.get("id", "?")) for row in rows if not row.get("split")]
        if unsplit:
            found.append(f"{where}: {len(unsplit)} rows have no split, so no benchmark uses them "
                         f"({_some(unsplit)}); give each a split (train, validation or test)")
    splits_of: dict[str, dict[str, str]] = defaultdict(dict)
    for row in rows:
        if row.get("path") and row.get("split"):
            splits_of[str(row["path"])].setdefault(str(row["split"]), str(row.get("id", "?")))
    shared = {path: ids for path, ids in splits_of.items() if len(ids) > 1}
    if shared:
        path, ids = next(iter(shared.items()))
        listed = ", ".join(f"{split} as {ident!r}" for split, ident in sorted(ids.items()))
        more = f", and {len(shared) - 1} more file{'s' * (len(shared) > 2)}" if len(shared) > 1 else ""
        found.append(f"{where}: {path} is listed under more than one split ({listed}{more}): "
                     "the same audio in training and evaluation inflates the scores")
    labels = defaultdict(set)
    for row in rows:
        if row.get("label") not in (None, "") and row.get("split"):
            labels[str(row["split"])].add(str(row["label"]))
    if labels.get("train"):
        unseen = sorted(labels.get("test", set()) - labels["train"])
        if unseen:
            many = len(unseen) > 1
            found.append(f"{where}: label{'s' * many} {_some(unseen)} occur{'s' * (not many)} in "
                         "test but in no training row, so those test rows can never be classified "
                         "right")
    return found


def _some(items: Sequence[str], shown: int = 3) -> str:
    head = ", ".join(repr(item) for item in items[:shown])
    return head + (f" and {len(items) - shown} more" if len(items) > shown else "")
