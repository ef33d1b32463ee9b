"""What extraction and codebook fitting start from: the rows of a manifest or of a corpus."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from vqpool.data.common import Row
from vqpool.data.corpora import prepare, task_of
from vqpool.errors import ParameterError, VqpoolError
from vqpool.manifest import read_manifest
from vqpool.sources import Clip, cut_clips, dataset_clips, load_cuts, load_hf_dataset


class LoadedRows(NamedTuple):
    """Rows to extract (manifest rows, or clips of a dataset's or cuts' audio), the corpus they
    come from (None but for a corpus) and the task they pose."""

    rows: list[Row] | list[Clip]
    corpus: str | None
    task: str


def load_rows(
    manifest: str | os.PathLike | None = None,
    corpus: str | None = None,
    root: str | os.PathLike | None = None,
    *,
    hf_dataset: str | os.PathLike | None = None,
    cuts: str | os.PathLike | None = None,
    audio_column: str = "audio",
    label_column: str | None = None,
    split_column: str | None = None,
    allow_download: bool = False,
    task: str | None = None,
    **corpus_options: object,
) -> LoadedRows:
    """The rows of one source: a ``manifest`` CSV; ``corpus`` prepared from its folder ``root``;
    a Hugging Face dataset (``hf_dataset``: a ``save_to_disk`` folder, or a name in the local
    cache, fetched only with ``allow_download``); or lhotse ``cuts`` (``cuts.jsonl.gz``). The
    dataset and cuts give clips with metadata: ``label_column`` and ``split_column`` name
    where labels and splits come from (a dataset's splits otherwise; see `vqpool.sources`).

    The task is ``task`` when given, else the corpus's task (FSDD's depends on its label), else
    the manifest, dataset or cuts file's name. ``corpus_options`` are the recipe's own (fsdd:
    label, split, seed); ``None`` means "not given", so command lines can pass their optional
    flags straight through. ``vqpool extract`` does exactly this.
    """
    given = {key: value for key, value in corpus_options.items() if value is not None}
    sources = {"manifest": manifest, "corpus": corpus, "hf_dataset": hf_dataset, "cuts": cuts}
    named = [name for name, value in sources.items() if value is not None]
    if len(named) != 1:
        raise VqpoolError("give one source of rows: a manifest, a corpus (with its root folder), a "
                          f"Hugging Face dataset or lhotse cuts; got {' and '.join(named) or 'none'}")
    if corpus is None and (root is not None or given):
        extra = ["root"] * (root is not None) + sorted(given)
        raise VqpoolError(f"{', '.join(extra)} only apply to a corpus, not to a {named[0].replace('_', ' ')}")
    if manifest is not None:
        return LoadedRows(read_manifest(manifest), None, task or Path(manifest).stem)
    if hf_dataset is not None:
        dataset = load_hf_dataset(hf_dataset, allow_download=allow_download)
        clips = dataset_clips(dataset, audio_column=audio_column, label_column=label_column or "label",
                              split_column=split_column)
        return LoadedRows(clips, None, task or Path(str(hf_dataset).rstrip("/")).name)
    if cuts is not None:
        clips = cut_clips(load_cuts(cuts), label_column=label_column, split_column=split_column)
        return LoadedRows(clips, None, task or Path(cuts).name.split(".")[0])
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
