"""The feature store: frames and codes of a whole corpus in a few large memory-mapped files.

Layout of a store directory:

- ``header.json``: what produced the store (upstream, layers, codebook, rates, versions, job).
- ``<stream>-00000.bin``…: append-only shards of raw arrays, one stream per kind of array:
  ``frames`` (fp16 ``[T, D]``), ``codes`` (int16 ``[T, G]``) and, for pooled-only stores,
  ``pooled-<method>`` (fp32 ``[D']``). A shard is closed once it would pass ``shard_bytes``.
- ``index.jsonl``: one line per utterance, ``<crc32 hex> <json>``; the JSON holds the
  utterance's metadata (manifest row, ``duration``, ``num_frames``) and, per stream,
  ``[shard, offset, nbytes]``. It is both the offsets index and the metadata table.
- ``complete.json``: written atomically when extraction finished (the store is *sealed*).
- ``skipped.csv``: files skipped as bad audio, when there were any.

Commit protocol (why SIGKILL is safe): a batch's arrays are appended and fsynced before its
index lines are appended and fsynced. A reader trusts the longest prefix of index lines that
are whole, pass their checksum and point at bytes that exist, so a half-written utterance is
never read back; resuming truncates the shards to the end of that prefix and carries on.
"""

import csv
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vqpool.audio import write_skip_report
from vqpool.data.manifest import SPLITS
from vqpool.errors import BadAudioError, VqpoolError
from vqpool.io import atomic_write_text, fsync_dir

FORMAT_VERSION = 1
SHARD_BYTES = 1 << 30
HEADER, INDEX, SEALED, SKIPPED = "header.json", "index.jsonl", "complete.json", "skipped.csv"
DTYPES = {"frames": np.dtype(np.float16), "codes": np.dtype(np.int16)}
POOLED_DTYPE = np.dtype(np.float32)

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


