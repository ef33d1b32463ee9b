"""An in-memory ``vqpool.store.Store``, FeatureStore's stand-in in fast tests (same batches, same order)."""

from collections.abc import Collection, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from toy_headers import toy_header
from vqpool.store import Batch, StoreHeader, check_streams, length_batches, split_indices


class MemoryStore:  # implements vqpool.store.Store
    def __init__(
        self,
        frames: Sequence[Tensor] | None,
        codes: Sequence[Tensor] | None,
        meta: list[dict[str, Any]],
        header: StoreHeader | None = None,
        *,
        codebook_size: int | None = None,
        pooled: dict[str, Tensor] | None = None,
        path: str | None = None,
    ) -> None:
        self.frames = list(frames) if frames is not None else None
        self.codes = list(codes) if codes is not None else None
        self.meta = meta
        self.lengths = [m["num_frames"] for m in meta]
        self.header = header or toy_header()
        self.codebook_size = codebook_size
        self._pooled = pooled or {}
        self.path = path
        self.read: list[int] = []  # every row handed out, to check what a step looked at
        self.read_frames: list[int] = []  # every row whose frames were handed out

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def has_frames(self) -> bool:
        return self.frames is not None

    @property
    def dim(self) -> int:
        return (self.frames[0] if self.frames else self._pooled["ap"]).shape[-1]

    @property
    def num_codebooks(self) -> int | None:
        return self.codes[0].shape[1] if self.codes is not None else None

    @property
    def pooled_methods(self) -> tuple[str, ...]:
        return tuple(self._pooled)

    def pooled(self, method: str) -> Tensor:
        return self._pooled[method]

    def __getitem__(self, i: int) -> tuple[Tensor | None, Tensor | None, dict[str, Any]]:
        self.read.append(i)
        self.read_frames.append(i)
        frames = self.frames[i] if self.frames is not None else None
        codes = self.codes[i] if self.codes is not None else None
        return frames, codes, self.meta[i]

    def indices(self, split: str | None = None) -> list[int]:
        return split_indices(self.meta, split, where=str(self.path or "the in-memory store"))

    def batches(self, indices: Sequence[int] | None = None, *, max_frames: int = 64,
                streams: Collection[str] | None = None, reuse: bool = False) -> Iterator[Batch]:
        """Padded batches of at most ``max_frames`` padded frames, longest first, as FeatureStore's.

        With ``reuse`` each batch's tensors are spoilt (NaN frames, codes -1) once the next batch
        is asked for: a caller that keeps a reused batch sees it, as it would with FeatureStore."""
        chosen = indices if indices is not None else range(len(self))
        wanted = check_streams(streams)
        previous: Batch | None = None
        for batch in length_batches(self.lengths, chosen, max_frames):
            if reuse and previous is not None:
                for tensor, spoilt in ((previous[0], float("nan")), (previous[2], -1)):
                    if tensor is not None:
                        tensor.fill_(spoilt)
            previous = self._collate(batch, wanted)
            yield previous

    def _collate(self, batch: list[int], streams: Sequence[str]) -> Batch:
        self.read.extend(batch)
        pad = torch.nn.utils.rnn.pad_sequence
        frames = codes = None
        if self.frames and "frames" in streams:
            self.read_frames.extend(batch)
            frames = pad([self.frames[i] for i in batch], batch_first=True)
        lengths = torch.tensor([self.lengths[i] for i in batch])
        if self.codes and "codes" in streams:
            codes = pad([self.codes[i] for i in batch], batch_first=True)
        return frames, lengths, codes, list(batch)


def toy_store(n: int = 36, *, seed: int = 0, dim: int = 6, classes: int = 3, codebook_size: int = 8,
              **options: Any) -> tuple[MemoryStore, Tensor]:
    """Utterances of 1-6 identical frames ``v_i`` (so their AP vector is ``v_i``) around a class
    centre, with random codes in ``[0, codebook_size)``. Returns the store and the ``v_i``."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    vectors = torch.eye(classes, dim)[labels] * 2 + torch.randn(n, dim, generator=generator)
    lengths = torch.randint(1, 7, (n,), generator=generator).tolist()
    frames = [v.expand(t, dim).clone() for v, t in zip(vectors, lengths, strict=True)]
    codes = [torch.randint(0, codebook_size, (t, 2), generator=generator) for t in lengths]
    meta = [{"id": f"u{i}", "label": f"class{int(y)}", "split": "train", "num_frames": t,
             "duration": t / 50}
            for i, (y, t) in enumerate(zip(labels, lengths, strict=True))]
    return MemoryStore(frames, codes, meta, codebook_size=codebook_size, **options), vectors
