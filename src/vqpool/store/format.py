"""The feature store's on-disk format: layout, file names, dtypes and the index lines.

Layout of a store directory:

- ``header.json``: what produced the store (upstream, corpus and task, pooling, job).
- ``<stream>-00000.bin``…: append-only shards of raw arrays, one stream per kind of array:
  ``frames`` (fp16 ``[T, D]``), ``codes`` (int16 ``[T, G]``) and, for pooled-only stores,
  ``pooled-<method>`` (fp32 ``[D']``). A shard is closed once it would pass ``shard_bytes``.
- ``index.jsonl``: one line per utterance, ``<crc32 hex> <json>``; the JSON holds the
  utterance's metadata (manifest row, ``duration``, ``num_frames``) and, per stream,
  ``[shard, offset, nbytes, crc32]``: where its array lies and the CRC-32 of its bytes. It is
  both the offsets index and the metadata table.
- ``complete.json``: written atomically when extraction finished (the store is *sealed*): the
  number of utterances and of skipped files, and a copy of the header as it was sealed.
- ``skipped.csv``: files skipped as bad audio, when there were any.
- ``writer.lock``: only while a process writes the store (see ``vqpool.store.lock``).

No file holds a time, so a resumed or merged store is the same, file for file and byte for
byte, as one written in a single run.

A reader trusts the longest prefix of index lines that are whole, pass their checksum and point
at bytes that exist (see ``vqpool.store.writer`` for why that is exactly what was committed);
the bytes themselves are checked against their CRC-32 when read (``vqpool.store.checks``).
"""

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vqpool.errors import VqpoolError
from vqpool.store.lock import LOCK

SHARD_BYTES = 1 << 30
HEADER, INDEX, SEALED, SKIPPED = "header.json", "index.jsonl", "complete.json", "skipped.csv"
STORE_FILES = (HEADER, INDEX, SEALED, SKIPPED)  # written whole, through vqpool.io.atomic_path
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
    if not directory.is_dir() or not any(not is_debris(entry.name) for entry in directory.iterdir()):
        return "absent"
    if (directory / HEADER).is_file() or any(directory.glob("rank-*")):
        return "partial"
    raise VqpoolError(f"{directory}: exists and is not a feature store; choose another output folder")


def is_debris(name: str) -> bool:
    """The lock file, or a temporary of ``vqpool.io.atomic_path`` (``.NAME.tmp-…``) that a
    killed writer left: nothing a store is made of."""
    return name == LOCK or (name.startswith(".") and ".tmp-" in name)


def checksum(blob: bytes | memoryview | np.ndarray) -> int:
    """The CRC-32 an index entry records of its bytes (zlib's: no dependency, about 2 GB/s)."""
    return zlib.crc32(blob)


@dataclass
class Index:
    """The trusted prefix of ``index.jsonl``: its records, its byte length, and why it ends
    before the file does (``stop``, None when every line is trusted)."""

    records: list[Record]
    end: int
    stop: str | None


def scan_index(directory: Path) -> Index:
    """The committed records (see the module docstring) and where the trusted prefix ends."""
    index = directory / INDEX
    if not index.is_file():
        return Index([], 0, None)
    records: list[Record] = []
    sizes: dict[tuple[str, int], int] = {}
    end = 0
    for number, line in enumerate(index.read_bytes().splitlines(keepends=True), start=1):
        record = parse_line(line)
        problem = record if isinstance(record, str) else data_missing(directory, record, sizes)
        if problem is not None:
            return Index(records, end, f"{INDEX} line {number} {problem}")
        records.append(record)
        end += len(line)
    return Index(records, end, None)


def read_index(directory: Path) -> tuple[list[Record], int]:
    """The committed records and the byte length of the index prefix holding them."""
    index = scan_index(directory)
    return index.records, index.end


def parse_line(line: bytes) -> Record | str:
    """One index line's record, or what is wrong with it."""
    if not line.endswith(b"\n"):
        return "is cut short"
    checksum_hex, _, body = line[:-1].partition(b" ")
    try:
        if int(checksum_hex, 16) != zlib.crc32(body):
            return "fails its checksum"
        record = json.loads(body)
    except ValueError:
        return "is not an index line"
    return record if _well_formed(record) else "is not an index line"


def _well_formed(record: Any) -> bool:
    """The record has the index line's fields and types (``type(...) is int`` refuses booleans)."""
    try:
        order, frames, data = record["order"], record["meta"]["num_frames"], record["data"]
    except (TypeError, KeyError, IndexError):
        return False
    if type(order) is not int or type(frames) is not int or order < 0 or frames < 0 or type(data) is not dict:
        return False
    for entry in data.values():
        if type(entry) is not list or len(entry) != 4:
            return False
        for value in entry:
            if type(value) is not int or value < 0:
                return False
    return True


def data_missing(directory: Path, record: Record, sizes: dict[tuple[str, int], int]) -> str | None:
    """Why the record's bytes are not all there (None when they are); ``sizes`` caches the
    shards' sizes between calls."""
    for stream, (shard, offset, nbytes, _) in record["data"].items():
        size = sizes.get((stream, shard))
        if size is None:
            path = shard_path(directory, stream, shard)
            size = sizes[stream, shard] = path.stat().st_size if path.is_file() else -1
        if offset + nbytes > size:
            name = shard_path(directory, stream, shard).name
            return f"points past the end of {name}" if size >= 0 else f"points into {name}, which is missing"
    return None


def stream_ends(records: list[Record]) -> dict[str, tuple[int, int]]:
    """Per stream, the last shard used and the end of the last committed bytes in it."""
    ends: dict[str, tuple[int, int]] = {}
    for record in records:
        for stream, (shard, offset, nbytes, _) in record["data"].items():
            ends[stream] = max(ends.get(stream, (0, 0)), (shard, offset + nbytes))
    return ends
