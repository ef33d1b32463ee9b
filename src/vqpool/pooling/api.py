"""``pool`` and ``frame_weights``: check what the user passed, then ask the method's record."""

from typing import Any

import torch
from torch import Tensor

from vqpool.defaults import DEFAULT_METHOD
from vqpool.errors import ParameterError, VqpoolError
from vqpool.pooling import kernels, weights
from vqpool.pooling.masking import length_mask, weighted_average
from vqpool.pooling.options import PoolOptions
from vqpool.pooling.registry import Method, get_method
from vqpool.pooling.stats import CorpusStats

# Codes in a batch from which checking the padding beats copying it (4 MiB of int32 codes).
ZERO_CHECK_ELEMENTS = 1 << 20


def pool(
    frames: Tensor,
    lengths: Tensor,
    codes: Tensor | None = None,
    method: str = DEFAULT_METHOD,
    stats: CorpusStats | None = None,
    **options: Any,
) -> Tensor:
    """Pool padded frames ``[B, L, D]`` (fp32/fp16/bf16) into fp32 ``[B, D]`` (``[B, 2D]`` for sp).

    ``lengths [B]`` counts each utterance's true frames (1..L); frames beyond are never pooled
    (but must be finite: they are multiplied by a zero weight).
    ``codes [B, L, G]`` (the vq-* methods) holds one code in ``[0, V)`` per frame and codebook,
    of any integer dtype (the methods work in int32, as stores give codes: other dtypes cost a
    conversion).
    ``stats`` (a fitted `CorpusStats`) serves whitening, softdecay, vq-sif, vq-gp and vq-bp.
    ``options`` are pooling options (`PoolOptions`, which checks them): ``semantics``: "paper"
    (the paper's definitions, default) or "reference" (its code's behaviour, for vq-squash-or,
    vq-allsquash-or and softdecay); ``a``: the vq-sif parameter (1e-3); ``smoothing``: added to
    every corpus code count (vq-gp, vq-bp; 1); and those registered methods declare.
    """
    record = get_method(method)
    chosen = PoolOptions.of(**options)
    _check_needs(record, codes, stats)
    if record.trained:
        raise ParameterError("method", f"{method!r} is a supervised head: build it with "
                             "vqpool.heads.build_head and train it (vqpool probe)")
    if not isinstance(frames, Tensor) or frames.ndim != 3 or not frames.is_floating_point():
        raise ParameterError("frames", f"must be a float tensor [B, L, D]; got {_describe(frames)}")
    batch, length, _ = frames.shape
    _check_lengths(lengths, batch, length, frames.device)
    if record.weights is not None:
        return weighted_average(frames, _weights(record, lengths, codes, stats, chosen, length))
    if record.transform is not None:
        ap = weighted_average(frames, weights.average(length_mask(lengths, length)))
        return record.transform(ap, stats, chosen)
    if codes is not None and record.needs_codes:
        codes = _checked_codes(record, lengths, codes, stats, length)[0]
    elif codes is not None:  # unread: checked for shape only, as in _weights
        _check_code_shape(lengths, codes, length)
        codes = None
    return record.vectors(frames, lengths, codes, stats, chosen)


def frame_weights(
    lengths: Tensor,
    codes: Tensor | None,
    method: str = DEFAULT_METHOD,
    stats: CorpusStats | None = None,
    **options: Any,
) -> Tensor:
    """The fp32 ``[B, L]`` frame weights of a weighted-average method (ap, vq-*, or a registered
    ``weights`` method), 0 on padding, summing to 1 over the true frames (but for the reference
    vq-allsquash-or). Same arguments as `pool`; without codes, L is the longest length."""
    record = get_method(method)
    if record.weights is None:
        raise ParameterError("method", f"{method!r} is not a weighted average of frames, so it has "
                             "no frame weights")
    chosen = PoolOptions.of(**options)
    _check_needs(record, codes, stats)
    if codes is None:
        if not isinstance(lengths, Tensor) or lengths.ndim != 1:
            raise ParameterError("lengths", f"must be an integer tensor [B]; got {_describe(lengths)}")
        _check_lengths(lengths, lengths.shape[0], None, lengths.device)
    return _weights(record, lengths, codes, stats, chosen, None)


def _check_needs(record: Method, codes: Tensor | None, stats: CorpusStats | None) -> None:
    if record.needs_stats and stats is None:
        raise ParameterError("stats", f"is needed by method {record.name!r} (corpus statistics): "
                             "pass stats=CorpusStats.fit(...) fitted on the training split")
    if record.needs_codes and codes is None:
        raise ParameterError("codes", f"are needed by method {record.name!r} ([B, L, G] integers); "
                             "got codes=None")


