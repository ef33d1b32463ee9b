"""What extraction and codebook fitting start from: the rows of a manifest or of a corpus."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from vqpool.data.common import Row
from vqpool.data.corpora import prepare, task_of
from vqpool.data.manifest import read_manifest
from vqpool.errors import ParameterError, VqpoolError


class LoadedRows(NamedTuple):
    """Rows to extract, the corpus they come from (None for a manifest) and the task they pose."""

    rows: list[Row]
    corpus: str | None
    task: str


def load_rows(
    manifest: str | os.PathLike | None = None,
    corpus: str | None = None,
    root: str | os.PathLike | None = None,
    *,
    task: str | None = None,
    **corpus_options: object,
) -> LoadedRows:
    """The rows of a ``manifest`` CSV, or of ``corpus`` prepared from its folder ``root``.

    The task is ``task`` when given, else the corpus's task (FSDD's depends on its label), else
    the manifest file's name without ``.csv``. ``corpus_options`` are the recipe's own (fsdd:
    label, split, seed); ``None`` means "not given", so command lines can pass their optional
    flags straight through. ``vqpool extract --manifest``/``--corpus`` do exactly this.
    """
    given = {key: value for key, value in corpus_options.items() if value is not None}
    if (manifest is None) == (corpus is None):
        raise VqpoolError("give either a manifest or a corpus (with its root folder), not "
                          f"{'both' if manifest is not None else 'neither'}")
    if manifest is not None:
        if root is not None or given:
            extra = ["root"] * (root is not None) + sorted(given)
            raise VqpoolError(f"{', '.join(extra)} only apply to a corpus, not to a manifest")
        return LoadedRows(read_manifest(manifest), None, task or Path(manifest).stem)
    if root is None:
        raise ParameterError("root", f"is needed: corpus {corpus} is read from its root folder")
    return LoadedRows(prepare(corpus, root, **given), corpus, task or task_of(corpus, **given))


def rows_of_split(
    rows: Sequence[Row], split: str = "train", *, where: str | os.PathLike | None = None
) -> list[Row]:
    """The rows of ``split`` when any row has a split, else every row (a manifest without splits
    is all training data). What ``vqpool codebook fit`` fits on; ``where`` names the rows'
    source in the error raised when no row has that split."""
    if not any(row.get("split") for row in rows):
        return list(rows)
    chosen = [row for row in rows if row.get("split") == split]
    if not chosen:
        source = f"{where}: " if where is not None else ""
        raise VqpoolError(f"{source}no rows with split {split!r}")
    return chosen
