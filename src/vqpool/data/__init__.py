"""Corpora as manifests: one recipe module per corpus, all writing the same CSV format."""

from vqpool.data.corpora import CORPORA, TASK_OF_CORPUS, prepare, task_of
from vqpool.data.folds import folds
from vqpool.data.loading import LoadedRows, load_rows, rows_of_split
from vqpool.data.output import label_map, label_map_path, summarize, write_prepared
from vqpool.manifest import MANIFEST_COLUMNS, SPLITS, read_manifest, write_manifest

__all__ = [
    "CORPORA",
    "LoadedRows",
    "MANIFEST_COLUMNS",
    "SPLITS",
    "TASK_OF_CORPUS",
    "folds",
    "label_map",
    "label_map_path",
    "load_rows",
    "prepare",
    "read_manifest",
    "rows_of_split",
    "summarize",
    "task_of",
    "write_manifest",
    "write_prepared",
]
