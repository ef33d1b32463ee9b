"""The feature store: frames and codes of a whole corpus in a few large memory-mapped files.

``format`` fixes the layout, names, dtypes and index lines; ``header`` the typed, versioned
``header.json`` (``StoreHeader``); ``protocol`` what readers rely on (``Store``, implemented by
``FeatureStore`` and by the tests' in-memory store); ``lock`` lets one process write a store at
a time; ``writer`` writes with a commit protocol that survives SIGKILL; ``checks`` says whether
a store is exactly as written (``verify``); ``reader`` reads (``FeatureStore``). The store
package imports nothing of vqpool above ``errors``, ``io`` and ``rows``.
"""

from vqpool.store.checks import verify
from vqpool.store.format import (
    DTYPES,
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
from vqpool.store.header import (
    FORMAT_VERSION,
    Job,
    PooledOnly,
    StoreHeader,
    UpstreamInfo,
    read_header,
)
from vqpool.store.lock import LOCK, StoreBusyError, store_lock
from vqpool.store.protocol import (
    READ_DTYPES,
    STREAMS,
    Batch,
    Store,
    check_streams,
    length_batches,
    split_indices,
    store_path,
)
from vqpool.store.reader import FeatureStore, open_store
from vqpool.store.writer import StoreWriter, rewrite_metadata

__all__ = [
    "DTYPES",
    "FORMAT_VERSION",
    "HEADER",
    "INDEX",
    "LOCK",
    "POOLED_DTYPE",
    "READ_DTYPES",
    "SEALED",
    "SHARD_BYTES",
    "SKIPPED",
    "STREAMS",
    "Batch",
    "FeatureStore",
    "Job",
    "PooledOnly",
    "Record",
    "Store",
    "StoreBusyError",
    "StoreHeader",
    "StoreWriter",
    "UpstreamInfo",
    "check_streams",
    "read_header",
    "length_batches",
    "open_store",
    "read_index",
    "rewrite_metadata",
    "shard_path",
    "split_indices",
    "store_lock",
    "store_path",
    "store_status",
    "stream_dtype",
    "verify",
]