class StoreWriter:
    """Appends batches of utterances to a store with the commit protocol above.

    ``header["job"]`` is what must not change between a run and its resumption (it fixes the
    batches and so the bytes); resuming with a different job is refused.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        header: dict[str, Any],
        *,
        resume: bool = False,
        shard_bytes: int = SHARD_BYTES,
    ) -> None:
        self.path = Path(path)
        self.shard_bytes = shard_bytes
        if resume and (self.path / HEADER).is_file():
            self.header = json.loads((self.path / HEADER).read_text(encoding="utf-8"))
            check_same_job(self.path, job_identity(self.header), job_identity(header))
            records = self._truncate_to_committed()
        else:
            self._start_fresh(header)
            records = []
        self.committed = {record["order"] for record in records}
        self._ends = _stream_ends(records)
        self._index = open(self.path / INDEX, "ab")
        self._handles: dict[str, Any] = {}

    def _start_fresh(self, header: dict[str, Any]) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise VqpoolError(f"{self.path}: cannot create the store folder ({error.strerror})") from None
        for name in (SEALED, INDEX, SKIPPED, HEADER):
            (self.path / name).unlink(missing_ok=True)
        for shard in self.path.glob("*-[0-9][0-9][0-9][0-9][0-9].bin"):
            shard.unlink()
        self.header = {
            "format": "vqpool-store",
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **header,
        }
        atomic_write_text(self.path / HEADER, json.dumps(self.header, indent=2) + "\n")
        (self.path / INDEX).touch()
        fsync_dir(self.path)

    def _truncate_to_committed(self) -> list[Record]:
        """Drop whatever a killed run wrote after its last committed record."""
        if (self.path / SEALED).is_file():
            (self.path / SEALED).unlink()
        records, end = read_index(self.path)
        with open(self.path / INDEX, "ab") as index:  # "ab" also recreates a never-written index
            index.truncate(end)
        ends = _stream_ends(records)
        for shard_file in self.path.glob("*-[0-9][0-9][0-9][0-9][0-9].bin"):
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
        for order, meta, arrays in items:
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
                data[stream] = [shard, size, len(blob)]
                self._ends[stream] = (shard, size + len(blob))
            body = json.dumps({"order": order, "meta": meta, "data": data}).encode()
            lines.append(b"%08x %s\n" % (zlib.crc32(body), body))
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
        """Mark the store complete (atomically), listing the skipped files; nothing is appended afterwards."""
        for stream in list(self._handles):
            self._close(stream)
        self._index.close()
        if skipped:
            write_skip_report(skipped, self.path / SKIPPED)
        else:
            (self.path / SKIPPED).unlink(missing_ok=True)
        summary = {
            "num_utterances": len(self.committed),
            "skipped": len(skipped),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_text(self.path / SEALED, json.dumps(summary, indent=2) + "\n")


def _sync(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _stream_ends(records: list[Record]) -> dict[str, tuple[int, int]]:
    """Per stream, the last shard used and the end of the last committed bytes in it."""
    ends: dict[str, tuple[int, int]] = {}
    for record in records:
        for stream, (shard, offset, nbytes) in record["data"].items():
            ends[stream] = max(ends.get(stream, (0, 0)), (shard, offset + nbytes))
    return ends


def job_identity(header: dict[str, Any]) -> dict[str, Any]:
    """What two runs writing one store must share: the job, and what the rows are for."""
    return {**header.get("job", {}), "corpus": header.get("corpus"), "task": header.get("task")}


def check_same_job(path: Path, stored: dict[str, Any], requested: dict[str, Any], *, complete: bool = False) -> None:
    """Refuse to resume (or, when ``complete``, to reuse) a store made with other settings, naming them."""
    differing = _differences(stored, requested)
    if not differing:
        return
    shown = "; ".join(differing[:4]) + (f"; and {len(differing) - 4} more" if len(differing) > 4 else "")
    if complete:
        raise VqpoolError(
            f"{path}: already holds a complete feature store extracted with different settings "
            f"({shown}); choose another output folder, or delete this one to extract it again"
        )
    raise VqpoolError(
        f"{path}: cannot resume: the store was started with different settings "
        f"({shown}); resume with the original ones or start a new store"
    )


def _differences(stored: dict[str, Any], requested: dict[str, Any], prefix: str = "") -> list[str]:
    """``"key: old in the store, new now"`` for every differing leaf (nested dicts as ``a.b``).

    Another upstream ``spec`` explains all its other differences, so it is named alone.
    """
    keys = sorted(key for key in stored.keys() | requested.keys() if stored.get(key) != requested.get(key))
    found = []
    for key in ["spec"] if "spec" in keys else keys:
        old, new = stored.get(key), requested.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += _differences(old, new, f"{prefix}{key}.")
        elif key == "rows_sha256":  # a digest says nothing to a reader
            found.append(f"{prefix}rows: another manifest or corpus")
        else:
            found.append(f"{prefix}{key}: {_short(old)} in the store, {_short(new)} now")
    return found


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class FeatureStore:
    """Read access to a store written by :func:`vqpool.extract.extract`.

    ``store[i]`` is ``(frames fp32 [T, D], codes int64 [T, G] | None, meta)``; frames are
    ``None`` in a pooled-only store, which offers ``pooled(method)`` instead. Store order is the
    extraction order (longest utterance first); ``meta`` carries each utterance's ``id``.
    An unfinished store is refused unless ``allow_partial``; then only committed utterances show.
    """

    def __init__(self, path: str | os.PathLike, *, allow_partial: bool = False) -> None:
        self.path = Path(path)
        if not (self.path / HEADER).is_file():
            raise VqpoolError(f"{self.path}: not a feature store (no {HEADER})")
        self.header: dict[str, Any] = json.loads((self.path / HEADER).read_text(encoding="utf-8"))
        if self.header.get("format_version") != FORMAT_VERSION:
            raise VqpoolError(
                f"{self.path}: store format {self.header.get('format_version')} is not "
                f"{FORMAT_VERSION}; extract it again with this vqpool version"
            )
        self._records, _ = read_index(self.path)
        self.complete = (self.path / SEALED).is_file()
        if self.complete:
            expected = json.loads((self.path / SEALED).read_text(encoding="utf-8"))["num_utterances"]
            if len(self._records) != expected:
                raise VqpoolError(
                    f"{self.path}: damaged store: {expected} utterances were written but only "
                    f"{len(self._records)} are intact (a shard or {INDEX} was cut); extract it again"
                )
        elif not allow_partial:
            raise VqpoolError(
                f"{self.path}: unfinished store ({len(self._records)} of "
                f"{self.header['job']['num_utterances']} utterances): finish it with "
                "`vqpool extract ... --resume`, or open it with allow_partial=True"
            )
        self.meta: list[dict[str, Any]] = [record["meta"] for record in self._records]
        self.num_frames = np.array([m["num_frames"] for m in self.meta], dtype=np.int64)
        # Each utterance's position in the extraction plan; merging rank stores sorts by it.
        self.orders: list[int] = [record["order"] for record in self._records]
        self._maps: dict[tuple[str, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._records)

    @property
    def has_frames(self) -> bool:
        return "frames" in self.header["streams"]

    @property
    def dim(self) -> int:
        return self.header["dim"]

    @property
    def num_codebooks(self) -> int | None:
        return self.header["num_codebooks"]

    @property
    def codebook_size(self) -> int | None:
        return self.header["codebook_size"]

    @property
    def pooled_methods(self) -> tuple[str, ...]:
        return tuple(self.header["pooled_dims"])

    @property
    def skipped(self) -> list[dict[str, str]]:
        """Files skipped as bad audio (``path``, ``reason``)."""
        if not (self.path / SKIPPED).is_file():
            return []
        with open(self.path / SKIPPED, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def indices(self, split: str | None = None) -> list[int]:
        """Positions of the utterances in ``split`` (all when None; none for a standard split it lacks)."""
        if split is None:
            return list(range(len(self)))
        present = sorted({str(meta["split"]) for meta in self.meta if meta.get("split")})
        if split not in present and split not in SPLITS:
            raise VqpoolError(f"{self.path}: no split {split!r} (this store has: {', '.join(present) or 'none'})")
        return [i for i, meta in enumerate(self.meta) if meta.get("split") == split]

    def array(self, i: int, stream: str) -> np.ndarray:
        """Utterance ``i``'s raw array in ``stream`` (a read-only view of the memory map)."""
        shard, offset, nbytes = self._records[i]["data"][stream]
        key = (stream, shard)
        if key not in self._maps:
            self._maps[key] = np.memmap(shard_path(self.path, stream, shard), dtype=np.uint8, mode="r")
        flat = self._maps[key][offset : offset + nbytes].view(stream_dtype(stream))
        return flat if stream.startswith("pooled-") else flat.reshape(int(self.num_frames[i]), -1)

    def __getitem__(self, i: int) -> tuple[Tensor | None, Tensor | None, dict[str, Any]]:
        i = range(len(self))[i]
        frames = torch.from_numpy(self.array(i, "frames").astype(np.float32)) if self.has_frames else None
        codes = self._codes(i)
        return frames, codes, dict(self.meta[i])

    def _codes(self, i: int) -> Tensor | None:
        if "codes" not in self.header["streams"]:
            return None
        return torch.from_numpy(self.array(i, "codes").astype(np.int64))

    def batches(
        self, indices: Sequence[int] | None = None, *, max_frames: int = 65536
    ) -> Iterator[tuple[Tensor | None, Tensor, Tensor | None, list[int]]]:
        """Padded ``(frames fp32 [B, L, D], lengths [B], codes int64 [B, L, G] | None, indices)``.

        Utterances are sorted longest first and grouped so that ``B * L <= max_frames`` (one
        utterance may exceed it alone): memory stays bounded and padding small. Padding is 0.
        Frames are None in a pooled-only store (its codes still come, for code statistics).
        """
        chosen = range(len(self)) if indices is None else indices
        ordered = sorted(chosen, key=lambda i: -self.num_frames[i])
        batch: list[int] = []
        for i in ordered:
            if batch and (len(batch) + 1) * self.num_frames[batch[0]] > max_frames:
                yield self._collate(batch)
                batch = []
            batch.append(i)
        if batch:
            yield self._collate(batch)

    def _collate(self, batch: list[int]) -> tuple[Tensor | None, Tensor, Tensor | None, list[int]]:
        lengths = self.num_frames[batch]
        padded = {}
        for stream, dtype, width in (("frames", np.float32, self.dim), ("codes", np.int64, self.num_codebooks)):
            if stream in self.header["streams"]:
                buffer = np.zeros((len(batch), lengths.max(), width), dtype=dtype)
                for row, i in enumerate(batch):
                    buffer[row, : lengths[row]] = self.array(i, stream)
                padded[stream] = torch.from_numpy(buffer)
        return padded.get("frames"), torch.from_numpy(lengths), padded.get("codes"), list(batch)

    def pooled(self, method: str) -> Tensor:
        """``[N, D']`` fp32 vectors pooled at extraction time (pooled-only stores)."""
        if method not in self.pooled_methods:
            raise VqpoolError(
                f"{self.path}: no pooled vectors for {method!r} (this store has: "
                f"{', '.join(self.pooled_methods) or 'none, it keeps frames'})"
            )
        rows = [self.array(i, f"pooled-{method}") for i in range(len(self))]
        dim = self.header["pooled_dims"][method]
        return torch.from_numpy(np.stack(rows) if rows else np.zeros((0, dim), np.float32))