def _weights(
    record: Method,
    lengths: Tensor,
    codes: Tensor | None,
    stats: CorpusStats | None,
    options: PoolOptions,
    length: int | None,
) -> Tensor:
    """Check ``codes`` (``lengths`` too when ``length`` is None, i.e. no frames fixed it) and
    compute the weights."""
    if codes is None:
        mask = length_mask(lengths, length or int(lengths.max()))
        return record.weights(lengths, None, mask, stats, options)
    if not record.needs_codes:
        # Codes the method never reads are checked for shape only: a pass over their values
        # (32 codebooks) would cost AP, the floor every method is measured against, more than
        # its own weighted average.
        _check_code_shape(lengths, codes, length)
        return record.weights(lengths, None, length_mask(lengths, codes.shape[1]), stats, options)
    codes, mask = _checked_codes(record, lengths, codes, stats, length)
    return record.weights(lengths, codes, mask, stats, options)


def _checked_codes(
    record: Method, lengths: Tensor, codes: Tensor, stats: CorpusStats | None, length: int | None
) -> tuple[Tensor, Tensor]:
    """int32 codes with padding set to 0, and the padding mask. The methods work in int32:
    half the memory traffic of int64, and what `FeatureStore.batches` gives (no copy then)."""
    _check_code_shape(lengths, codes, length)
    mask = length_mask(lengths, codes.shape[1])
    if codes.dtype.itemsize < 4:  # widening cannot wrap: widen first, then mask our own copy
        codes = codes.int().masked_fill_(~mask[..., None], 0)
    elif not _zero_padded(codes, lengths):  # padding may hold anything
        codes = codes.masked_fill(~mask[..., None], 0)
    low, high = (int(bound) for bound in torch.aminmax(codes))  # one pass: 32 codebooks are large
    if low < 0:
        raise ParameterError("codes", f"must be non-negative; found {low} on a true frame")
    if high > torch.iinfo(torch.int32).max:
        raise ParameterError("codes", f"must be below 2^31; found {high} on a true frame")
    if record.needs_stats and stats is not None:
        stats.check_codes(codes, bounds=(low, high))
    return codes.int(), mask


def _zero_padded(codes: Tensor, lengths: Tensor) -> bool:
    """Whether every code beyond each utterance's length is 0 already, as stores and upstreams
    pad them. Checked only for large batches on a CPU, where it costs less than the fresh
    [B, L, G] copy it saves (docs/benchmarks.md); a small copy costs less than the check's loop, and on a GPU the loop would synchronise per utterance.
    A compiled loop checks in one pass where numba is installed (`kernels.zero_padded`)."""
    if codes.device.type != "cpu" or codes.numel() < ZERO_CHECK_ELEMENTS:
        return False
    if kernels.serves(codes):
        return kernels.zero_padded(codes, lengths)
    length = codes.shape[1]
    return not any(bool(codes[row, end:].any()) for row, end in enumerate(lengths.tolist())
                   if end < length)


def _check_code_shape(lengths: Tensor, codes: Tensor, length: int | None) -> None:
    """``codes`` is an integer ``[B, L, G]`` tensor matching the frames (or, without frames,
    the ``lengths``)."""
    if (
        not isinstance(codes, Tensor)
        or codes.ndim != 3
        or codes.is_floating_point()
        or codes.dtype == torch.bool
    ):
        raise ParameterError("codes", f"must be an integer tensor [B, L, G]; got {_describe(codes)}")
    if length is None:
        _check_lengths(lengths, codes.shape[0], codes.shape[1], codes.device)
    elif codes.shape[:2] != (lengths.shape[0], length):
        raise ParameterError(
            "codes", f"have shape {tuple(codes.shape)} but frames are [B={lengths.shape[0]}, L={length}, D]"
        )
    elif codes.device != lengths.device:
        raise ParameterError("codes", f"are on {codes.device} but the frames are on {lengths.device}")


def _check_lengths(
    lengths: Tensor, batch: int, length: int | None, device: torch.device | None
) -> None:
    if (
        not isinstance(lengths, Tensor)
        or lengths.ndim != 1
        or lengths.is_floating_point()
        or lengths.dtype == torch.bool
    ):
        raise ParameterError("lengths", f"must be an integer tensor [B]; got {_describe(lengths)}")
    if lengths.shape[0] != batch:
        raise ParameterError("lengths", f"has {lengths.shape[0]} entries for a batch of {batch} utterances")
    if device is not None and lengths.device != device:
        raise ParameterError("lengths", f"are on {lengths.device} but the frames/codes are on {device}")
    if batch == 0:
        raise VqpoolError("the batch is empty (B = 0)")
    low, high = torch.aminmax(lengths)
    if low < 1 or (length is not None and high > length):
        allowed = "be >= 1" if length is None else f"lie in [1, L={length}]"
        raise ParameterError(
            "lengths", f"must {allowed} (every utterance needs a frame); got values in [{int(low)}, {int(high)}]"
        )


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)} on {value.device}"
    return type(value).__name__
