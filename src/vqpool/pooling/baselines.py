"""The training-free baselines beside the VQ methods (docs/methods.md section 4): statistics pooling,
and the whitening and soft-decay transforms of AP vectors."""

import torch
import torch.nn.functional as F
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.pooling.masking import chunk_rows, length_mask
from vqpool.pooling.stats import CorpusStats, decay_singular_values


def statistics_pooling(frames: Tensor, lengths: Tensor) -> Tensor:
    """``[mean; std]`` over each utterance's true frames: ``[B, L, D] -> fp32 [B, 2D]``.

    std uses the ``T - 1`` denominator plus 1e-5, so a one-frame utterance gets exactly 1e-5.
    """
    mask = length_mask(lengths, frames.shape[1])
    weights = (mask / lengths[:, None]).float()
    pooled = _mean_and_std(frames, weights, lengths)
    # a zero weight does not hide NaN or inf on the padding (0 * NaN is NaN): the rows they
    # reached are pooled again with their padding zeroed, a cost only such batches pay
    spoilt = ~pooled.sum(-1).isfinite()
    if spoilt.any():
        zeroed = frames[spoilt].masked_fill(~mask[spoilt, :, None], 0)
        pooled[spoilt] = _mean_and_std(zeroed, weights[spoilt], lengths[spoilt])
    return pooled


def _mean_and_std(frames: Tensor, weights: Tensor, lengths: Tensor) -> Tensor:
    """Two passes over each chunk of utterances, in fp32: the mean ``m = E[x]``, then the centred
    moments ``E[x - m]`` and ``E[(x - m)^2]``. The first is ``m``'s rounding error, which the
    variance ``E[(x - m)^2] - E[x - m]^2`` takes out (std stays accurate when ``|m| >> std``).
    The results go straight into the output and finish in place: a new tensor costs page faults."""
    # A chunk at a time, so that the second pass finds it still in the CPU cache.
    batch, length, dim = frames.shape
    rows = chunk_rows(frames)
    centred = torch.empty(min(rows, batch) * length * dim, device=frames.device)
    pooled = torch.empty(batch, 2, 1, dim, device=frames.device)  # [mean; second moment]
    drift = torch.empty(batch, 1, dim, device=frames.device)
    for start in range(0, batch, rows):
        chunk = slice(start, start + rows)
        true_length = int(lengths[chunk].max())  # the padding beyond it has weight 0 anyway
        x = frames[chunk, :true_length].float()
        w = weights[chunk, None, :true_length]
        pooled[chunk, 0] = mean = torch.bmm(w, x)
        y = torch.sub(x, mean, out=centred[: x.numel()].view(x.shape))
        torch.bmm(w, y, out=drift[chunk])
        pooled[chunk, 1] = torch.bmm(w, y.square_())
    count = lengths[:, None, None]
    variance = pooled[:, 1].sub_(drift.square_()).clamp_min_(0)
    variance.mul_(count / (count - 1).clamp_min(1)).sqrt_().add_(1e-5)  # now the std
    return pooled.view(batch, 2 * dim)


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
