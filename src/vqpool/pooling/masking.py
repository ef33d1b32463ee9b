"""Padding masks and the weighted average every pooling method ends with."""

import torch
from torch import Tensor


def length_mask(lengths: Tensor, max_length: int) -> Tensor:
    """``[B, L]`` bool: True on an utterance's true frames, False on padding."""
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def weighted_average(frames: Tensor, weights: Tensor) -> Tensor:
    """``sum_t w_t h_t`` accumulated in fp32 whatever the frames' dtype: ``[B, L, D] x [B, L] -> [B, D]``."""
    return torch.einsum("bl,bld->bd", weights.float(), frames.float())
