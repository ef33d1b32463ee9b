"""Padding masks and the weighted average every pooling method ends with."""

import torch
from torch import Tensor

from vqpool.tensors import length_mask as length_mask  # re-exported for pooling


def weighted_average(frames: Tensor, weights: Tensor) -> Tensor:
    """``sum_t w_t h_t`` accumulated in fp32 whatever the frames' dtype: ``[B, L, D] x [B, L] -> [B, D]``."""
    return torch.einsum("bl,bld->bd", weights.float(), frames.float())
