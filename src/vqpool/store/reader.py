"""Reading a store: FeatureStore, memory-mapped."""

import csv
import os
import warnings
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.store import checks
from vqpool.store.format import (
    DTYPES,
    SKIPPED,
    scan_index,
    shard_path,
    stream_dtype,
)
from vqpool.store.header import StoreHeader, read_header
from vqpool.store.protocol import (
    READ_DTYPES,
    Batch,
    Store,
    check_streams,
    length_batches,
    split_indices,
)

# What the frames and codes streams hold on disk, as torch dtypes.
TORCH_DTYPES = {stream: torch.from_numpy(np.zeros(0, dtype)).dtype for stream, dtype in DTYPES.items()}


class FeatureStore:
    """Read access to a store written by :func:`vqpool.extract.extract` (a ``Store``).

    ``store[i]`` is ``(frames fp32 [T, D], codes int32 [T, G] | None, meta)``; frames are
    ``None`` in a pooled-only store, which offers ``pooled(method)`` instead. Store order is the
    extraction order (longest utterance first); ``meta`` carries each utterance's ``id``.
    An unfinished store is refused unless ``allow_partial``; then only committed utterances show.

    Opening checks the store's structure (``vqpool.store.checks``) without reading arrays; each
    entry's bytes are checked against their CRC-32 the first time they are read (unless
    ``check_reads`` is False), so a damaged shard stops a benchmark instead of skewing it.
    ``verify()`` checks every byte at once.
    """

    def __init__(self, path: str | os.PathLike, *, allow_partial: bool = False,
                 check_reads: bool = True) -> None:
        self.path = Path(path)
        self.header: StoreHeader = read_header(self.path)
        sealed = checks.read_sealed(self.path)
        index = scan_index(self.path)
        self._records = index.records
        self.complete = sealed is not None
        if self.complete:
            changed = checks.header_changes(self.path, sealed)
            if changed:
                raise VqpoolError(changed)
            expected = sealed["num_utterances"]
            if len(self._records) != expected:
                why = index.stop or f"{len(index.records)} index lines"
                raise VqpoolError(
                    f"{self.path}: damaged store: {expected} utterances were sealed but only "
                    f"{len(self._records)} are intact ({why}); run `vqpool verify {self.path}`, "
                    "or extract it again"
                )
        elif not allow_partial:
            raise VqpoolError(
                f"{self.path}: unfinished store ({len(self._records)} of "
                f"{self.header.job.num_utterances} utterances): finish it with "
                "`vqpool extract ... --resume`, or open it with allow_partial=True"
            )
        problem = next(checks.index_problems(self.path, self.header, self._records), None)
        if problem is not None:
            raise VqpoolError(problem)
        self.meta: list[dict[str, Any]] = [record["meta"] for record in self._records]
        self.num_frames = np.array([m["num_frames"] for m in self.meta], dtype=np.int64)
        # Each utterance's position in the extraction plan; merging rank stores sorts by it.
        self.orders: list[int] = [record["order"] for record in self._records]
        self._maps: dict[tuple[str, int], np.ndarray] = {}
        self._shards: dict[tuple[str, int], Tensor] = {}  # the same maps, as uint8 tensors
        # Entries whose bytes were checked against their CRC-32 (each is checked on first read).
        self._checked: set[tuple[int, str]] | None = set() if check_reads else None

    def __len__(self) -> int:
        return len(self._records)

    @property
    def has_frames(self) -> bool:
        return "frames" in self.header.streams

    @property
    def dim(self) -> int:
        return self.header.upstream.dim

    @property
    def num_codebooks(self) -> int | None:
        return self.header.upstream.num_codebooks

    @property
    def codebook_size(self) -> int | None:
        return self.header.upstream.codebook_size

    @property
    def pooled_methods(self) -> tuple[str, ...]:
        return self.header.pooled_methods

    @property
    def skipped(self) -> list[dict[str, str]]:
        """Files skipped as bad audio (``path``, ``reason``)."""
        if not (self.path / SKIPPED).is_file():
            return []
        with open(self.path / SKIPPED, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def indices(self, split: str | None = None) -> list[int]:
        """Positions of the utterances in ``split`` (all when None; none for a standard split it lacks)."""
        return split_indices(self.meta, split, where=str(self.path))

    def array(self, i: int, stream: str) -> np.ndarray:
        """Utterance ``i``'s raw array in ``stream`` (a read-only view of the memory map)."""
        shard, offset, nbytes, _ = self._records[i]["data"][stream]
        raw = self._map(stream, shard)[offset : offset + nbytes]
        self._check(i, stream, raw)
        flat = raw.view(stream_dtype(stream))
        return flat if stream.startswith("pooled-") else flat.reshape(int(self.num_frames[i]), -1)

    def _check(self, i: int, stream: str, raw: np.ndarray) -> None:
        if self._checked is None or (i, stream) in self._checked:
            return
        problem = checks.entry_problem(self.path, self._records[i], stream, raw)
        if problem is not None:
            raise VqpoolError(f"{self.path}: damaged store: {problem}; `vqpool verify {self.path}` "
                              "lists every damaged entry")
        self._checked.add((i, stream))

    def verify(self, *, progress: bool = False) -> list[str]:
        """Every problem of the store, reading every byte (see ``vqpool.store.checks.verify``);
        an empty list when it is exactly as written."""
        return checks.verify(self.path, progress=progress)

    def _map(self, stream: str, shard: int) -> np.ndarray:
        """One shard's bytes, memory-mapped once."""
        if (stream, shard) not in self._maps:
            self._maps[stream, shard] = np.memmap(shard_path(self.path, stream, shard), dtype=np.uint8, mode="r")
        return self._maps[stream, shard]

    def __getitem__(self, i: int) -> tuple[Tensor | None, Tensor | None, dict[str, Any]]:
        i = range(len(self))[i]
        frames, codes = (self._tensor(i, s).to(READ_DTYPES[s]) if s in self.header.streams else None
                         for s in ("frames", "codes"))
        return frames, codes, dict(self.meta[i])

    def batches(self, indices: Sequence[int] | None = None, *, max_frames: int = 65536,
                streams: Collection[str] | None = None, reuse: bool = False) -> Iterator[Batch]:
        """Padded ``(frames fp32 [B, L, D], lengths [B], codes int32 [B, L, G] | None, indices)``.

        Utterances are sorted longest first and grouped so that ``B * L <= max_frames``
        (:func:`~vqpool.store.protocol.length_batches`). Padding is 0. Frames are None in a
        pooled-only store (its codes still come, for code statistics). ``streams`` names the
        streams to read (of ``STREAMS``; default: every one the store has); the others come as
        None, unread. ``reuse``: each batch is written over the previous one's tensors, which
        saves allocating (and faulting in) a large fresh buffer per batch; a caller that keeps a
        batch past the next must copy it. By default every batch is new.
        """
        chosen = range(len(self)) if indices is None else indices
        wanted = [s for s in check_streams(streams) if s in self.header.streams]
        planned = list(length_batches(self.num_frames, chosen, max_frames))
        buffers = None
        if reuse and planned:  # one buffer per stream, as large as the largest batch needs
            size = max(len(batch) * int(self.num_frames[batch[0]]) for batch in planned)
            buffers = {s: torch.empty(size * self._width(s), dtype=READ_DTYPES[s]) for s in wanted}
        for batch in planned:
            yield self._collate(batch, wanted, buffers)

    def _width(self, stream: str) -> int:
        return self.dim if stream == "frames" else self.num_codebooks

    def _collate(self, batch: list[int], streams: list[str], buffers: dict[str, Tensor] | None) -> Batch:
        lengths = self.num_frames[batch]
        shape = (len(batch), int(lengths[0]), 0)  # longest first
        padded = {}
        for stream in streams:
            size = shape[0] * shape[1] * self._width(stream)
            flat = (torch.empty(size, dtype=READ_DTYPES[stream]) if buffers is None
                    else buffers[stream][:size])
            out = padded[stream] = flat.view(shape[0], shape[1], self._width(stream))
            for row, (i, length) in enumerate(zip(batch, lengths.tolist(), strict=True)):
                out[row, :length].copy_(self._tensor(i, stream))  # widened by torch, in place
                out[row, length:].zero_()
        return padded.get("frames"), torch.from_numpy(lengths), padded.get("codes"), list(batch)

    def _tensor(self, i: int, stream: str) -> Tensor:
        """Utterance ``i``'s ``stream`` as a tensor over the memory map (checked on first read)."""
        shard, offset, nbytes, _ = self._records[i]["data"][stream]
        if self._checked is not None and (i, stream) not in self._checked:
            self._check(i, stream, self._map(stream, shard)[offset : offset + nbytes])
        if (stream, shard) not in self._shards:
            with warnings.catch_warnings():  # read-only: nothing here writes to it
                warnings.filterwarnings("ignore", "The given NumPy array is not writable")
                self._shards[stream, shard] = torch.from_numpy(self._map(stream, shard))
        raw = self._shards[stream, shard][offset : offset + nbytes]
        return raw.view(TORCH_DTYPES[stream]).view(int(self.num_frames[i]), -1)

    def pooled(self, method: str) -> Tensor:
        """``[N, D']`` fp32 vectors pooled at extraction time (pooled-only stores)."""
        if method not in self.pooled_methods:
            raise VqpoolError(
                f"{self.path}: no pooled vectors for {method!r} (this store has: "
                f"{', '.join(self.pooled_methods) or 'none, it keeps frames'})"
            )
        stream, dim = f"pooled-{method}", self.header.pooled_only.dims[method]
        parts = [self._map(stream, shard)[start:end] for shard, start, end in self._runs(stream, dim)]
        for i in range(len(self)):
            shard, offset, nbytes, _ = self._records[i]["data"][stream]
            self._check(i, stream, self._map(stream, shard)[offset : offset + nbytes])
        flat = np.concatenate(parts) if parts else np.zeros(0, np.uint8)  # one copy, off the maps
        return torch.from_numpy(flat.view(stream_dtype(stream)).reshape(len(self), dim))

    def _runs(self, stream: str, width: int) -> list[list[int]]:
        """``[shard, start, end]`` byte ranges holding ``stream``'s fixed-width entries in store
        order. The writer appends them back to back, so a shard is one range; entries that lie
        otherwise (any other layout the index may describe) just make more, shorter ranges."""
        size = width * stream_dtype(stream).itemsize
        runs: list[list[int]] = []
        for record in self._records:
            shard, offset, nbytes, _ = record["data"][stream]
            if nbytes != size:
                raise VqpoolError(
                    f"{self.path}: damaged store: an entry of {stream} holds {nbytes} bytes, not "
                    f"{size} ({width} values); extract it again"
                )
            if runs and runs[-1][0] == shard and runs[-1][2] == offset:
                runs[-1][2] += nbytes
            else:
                runs.append([shard, offset, offset + nbytes])
        return runs


def open_store(store: "Store | str | os.PathLike") -> "Store":
    """A store from itself or its folder (a folder that does not exist says so)."""
    if isinstance(store, (str, os.PathLike)):
        if not Path(store).exists():
            raise VqpoolError(f"{os.fspath(store)}: no such folder (a feature store is a folder "
                              "that extraction writes)")
        return FeatureStore(store)
    return store
