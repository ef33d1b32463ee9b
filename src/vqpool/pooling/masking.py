"""Padding masks, the weighted average every pooling method ends with, and cache-sized chunks."""

import torch
from torch import Tensor

from vqpool.tensors import length_mask as length_mask  # re-exported for pooling

# Frames stored in half precision are widened to fp32 a chunk of utterances of about this
# many values at a time, which stays in the CPU cache (a whole-batch fp32 copy would not;
# docs/benchmarks.md). A GPU converts the whole batch at once.
CHUNK_VALUES = 2**20
# Codes [B, L, G] are worked on a chunk of utterances of about this many codes at a time on a
# CPU: filling fresh whole-batch temporaries costs more than the arithmetic (a tuple hash of
# B=256, L=800, G=32 codes took 4x as long in one piece as in chunks of this size).
CHUNK_CODES = 2**17


def chunk_rows(frames: Tensor) -> int:
    """Utterances per cache-sized chunk of ``frames [B, L, D]`` (all of them on a GPU)."""
    batch, length, dim = frames.shape
    return batch if frames.device.type != "cpu" else max(1, CHUNK_VALUES // max(1, length * dim))


def row_chunks(rows: int, row_size: int, device: torch.device, most: int | None = None, *,
               codes: int = CHUNK_CODES) -> list[slice]:
    """Slices of ``rows`` rows of ``row_size`` codes each, at most ``codes`` codes (and ``most``
    rows) a slice but at least one row, on a CPU; all rows at once (up to ``most``) on a GPU,
    where one large kernel beats many small ones."""
    step = rows if device.type != "cpu" else max(1, codes // max(1, row_size))
    step = max(1, min(step, rows if most is None else most))
    return [slice(start, start + step) for start in range(0, rows, step)]


def index_dtype(codes: Tensor, entries: int = 0) -> torch.dtype:
    """The dtype of indices computed from ``codes`` into a table of ``entries``: int32 for int32
    codes (`pool` gives them: half the memory traffic of int64) while the table fits, else int64."""
    fits = codes.dtype == torch.int32 and entries < torch.iinfo(torch.int32).max
    return torch.int32 if fits else torch.int64


def weighted_average(frames: Tensor, weights: Tensor) -> Tensor:
    """``sum_t w_t h_t`` accumulated in fp32 whatever the frames' dtype: ``[B, L, D] x [B, L] -> [B, D]``."""
    weights = weights.float()
    if frames.dtype == torch.float32:
        return torch.einsum("bl,bld->bd", weights, frames)
    rows = chunk_rows(frames)
    pooled = torch.empty(frames.shape[0], frames.shape[2], device=frames.device)
    for start in range(0, frames.shape[0], rows):
        chunk = slice(start, start + rows)
        pooled[chunk] = torch.einsum("bl,bld->bd", weights[chunk], frames[chunk].float())
    return pooled
