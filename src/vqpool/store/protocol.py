"""What evaluation and reports read from a store: the ``Store`` protocol, and its batch order.

``FeatureStore`` implements it over the files; tests implement it in memory. Both batch with
:func:`length_batches` and pick splits with :func:`split_indices`, so every store gives the same
batches in the same order.
"""

import os
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from vqpool.errors import ParameterError, VqpoolError
from vqpool.rows import SPLITS
from vqpool.store.header import StoreHeader

# (frames fp32 [B, L, D] | None, lengths int64 [B], codes int32 [B, L, G] | None, store indices)
Batch = tuple[Tensor | None, Tensor, Tensor | None, list[int]]
# The streams a batch carries, as the dtypes batches deliver them in.
READ_DTYPES = {"frames": torch.float32, "codes": torch.int32}
STREAMS = tuple(READ_DTYPES)


def check_streams(streams: Collection[str] | None) -> tuple[str, ...]:
    """``streams`` in `STREAMS` order (every one when None); a name not in `STREAMS` is an error."""
    if streams is None:
        return STREAMS
    chosen = {streams} if isinstance(streams, str) else set(streams)
    unknown = sorted(chosen - set(STREAMS))
    if unknown:
        raise ParameterError("streams", f"names {unknown}; choose from {list(STREAMS)}")
    return tuple(s for s in STREAMS if s in chosen)


def length_batches(num_frames: Sequence[int], indices: Sequence[int], max_frames: int) -> Iterator[list[int]]:
    """``indices`` longest first (ties in the given order), grouped so that ``B * L <= max_frames``.

    One utterance may exceed ``max_frames`` alone. Memory stays bounded and padding small.
    """
    batch: list[int] = []
    for i in sorted(indices, key=lambda i: -num_frames[i]):
        if batch and (len(batch) + 1) * num_frames[batch[0]] > max_frames:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def split_indices(meta: Sequence[dict[str, Any]], split: str | None, *, where: str) -> list[int]:
    """Positions of the utterances in ``split`` (all when None; none for a standard split that no
    row has); a split name no row has and no manifest allows is an error naming ``where``."""
    if split is None:
        return list(range(len(meta)))
    present = sorted({str(row["split"]) for row in meta if row.get("split")})
    if split not in present and split not in SPLITS:
        raise VqpoolError(f"{where}: no split {split!r} (this store has: {', '.join(present) or 'none'})")
    return [i for i, row in enumerate(meta) if row.get("split") == split]


@runtime_checkable
class Store(Protocol):
    """A corpus of utterances in store order: metadata, frames and codes, or pooled vectors."""

    header: StoreHeader
    meta: list[dict[str, Any]]  # per utterance: the manifest row, duration, num_frames

    @property
    def path(self) -> str | os.PathLike | None:
        """The store's folder (results go beside it), or None for one that has none."""

    @property
    def has_frames(self) -> bool:
        """False for a pooled-only store, which gives ``pooled(method)`` instead."""

    @property
    def dim(self) -> int: ...

    @property
    def num_codebooks(self) -> int | None: ...

    @property
    def codebook_size(self) -> int | None: ...

    @property
    def pooled_methods(self) -> tuple[str, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[Tensor | None, Tensor | None, dict[str, Any]]:
        """``(frames fp32 [T, D] | None, codes int32 [T, G] | None, meta)`` of utterance ``i``."""

    def indices(self, split: str | None = None) -> list[int]:
        """Positions of the utterances of ``split`` (all when None)."""

    def batches(self, indices: Sequence[int] | None = None, *, max_frames: int = ...,
                streams: Collection[str] | None = None, reuse: bool = False) -> Iterator[Batch]:
        """Padded batches of ``indices`` (all when None) in :func:`length_batches` order, carrying
        ``streams`` (`check_streams`; the others are None, unread). With ``reuse`` a batch's
        tensors may be overwritten by the next batch (a store may also hand out new ones)."""

    def pooled(self, method: str) -> Tensor:
        """``[N, D']`` fp32 vectors pooled at extraction (pooled-only stores)."""


def store_path(store: Any) -> "Path | None":
    """The store's folder, or None for a store that lives in memory."""
    path = getattr(store, "path", None)
    return Path(path) if path is not None else None
