"""Corpora as manifests: one recipe module per corpus, all writing the same CSV format."""

from vqpool.data.corpora import CORPORA, TASK_OF_CORPUS, prepare, task_of
from vqpool.data.folds import folds
from vqpool.data.manifest import MANIFEST_COLUMNS, SPLITS, read_manifest, write_manifest
from vqpool.data.output import label_map, label_map_path, summarize, write_prepared

__all__ = [
    "CORPORA",
    "MANIFEST_COLUMNS",
    "SPLITS",
    "TASK_OF_CORPUS",
    "folds",
    "label_map",
    "label_map_path",
    "prepare",
    "read_manifest",
    "summarize",
    "task_of",
    "write_manifest",
    "write_prepared",
]
