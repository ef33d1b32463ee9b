"""Frame weights of the weighted-average methods (docs/methods.md section 2), for a padded batch.

Every function takes ``codes [B, L, G]`` (int32 or int64, 0 on padding) and ``mask [B, L]`` and
returns fp32 ``[B, L]`` weights, 0 on padding and summing to 1 over each utterance's true frames (except
the reference vq-allsquash-or, which keeps the reference's unnormalised weights).
"""

from collections.abc import Callable

import torch
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.pooling import kernels, partitions
from vqpool.pooling.masking import index_dtype, row_chunks
from vqpool.pooling.stats import CorpusStats


def average(mask: Tensor) -> Tensor:
    """ap: ``w_t = 1 / T``."""
    return mask / mask.sum(1, keepdim=True)


def local_probability(codes: Tensor, mask: Tensor, codebook_size: int) -> Tensor:
    """vq-lp: ``w_t ∝ 1 / sum_g n_g(q_t^g)``, n_g counting the codes of this utterance."""
    total = partitions.per_code(codes, mask, codebook_size, total=True)
    return normalize(1 / total.float(), mask)


def global_probability(codes: Tensor, mask: Tensor, stats: CorpusStats, smoothing: float) -> Tensor:
    """vq-gp: ``w_t ∝ 1 / sum_g N_g(q_t^g)``, N_g the training corpus's counts plus ``smoothing``."""
    groups, values = stats.code_counts.shape
    if kernels.serves(codes):
        counts = kernels.corpus_totals(codes, mask.sum(1), stats.code_counts.cpu())
    else:
        offsets = (torch.arange(groups, device=codes.device) * values).to(index_dtype(codes, groups * values))
        table = stats.code_counts.to(codes.device).view(-1)
        counts = torch.empty(codes.shape[:2], dtype=torch.long, device=codes.device)
        for rows in row_chunks(codes.shape[0], codes.shape[1] * groups, codes.device):
            part = codes[rows]
            counts[rows] = table.index_select(0, (part + offsets).view(-1)).view(part.shape).sum(-1)
    # exact integer sums, smoothing added once: float32 would round counts above 2^24
    total = counts.double() + groups * smoothing
    if smoothing == 0 and bool((total[mask] == 0).any()):
        raise VqpoolError(
            "vq-gp/vq-bp: some frames carry only codes never seen in the corpus statistics; "
            "use smoothing > 0 (default 1)"
        )
    return normalize((1 / total).float(), mask)


def both_probability(codes: Tensor, mask: Tensor, stats: CorpusStats, smoothing: float) -> Tensor:
    """vq-bp: ``w_t ∝ w_t^LP w_t^GP``, each normalised first."""
    local = local_probability(codes, mask, stats.codebook_size)
    return normalize(local * global_probability(codes, mask, stats, smoothing), mask)


def sif(codes: Tensor, mask: Tensor, stats: CorpusStats, a: float) -> Tensor:
    """vq-sif: ``w_t ∝ a / (a + p(q_t))``, p the raw corpus frequency of the code tuple."""
    return normalize(a / (a + stats.tuple_frequency(codes, in_range=True).to(codes.device)), mask)


def partition(split: Callable[[Tensor, Tensor], Tensor], codes: Tensor, mask: Tensor) -> Tensor:
    """The vq-*squash-* methods: ``w_t = 1 / (K size(P(t)))`` over the partition of section 3
    that ``split(codes, mask)`` labels."""
    return partitions.partition_weights(split(codes, mask), mask)


def greedy_allsquash_or(codes: Tensor, mask: Tensor) -> Tensor:
    """The reference vq-allsquash-or: its greedy chaining, weights assigned per code tuple."""
    labels = partitions.allsquash_or_greedy(codes, mask)
    return partitions.greedy_tuple_weights(labels, codes, mask)


def normalize(weights: Tensor, mask: Tensor) -> Tensor:
    """Zero the padding, then scale each utterance's weights to sum to 1."""
    weights = torch.where(mask, weights, 0.0)
    return weights / weights.sum(1, keepdim=True)
