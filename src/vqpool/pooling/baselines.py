"""The training-free baselines beside the VQ methods (METHODS.md section 4): statistics pooling,
and the whitening and soft-decay transforms of AP vectors."""

import torch
import torch.nn.functional as F
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.pooling.masking import length_mask, weighted_average
from vqpool.pooling.stats import CorpusStats, decay_singular_values


def statistics_pooling(frames: Tensor, lengths: Tensor) -> Tensor:
    """``[mean; std]`` over each utterance's true frames: ``[B, L, D] -> fp32 [B, 2D]``.

    std uses the ``T - 1`` denominator plus 1e-5, so a one-frame utterance gets exactly 1e-5.
    """
    mask = length_mask(lengths, frames.shape[1])
    # zero the padding so that not even NaN garbage there can leak in through 0 * NaN
    x = frames.float().masked_fill(~mask[..., None], 0)
    count = lengths.float()[:, None]
    mean = weighted_average(x, mask / count)
    centred = (x - mean[:, None]) * mask[..., None]
    variance = centred.square().sum(1) / (count - 1).clamp_min(1)
    return torch.cat([mean, variance.sqrt() + 1e-5], dim=-1)


def whiten(ap_vectors: Tensor, stats: CorpusStats | None) -> Tensor:
    """WhiteningBERT: ``normalize_L2((x - mu) W)`` with the training corpus's ``mu`` and ``W``."""
    mean, matrix = _fitted(stats, "whitening", ap_vectors)
    return F.normalize((ap_vectors.float() - mean) @ matrix, dim=-1)


def soft_decay(
    ap_vectors: Tensor, stats: CorpusStats | None = None, semantics: str = "paper"
) -> Tensor:
    """Soft-Decay of singular values: ``x -> x V diag(f(s) / s) V^T``.

    "paper": ``V`` and ``s`` from the training corpus's AP vectors (``stats``). "reference": as
    the reference implementation ran it, on each utterance's vector alone; the SVD of a 1 x D
    matrix is ``s = |x|``, ``V = x / |x|`` and the rescaling maps ``s`` to itself, so this is an
    identity up to rounding (why SoftDecay ~ AP in the paper's Table 1). ``stats`` is unused there.
    """
    if semantics == "reference":
        x = ap_vectors.double()
        s = x.norm(dim=-1, keepdim=True)
        scale = torch.where(s > 0, decay_singular_values(s) / s, 0.0)  # a zero vector stays zero
        return (x * scale).float()
    if semantics != "paper":
        raise VqpoolError(f"semantics must be 'paper' or 'reference'; got {semantics!r}")
    basis, scale = _fitted(stats, "softdecay", ap_vectors)
    return (ap_vectors.float() @ basis * scale) @ basis.T


def _fitted(stats: CorpusStats | None, part: str, ap_vectors: Tensor) -> tuple[Tensor, Tensor]:
    """The two tensors of a fitted transform, as fp32 on the vectors' device."""
    if stats is None or part not in stats.include:
        raise VqpoolError(
            f"{part} needs CorpusStats fitted on the training split's frames "
            f"(CorpusStats.fit on batches with frames; these stats: {stats})"
        )
    if ap_vectors.ndim != 2 or ap_vectors.shape[-1] != stats.dim:
        raise VqpoolError(
            f"{part}: AP vectors of shape {tuple(ap_vectors.shape)} do not match the corpus "
            f"statistics' D={stats.dim}"
        )
    tensors = {
        "whitening": (stats.whitening_mean, stats.whitening_matrix),
        "softdecay": (stats.softdecay_basis, stats.softdecay_scale),
    }[part]
    return tuple(t.to(ap_vectors.device, torch.float32) for t in tensors)
