"""The feature store: frames and codes of a whole corpus in a few large memory-mapped files.

``format`` fixes the layout, names, dtypes and index lines; ``writer`` writes with a commit
protocol that survives SIGKILL; ``reader`` reads (``FeatureStore``). The store package imports
nothing of vqpool above ``errors``, ``io`` and ``rows``.
"""

from vqpool.store.format import (
    DTYPES,
    FORMAT_VERSION,
    HEADER,
    INDEX,
    POOLED_DTYPE,
    SEALED,
    SHARD_BYTES,
    SKIPPED,
    Record,
    read_index,
    shard_path,
    store_status,
    stream_dtype,
)
from vqpool.store.reader import FeatureStore
from vqpool.store.writer import StoreWriter

__all__ = [
    "DTYPES",
    "FORMAT_VERSION",
    "HEADER",
    "INDEX",
    "POOLED_DTYPE",
    "SEALED",
    "SHARD_BYTES",
    "SKIPPED",
    "FeatureStore",
    "Record",
    "StoreWriter",
    "read_index",
    "shard_path",
    "store_status",
    "stream_dtype",
]
