"""The feature store's on-disk format: layout, file names, dtypes and the index lines.

Layout of a store directory:

- ``header.json``: what produced the store (upstream, corpus and task, pooling, job).
- ``<stream>-00000.bin``…: append-only shards of raw arrays, one stream per kind of array:
  ``frames`` (fp16 ``[T, D]``), ``codes`` (int16 ``[T, G]``) and, for pooled-only stores,
  ``pooled-<method>`` (fp32 ``[D']``). A shard is closed once it would pass ``shard_bytes``.
- ``index.jsonl``: one line per utterance, ``<crc32 hex> <json>``; the JSON holds the
  utterance's metadata (manifest row, ``duration``, ``num_frames``) and, per stream,
  ``[shard, offset, nbytes]``. It is both the offsets index and the metadata table.
- ``complete.json``: written atomically when extraction finished (the store is *sealed*).
- ``skipped.csv``: files skipped as bad audio, when there were any.

A reader trusts the longest prefix of index lines that are whole, pass their checksum and point
at bytes that exist (see ``vqpool.store.writer`` for why that is exactly what was committed).
"""

import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from vqpool.errors import VqpoolError

SHARD_BYTES = 1 << 30
HEADER, INDEX, SEALED, SKIPPED = "header.json", "index.jsonl", "complete.json", "skipped.csv"
DTYPES = {"frames": np.dtype(np.float16), "codes": np.dtype(np.int16)}
POOLED_DTYPE = np.dtype(np.float32)
SHARD_GLOB = "*-[0-9][0-9][0-9][0-9][0-9].bin"

Record = dict[str, Any]


def stream_dtype(stream: str) -> np.dtype:
    return DTYPES.get(stream, POOLED_DTYPE)


def shard_path(directory: Path, stream: str, shard: int) -> Path:
    return directory / f"{stream}-{shard:05d}.bin"


def store_status(path: str | os.PathLike) -> str:
    """``"absent"`` (nothing, or an empty folder), ``"partial"`` or ``"complete"``."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise VqpoolError(f"{directory}: is a file, not a store folder; choose another output folder")
    if (directory / SEALED).is_file():
        return "complete"
    if not directory.is_dir() or not any(directory.iterdir()):
        return "absent"
    if (directory / HEADER).is_file() or any(directory.glob("rank-*")):
        return "partial"
    raise VqpoolError(f"{directory}: exists and is not a feature store; choose another output folder")


def read_index(directory: Path) -> tuple[list[Record], int]:
    """The committed records and the byte length of the index prefix holding them."""
    index = directory / INDEX
    if not index.is_file():
        return [], 0
    records: list[Record] = []
    sizes: dict[Path, int] = {}
    end = 0
    for line in index.read_bytes().splitlines(keepends=True):
        record = _parse_line(line)
        if record is None or not _data_present(directory, record, sizes):
            break
        records.append(record)
        end += len(line)
    return records, end


def _parse_line(line: bytes) -> Record | None:
    if not line.endswith(b"\n"):
        return None
    checksum, _, body = line[:-1].partition(b" ")
    try:
        if int(checksum, 16) != zlib.crc32(body):
            return None
        return json.loads(body)
    except ValueError:
        return None


def _data_present(directory: Path, record: Record, sizes: dict[Path, int]) -> bool:
    for stream, (shard, offset, nbytes) in record["data"].items():
        path = shard_path(directory, stream, shard)
        if path not in sizes:
            sizes[path] = path.stat().st_size if path.is_file() else -1
        if offset + nbytes > sizes[path]:
            return False
    return True


def stream_ends(records: list[Record]) -> dict[str, tuple[int, int]]:
    """Per stream, the last shard used and the end of the last committed bytes in it."""
    ends: dict[str, tuple[int, int]] = {}
    for record in records:
        for stream, (shard, offset, nbytes) in record["data"].items():
            ends[stream] = max(ends.get(stream, (0, 0)), (shard, offset + nbytes))
    return ends
