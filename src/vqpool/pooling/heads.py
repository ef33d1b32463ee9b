"""Trainable attention pooling heads (docs/methods.md section 5), trained jointly with the linear probe.

Every head maps ``frames [B, L, D]`` and ``lengths [B]`` to ``[B, output_dim]``. Padding never
reaches the output: it is zeroed on entry and gets exactly zero attention. fp16/bf16 frames are
cast to the head's parameter dtype; softmax and statistics run in fp32.
"""

import torch
from torch import Tensor, nn

from vqpool.errors import ParameterError
from vqpool.pooling.masking import length_mask, weighted_average
from vqpool.pooling.registry import get_method, method_names


class _AttentivePooling(nn.Module):
    """Score every true frame with ``scorer``, softmax over time, then pool: the weighted mean
    (D), or with ``statistics`` the weighted mean and std (2D)."""

    def __init__(self, scorer: nn.Sequential, dim: int, statistics: bool) -> None:
        super().__init__()
        self.scorer = scorer
        self.statistics = statistics
        self.output_dim = 2 * dim if statistics else dim

    def attention_weights(self, frames: Tensor, lengths: Tensor) -> Tensor:
        """fp32 ``[B, L, 1]`` (one weight per frame) or ``[B, L, D]`` (per channel); each sums to
        1 over the true frames and is 0 on padding."""
        return self._attend(frames, lengths)[1]

    def forward(self, frames: Tensor, lengths: Tensor) -> Tensor:
        x, weights = self._attend(frames, lengths)
        if self.statistics:
            return _mean_std(x.float(), weights).to(x.dtype)
        return weighted_average(x, weights.squeeze(-1)).to(x.dtype)

    def _attend(self, frames: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        mask = length_mask(lengths, frames.shape[1])[..., None]
        x = frames.to(self.scorer[0].weight.dtype).masked_fill(~mask, 0)
        # a large finite negative, not -inf: a fully padded row then gives zeros, not NaN
        scores = self.scorer(x).float().masked_fill(~mask, torch.finfo(torch.float32).min)
        return x, scores.softmax(dim=1) * mask


def _mean_std(x: Tensor, weights: Tensor) -> Tensor:
    """``[mu; sigma]``, ``mu = sum_t w_t h_t``, ``sigma = sqrt(max(sum_t w_t h_t^2 - mu^2, 1e-5))``.

    One weight per frame (ASP) is a batched matrix product, with no [B, L, D] product tensor;
    per-channel weights (VAP) multiply element-wise."""
    if weights.shape[-1] == 1:
        over_time = weights.transpose(1, 2)  # [B, 1, L]
        mean, second = (torch.bmm(over_time, h).squeeze(1) for h in (x, x.square()))
    else:
        mean, second = (weights * x).sum(1), (weights * x.square()).sum(1)
    variance = second - mean.square()
    return torch.cat([mean, variance.clamp_min(1e-5).sqrt()], dim=-1)


# W's output size, which the paper leaves open (docs/methods.md section 5): 128 as VAP's bottleneck and SpeechBrain's ASP
# attention channels, so the scorer costs a fraction of the frames' pass for D = 768 or 1024.
ATTENTION_DIM = 128


def _attention_scorer(dim: int, hidden_dim: int) -> nn.Sequential:
    """``a_t = v^T tanh(W h_t + b)``."""
    return nn.Sequential(
        nn.Linear(dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, 1, bias=False)
    )


class SelfAttentivePooling(_AttentivePooling):
    """SAP: ``a_t = v^T tanh(W h_t + b)``, ``w = softmax_t(a)``, ``e = sum_t w_t h_t`` (D)."""

    def __init__(self, dim: int, hidden_dim: int = ATTENTION_DIM) -> None:
        super().__init__(_attention_scorer(dim, hidden_dim), dim, statistics=False)


class AttentiveStatisticsPooling(_AttentivePooling):
    """ASP: SAP's attention, ``e = [mu; sigma]`` (2D)."""

    def __init__(self, dim: int, hidden_dim: int = ATTENTION_DIM) -> None:
        super().__init__(_attention_scorer(dim, hidden_dim), dim, statistics=True)


class VectorAttentivePooling(_AttentivePooling):
    """VAP: ``A = W2 tanh(W1 h_t)``, softmax over time per channel, ``e = [mu; sigma]`` per
    channel (2D). W1 and W2 are 1x1 convolutions over time, i.e. per-frame linear maps."""

    def __init__(self, dim: int, hidden_dim: int = ATTENTION_DIM) -> None:
        scorer = nn.Sequential(
            nn.Linear(dim, hidden_dim, bias=False),
            nn.Tanh(),
            nn.Linear(hidden_dim, dim, bias=False),
        )
        super().__init__(scorer, dim, statistics=True)


def build_head(name: str, dim: int) -> nn.Module:
    """The registered head called ``name`` (``vqpool.pooling.HEADS``) for ``dim``-dimensional frames."""
    names = method_names(trained=True)
    if name not in names:
        raise ParameterError("name", f"{name!r} is not a pooling head; choose from {', '.join(names)}")
    return get_method(name).head(dim)
