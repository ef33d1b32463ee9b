"""What a manifest row is, for every layer that handles rows (data, extract, store, evaluate).

At the bottom of the package, so that the store can check split names without importing the
corpus recipes above it, and so that there is one spelling of a row's audio path.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

SPLITS = ("train", "validation", "test")


def canonical_path(path: str | os.PathLike) -> str:
    """The one spelling of an audio file's path: absolute, symbolic links resolved.

    Manifests are written with it and extraction keys its rows by it, so rows that reach the
    same files through a symlinked folder, a relative path or ``..`` are the same rows.
    """
    return str(Path(path).resolve())


def canonical_rows(rows: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Copies of ``rows`` with their ``path`` in :func:`canonical_path` spelling."""
    return [{**row, "path": canonical_path(row["path"])} for row in rows]
