"""The built-in pooling methods, in the paper's order (docs/methods.md sections 2-5), registered
as users' methods are; `vqpool.pooling` imports this module, so they are always there."""

from collections.abc import Callable

from torch import Tensor, nn

from vqpool.pooling import baselines, heads, partitions, weights
from vqpool.pooling.options import PoolOptions
from vqpool.pooling.registry import _REGISTRY, Method, WeightsFn, _add
from vqpool.pooling.stats import CorpusStats

Split = Callable[[Tensor, Tensor], Tensor]


def _partition(paper: Split, reference: Callable[[Tensor, Tensor], Tensor] | None = None) -> WeightsFn:
    """Weights over the partition ``paper`` labels; ``reference`` gives the reference code's
    weights where its semantics differ."""
    def compute(lengths: Tensor, codes: Tensor, mask: Tensor, stats: CorpusStats | None,
                options: PoolOptions) -> Tensor:
        if reference is not None and options.semantics == "reference":
            return reference(codes, mask)
        return weights.partition(paper, codes, mask)

    return compute


def _soft_decay(ap: Tensor, stats: CorpusStats | None, o: PoolOptions) -> Tensor:
    return baselines.soft_decay(ap, stats, o.semantics)


def _head(cls: type[nn.Module]) -> Callable[[int], nn.Module]:
    return lambda dim: cls(dim)


_TABLE2 = frozenset({"probe"})  # the paper's Table 2 rows
_FIGURE3 = frozenset({"frame-weights"})  # Figure 3's panels
_FIGURE3_STATS = frozenset({"frame-weights-stats"})  # Figure 3's panels when statistics are given
_FIGURE2 = frozenset({"map"})  # Figure 2's t-SNE maps
_COUNTS = frozenset({"counts"})  # the corpus code counts
for _method in (
    Method("ap", weights=lambda lengths, codes, mask, stats, o: weights.average(mask), tags=_TABLE2 | _FIGURE2,
           description="average pooling: every frame weighs 1/T"),
    Method("sp", vectors=lambda frames, lengths, codes, stats, o: baselines.statistics_pooling(frames, lengths),
           output_factor=2, tags=_TABLE2, description="statistics pooling: [mean; std]"),
    Method("whitening", transform=lambda ap, stats, o: baselines.whiten(ap, stats), needs_stats=True,
           stats_parts=frozenset({"whitening"}),
           description="WhiteningBERT: the AP vector whitened with the corpus's moments"),
    Method("softdecay", transform=_soft_decay, needs_stats=True, options=frozenset({"semantics"}),
           stats_parts=frozenset({"softdecay"}),
           description="Soft-Decay: the AP vector with its singular values flattened"),
    Method("vq-squash-and", weights=_partition(partitions.squash_and), needs_codes=True, tags=_FIGURE3,
           description="runs of identical code tuples share one vote"),
    Method("vq-squash-or", weights=_partition(
               partitions.squash_or, lambda codes, mask: weights.partition(partitions.squash_or_first, codes, mask)), needs_codes=True,
           options=frozenset({"semantics"}), description="runs linked by any shared code share one vote"),
    Method("vq-allsquash-and", weights=_partition(partitions.allsquash_and), needs_codes=True,
           description="all frames of one code tuple share one vote"),
    Method("vq-allsquash-or", weights=_partition(partitions.allsquash_or, weights.greedy_allsquash_or), needs_codes=True,
           options=frozenset({"semantics"}), tags=_FIGURE3,
           description="frames linked by any shared code share one vote"),
    Method("vq-sif", weights=lambda lengths, codes, mask, stats, o: weights.sif(codes, mask, stats, o.a),
           needs_codes=True, needs_stats=True, stats_parts=_COUNTS, options=frozenset({"a"}),
           description="smooth inverse frequency of the code tuple"),
    Method("vq-lp", weights=lambda lengths, codes, mask, stats, o: weights.local_probability(
               codes, mask, int(codes.max()) + 1),
           needs_codes=True, tags=_TABLE2 | _FIGURE3 | _FIGURE2,
           description="inverse count of a frame's codes within the utterance"),
    Method("vq-gp", weights=lambda lengths, codes, mask, stats, o: weights.global_probability(
               codes, mask, stats, o.smoothing),
           needs_codes=True, needs_stats=True, stats_parts=_COUNTS, options=frozenset({"smoothing"}),
           tags=_FIGURE3_STATS, description="inverse corpus count of a frame's codes"),
    Method("vq-bp", weights=lambda lengths, codes, mask, stats, o: weights.both_probability(
               codes, mask, stats, o.smoothing),
           needs_codes=True, needs_stats=True, stats_parts=_COUNTS, options=frozenset({"smoothing"}),
           tags=_FIGURE3_STATS, description="the product of the vq-lp and vq-gp weights"),
    Method("sap", head=_head(heads.SelfAttentivePooling), tags=_TABLE2,
           description="self-attentive pooling (trained)"),
    Method("asp", head=_head(heads.AttentiveStatisticsPooling), output_factor=2, tags=_TABLE2,
           description="attentive statistics pooling (trained)"),
    Method("vap", head=_head(heads.VectorAttentivePooling), output_factor=2, tags=_TABLE2,
           description="vector-based attentive pooling (trained)"),
):
    _add(Method(**{**_method.__dict__, "builtin": True}))

METHODS = tuple(name for name, m in _REGISTRY.items() if not m.trained)
"""The built-in training-free methods, in the paper's order."""
HEADS = tuple(name for name, m in _REGISTRY.items() if m.trained)
"""The built-in supervised pooling heads."""
