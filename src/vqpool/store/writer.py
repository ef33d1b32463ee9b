"""Writing a store: StoreWriter and the commit protocol.

Commit protocol (why SIGKILL is safe): a batch's arrays are appended and fsynced before its
index lines are appended and fsynced. A reader trusts the longest prefix of index lines that
are whole, pass their checksum and point at bytes that exist, so a half-written utterance is
never read back; resuming truncates the shards to the end of that prefix and carries on.

A writer holds the store's lock (``vqpool.store.lock``) from the moment it opens the store
until ``seal`` or ``close``: a second writer is refused, and the temporaries a killed one left
(``.complete.json.tmp-PID``…) can be removed safely.
"""

import json
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vqpool.errors import BadAudioError
from vqpool.io import atomic_path, atomic_write_text, fsync_dir, write_skip_report
from vqpool.store import lock
from vqpool.store.format import (
    HEADER,
    INDEX,
    SEALED,
    SHARD_BYTES,
    SHARD_GLOB,
    SKIPPED,
    STORE_FILES,
    Record,
    checksum,
    read_index,
    shard_path,
    stream_dtype,
    stream_ends,
)
from vqpool.store.header import StoreHeader, read_header, write_header


class StoreWriter:
    """Appends batches of utterances to a store with the commit protocol above.

    ``resume`` continues a store already begun at ``path`` (keeping its header); the caller
    checks beforehand that it is the same job (``vqpool.extract`` does), since only the caller
    knows what fixes the batches and so the bytes. The writer holds the store's lock until
    ``seal`` or ``close`` (it is also a context manager that closes).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        header: StoreHeader,
        *,
        resume: bool = False,
        shard_bytes: int = SHARD_BYTES,
    ) -> None:
        self.path = Path(path)
        self.shard_bytes = shard_bytes
        self._handles: dict[str, Any] = {}
        self._index = None
        lock.acquire(self.path)
        try:
            remove_debris(self.path)
            if resume and (self.path / HEADER).is_file():
                self.header = read_header(self.path)
                records = self._truncate_to_committed()
            else:
                self._start_fresh(header)
                records = []
            self._index = open(self.path / INDEX, "ab")
        except BaseException:
            lock.release(self.path)
            raise
        self.committed = {record["order"] for record in records}
        self._ends = stream_ends(records)

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _start_fresh(self, header: StoreHeader) -> None:
        for name in (SEALED, INDEX, SKIPPED, HEADER):
            (self.path / name).unlink(missing_ok=True)
        for shard in self.path.glob(SHARD_GLOB):
            shard.unlink()
        self.header = header
        write_header(self.path, self.header)
        (self.path / INDEX).touch()
        fsync_dir(self.path)

    def _truncate_to_committed(self) -> list[Record]:
        """Drop whatever a killed run wrote after its last committed record."""
        if (self.path / SEALED).is_file():
            (self.path / SEALED).unlink()
        records, end = read_index(self.path)
        with open(self.path / INDEX, "ab") as index:  # "ab" also recreates a never-written index
            index.truncate(end)
        ends = stream_ends(records)
        for shard_file in self.path.glob(SHARD_GLOB):
            stream, _, number = shard_file.stem.rpartition("-")
            shard, size = ends.get(stream, (0, 0))
            if int(number) > shard or (int(number) == shard and size == 0):
                shard_file.unlink()
            elif int(number) == shard:
                os.truncate(shard_file, size)
        fsync_dir(self.path)
        return records

    def write(self, items: Sequence[tuple[int, dict[str, Any], dict[str, np.ndarray]]]) -> None:
        """Commit ``(order, meta, {stream: array})`` items: data durable first, then the index."""
        lines = []
        touched: set[str] = set()
        new_files = False
        streams = set(self.header.streams)
        for order, meta, arrays in items:
            if set(arrays) != streams:
                raise ValueError(f"record {order} has streams {sorted(arrays)}, the store {sorted(streams)}")
            data = {}
            for stream, array in arrays.items():
                blob = np.ascontiguousarray(array, dtype=stream_dtype(stream)).tobytes()
                shard, size = self._ends.get(stream, (0, 0))
                if size > 0 and size + len(blob) > self.shard_bytes:
                    self._close(stream)
                    shard, size = shard + 1, 0
                if stream not in self._handles:
                    self._handles[stream] = open(shard_path(self.path, stream, shard), "ab")
                    new_files = True
                self._handles[stream].write(blob)
                touched.add(stream)
                data[stream] = [shard, size, len(blob), checksum(blob)]
                self._ends[stream] = (shard, size + len(blob))
            lines.append(index_line(order, meta, data))
        for stream in touched:
            _sync(self._handles[stream])
        if new_files:
            fsync_dir(self.path)
        self._index.write(b"".join(lines))
        _sync(self._index)
        self.committed.update(order for order, _, _ in items)

    def _close(self, stream: str) -> None:
        handle = self._handles.pop(stream, None)
        if handle is not None:
            _sync(handle)
            handle.close()

    def seal(self, skipped: Sequence[BadAudioError] = ()) -> None:
        """Mark the store complete (atomically), listing the skipped files; nothing is appended
        afterwards, and the lock is released."""
        self._close_files()
        if skipped:
            write_skip_report(skipped, self.path / SKIPPED)
        else:
            (self.path / SKIPPED).unlink(missing_ok=True)
        # The header as sealed: a reader compares it with header.json, so an edited header is
        # named field by field. No time is recorded: a resumed store equals an uninterrupted one.
        summary = {"num_utterances": len(self.committed), "skipped": len(skipped),
                   "header": json.loads((self.path / HEADER).read_text(encoding="utf-8"))}
        atomic_write_text(self.path / SEALED, json.dumps(summary, indent=2) + "\n")
        self._release()

    def close(self) -> None:
        """Stop writing without sealing (what is committed stays; ``resume`` carries on) and
        release the lock. Idempotent."""
        self._close_files()
        self._release()

    def _close_files(self) -> None:
        for stream in list(self._handles):
            self._close(stream)
        if self._index is not None:
            self._index.close()

    def _release(self) -> None:
        if self._index is not None:
            self._index = None
            lock.release(self.path)


def index_line(order: int, meta: dict[str, Any], data: dict[str, list[int]]) -> bytes:
    """One utterance's line of ``index.jsonl``: ``<crc32 hex> <json>``."""
    body = json.dumps({"order": order, "meta": meta, "data": data}).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def rewrite_metadata(directory: str | os.PathLike, meta_of: Callable[[Record], dict[str, Any]]) -> int:
    """Give each committed utterance of the store ``meta_of(record)`` as its metadata, leaving
    its arrays where they are; returns how many changed. The index is replaced in one atomic
    rename, under the store's lock, so a reader sees the old index or the new, never a mix."""
    directory = Path(directory)
    with lock.store_lock(directory):
        remove_debris(directory)
        records, _ = read_index(directory)
        lines, changed = [], 0
        for record in records:
            meta = meta_of(record)
            changed += meta != record["meta"]
            lines.append(index_line(record["order"], meta, record["data"]))
        if changed:
            with atomic_path(directory / INDEX) as tmp:
                tmp.write_bytes(b"".join(lines))
    return changed


def remove_debris(directory: Path) -> None:
    """Remove the temporaries (``.header.json.tmp-PID``…) a killed writer left in its store.
    Only call it holding the store's lock: then no live writer owns them."""
    for name in STORE_FILES:
        for leftover in directory.glob(f".{name}.tmp-*"):
            leftover.unlink(missing_ok=True)


def _sync(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())
