"""Tensor helpers that every layer uses (upstream and pooling alike); imports nothing of vqpool."""

import torch
from torch import Tensor


def length_mask(lengths: Tensor, max_length: int) -> Tensor:
    """``[B, L]`` bool: True on an utterance's true frames, False on padding."""
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]
