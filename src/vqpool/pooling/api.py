"""``pool`` and ``frame_weights``: check what the user passed, then dispatch to the method."""

from typing import Literal

import torch
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.pooling import baselines, weights
from vqpool.pooling.masking import length_mask, weighted_average
from vqpool.pooling.stats import CorpusStats

PARTITION_METHODS = ("vq-squash-and", "vq-squash-or", "vq-allsquash-and", "vq-allsquash-or")
CODE_METHODS = (*PARTITION_METHODS, "vq-sif", "vq-lp", "vq-gp", "vq-bp")
WEIGHTED_METHODS = ("ap", *CODE_METHODS)
METHODS = ("ap", "sp", "whitening", "softdecay", *CODE_METHODS)
STATS_METHODS = ("whitening", "softdecay", "vq-sif", "vq-gp", "vq-bp")
HEADS = ("sap", "asp", "vap")
SEMANTICS = ("paper", "reference")

Semantics = Literal["paper", "reference"]


def pool(
    frames: Tensor,
    lengths: Tensor,
    codes: Tensor | None = None,
    method: str = "vq-lp",
    stats: CorpusStats | None = None,
    *,
    semantics: Semantics = "paper",
    a: float = 1e-3,
    smoothing: float = 1.0,
) -> Tensor:
    """Pool padded frames ``[B, L, D]`` (fp32/fp16/bf16) into fp32 ``[B, D]`` (``[B, 2D]`` for sp).

    ``lengths [B]`` counts each utterance's true frames (1..L); frames beyond are never pooled
    (but must be finite: they are multiplied by a zero weight).
    ``codes [B, L, G]`` (the vq-* methods) holds one code in ``[0, V)`` per frame and codebook.
    ``stats`` (a fitted `CorpusStats`) serves whitening, softdecay, vq-sif, vq-gp and vq-bp.
    ``semantics``: "paper" (the paper's definitions) or "reference" (its code's behaviour, for
    vq-squash-or, vq-allsquash-or and softdecay); ``a``: the vq-sif parameter; ``smoothing``: added
    to every corpus code count (vq-gp, vq-bp).
    """
    _check_method(method, METHODS)
    _check_options(method, stats, semantics, a, smoothing)
    if not isinstance(frames, Tensor) or frames.ndim != 3 or not frames.is_floating_point():
        raise VqpoolError(f"frames must be a float tensor [B, L, D]; got {_describe(frames)}")
    batch, length, _ = frames.shape
    _check_lengths(lengths, batch, length, frames.device)
    if method == "sp":
        return baselines.statistics_pooling(frames, lengths)
    if method in WEIGHTED_METHODS:
        return weighted_average(
            frames, _weights(lengths, codes, method, stats, semantics, a, smoothing, length)
        )
    ap = weighted_average(frames, weights.average(length_mask(lengths, length)))
    if method == "whitening":
        return baselines.whiten(ap, stats)
    return baselines.soft_decay(ap, stats, semantics)


def frame_weights(
    lengths: Tensor,
    codes: Tensor | None,
    method: str = "vq-lp",
    stats: CorpusStats | None = None,
    *,
    semantics: Semantics = "paper",
    a: float = 1e-3,
    smoothing: float = 1.0,
) -> Tensor:
    """The fp32 ``[B, L]`` frame weights of a weighted-average method (ap or vq-*), 0 on padding,
    summing to 1 over the true frames (but for the reference vq-allsquash-or). Same arguments as
    `pool`; for ap without codes, L is the longest length."""
    _check_method(
        method, WEIGHTED_METHODS, what="a weighted-average method (one with frame weights)"
    )
    _check_options(method, stats, semantics, a, smoothing)
    if codes is None:
        if not isinstance(lengths, Tensor) or lengths.ndim != 1:
            raise VqpoolError(f"lengths must be an integer tensor [B]; got {_describe(lengths)}")
        _check_lengths(lengths, lengths.shape[0], None, lengths.device)
    return _weights(lengths, codes, method, stats, semantics, a, smoothing, None)


