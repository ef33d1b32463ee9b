"""Corpora as manifests: one recipe module per corpus, all writing the same CSV format."""

from vqpool.data.manifest import MANIFEST_COLUMNS, SPLITS, read_manifest, write_manifest

__all__ = ["MANIFEST_COLUMNS", "SPLITS", "read_manifest", "write_manifest"]