def _weights(
    lengths: Tensor,
    codes: Tensor | None,
    method: str,
    stats: CorpusStats | None,
    semantics: str,
    a: float,
    smoothing: float,
    length: int | None,
) -> Tensor:
    """Check ``codes`` (``lengths`` too when ``length`` is None, i.e. no frames fixed it) and
    compute the weights."""
    if codes is None:
        if method != "ap":
            raise VqpoolError(f"method {method!r} needs codes [B, L, G]; got codes=None")
        return weights.average(length_mask(lengths, length or int(lengths.max())))
    if (
        not isinstance(codes, Tensor)
        or codes.ndim != 3
        or codes.is_floating_point()
        or codes.dtype == torch.bool
    ):
        raise VqpoolError(f"codes must be an integer tensor [B, L, G]; got {_describe(codes)}")
    if length is None:
        _check_lengths(lengths, codes.shape[0], codes.shape[1], codes.device)
    elif codes.shape[:2] != (lengths.shape[0], length):
        raise VqpoolError(
            f"codes have shape {tuple(codes.shape)} but frames are [B={lengths.shape[0]}, L={length}, D]"
        )
    elif codes.device != lengths.device:
        raise VqpoolError(f"codes are on {codes.device} but the frames are on {lengths.device}")
    mask = length_mask(lengths, codes.shape[1])
    if method == "ap":
        return weights.average(mask)
    codes = codes.long().masked_fill(~mask[..., None], 0)  # padding may hold anything
    low, high = torch.aminmax(codes)
    if low < 0:
        raise VqpoolError(f"codes must be non-negative; found {int(low)} on a true frame")
    if method in STATS_METHODS:
        stats.check_codes(codes)
    if method == "vq-lp":
        return weights.local_probability(codes, mask, int(high) + 1)
    if method == "vq-gp":
        return weights.global_probability(codes, mask, stats, smoothing)
    if method == "vq-bp":
        return weights.both_probability(codes, mask, stats, smoothing)
    if method == "vq-sif":
        return weights.sif(codes, mask, stats, a)
    return weights.partition(method, codes, mask, semantics)


def output_dim(method: str, dim: int) -> int:
    """Size of the pooled vector for frames of size ``dim``: 2 dim for sp, asp and vap."""
    _check_method(method, (*METHODS, *HEADS), what="a pooling method or head")
    return 2 * dim if method in ("sp", "asp", "vap") else dim


def _check_method(method: str, allowed: tuple[str, ...], what: str = "a pooling method") -> None:
    if method not in allowed:
        raise VqpoolError(f"method {method!r} is not {what}; choose from {', '.join(allowed)}")


def _check_options(
    method: str, stats: CorpusStats | None, semantics: str, a: float, smoothing: float
) -> None:
    if semantics not in SEMANTICS:
        raise VqpoolError(f"semantics {semantics!r} is unknown; choose from {', '.join(SEMANTICS)}")
    if method in STATS_METHODS and stats is None:
        raise VqpoolError(
            f"method {method!r} needs corpus statistics: pass stats=CorpusStats.fit(...) "
            "fitted on the training split"
        )
    if method == "vq-sif" and not a > 0:
        raise VqpoolError(f"a must be positive for vq-sif (1e-5 ... 1e-1); got {a}")
    if method in ("vq-gp", "vq-bp") and not smoothing >= 0:
        raise VqpoolError(f"smoothing must be >= 0; got {smoothing}")


def _check_lengths(
    lengths: Tensor, batch: int, length: int | None, device: torch.device | None
) -> None:
    if (
        not isinstance(lengths, Tensor)
        or lengths.ndim != 1
        or lengths.is_floating_point()
        or lengths.dtype == torch.bool
    ):
        raise VqpoolError(f"lengths must be an integer tensor [B]; got {_describe(lengths)}")
    if lengths.shape[0] != batch:
        raise VqpoolError(
            f"lengths has {lengths.shape[0]} entries for a batch of {batch} utterances"
        )
    if device is not None and lengths.device != device:
        raise VqpoolError(f"lengths are on {lengths.device} but the frames/codes are on {device}")
    if batch == 0:
        raise VqpoolError("the batch is empty (B = 0)")
    low, high = torch.aminmax(lengths)
    if low < 1 or (length is not None and high > length):
        allowed = "be >= 1" if length is None else f"lie in [1, L={length}]"
        raise VqpoolError(
            f"lengths must {allowed} (every utterance needs a frame); got values in [{int(low)}, {int(high)}]"
        )


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)} on {value.device}"
    return type(value).__name__
