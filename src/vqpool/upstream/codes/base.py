"""Code sources: the codes pooled with an upstream's frames, as one abstraction (`CodeSource`).

An upstream's codes come from its own quantizer (`quantizer`: wav2vec 2.0), a k-means codebook
fitted on it (`kmeans.OwnCodebook`), or, with ``codes_from`` (``vqpool extract --codes-from
SPEC``), from a source of its own rate: a codec checkpoint (`codec`), a codebook of any upstream
or a fairseq km.bin (`kmeans`), precomputed units (`units`), or a plugin's (`registry`).

**Alignment** (`align_codes`, one rule for every source). A stream at R frames per second
(R = sample rate / hop) gives frame t the time span [t / R, (t + 1) / R) from the first sample;
frame t of the upstream takes the code j whose span holds its centre (t + 1/2) / R_frames:
``j = floor((2t + 1) R_codes / (2 R_frames))``, computed exactly in integers from the rates as
fractions. A centre on a boundary between two codes takes the later one (spans are half-open);
a centre past the last code takes the last code (a codec may give one code fewer than the
frames reach). So wav2vec 2.0's 50 Hz frames take EnCodec's 75 Hz codes 0, 2, 3, 5, 6, 8, ...
(frame centres at 10, 30, 50 ms fall in code spans [0, 13.3), [26.7, 40), [40, 53.3) ms) and
Mimi's 12.5 Hz codes four frames at a time. Receptive fields are not modelled: both streams are
taken at their hop grid. A code source at another sample rate gets the audio resampled for it
with soxr (from the upstream's rate: a 16 kHz upstream's audio holds nothing above 8 kHz).
"""

from __future__ import annotations

from abc import ABC
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.tensors import length_mask

if TYPE_CHECKING:
    from vqpool.upstream.base import Hidden, Keys, Upstream


ALIGNMENT = "centre"
ALIGNMENT_RULE = (
    "frame t takes code floor((2t + 1) R_codes / (2 R_frames)), the code whose span holds the "
    "frame's centre; a centre on a boundary takes the later code, past the last code the last one"
)
# A looked-up sequence may hold a few codes more or fewer than its rate predicts (edge rounding
# of the model that made them); more than this is a wrong rate or the wrong file.
UNIT_SLACK = 2


@dataclass(frozen=True)
class CodesFrom:
    """Where codes come from (`load_code_source`): ``spec`` is a codec checkpoint (folder or
    hub id), a codebook file, a ``km.bin``, or a folder / file of units. ``levels``: the first
    quantizer levels of a codec (default all); ``upstream`` and ``layer``: what a ``km.bin`` is
    applied to (default upstream: the frames' own); ``rate``: units per second of precomputed
    units (default: the frames' rate); ``manifest``: the fairseq ``.tsv`` whose files the lines
    of a ``.km`` label file follow (default: the ``.tsv`` beside it, if any)."""

    spec: str
    levels: int | None = None
    upstream: str | None = None
    layer: str | None = None
    rate: float | None = None
    manifest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def exact_rate(rate: float | Fraction) -> Fraction:
    """A rate in frames per second as an exact fraction (50, 75, 12.5, 44100/512 ...)."""
    return Fraction(rate).limit_denominator(1 << 20)


def align_codes(
    codes: Tensor,
    code_lengths: Tensor,
    code_rate: Fraction,
    frame_lengths: Tensor,
    num_frames: int,
    frame_rate: Fraction,
    first_frames: Tensor | None = None,
) -> Tensor:
    """Codes ``[B, C, G]`` at ``code_rate`` (each row's first ``code_lengths`` true) -> the
    ``[B, num_frames, G]`` codes of frames at ``frame_rate`` (the module's rule), 0 beyond each
    row's ``frame_lengths``. ``first_frames [B]`` (default 0) number the rows' frames from there
    (a window of a longer utterance whose codes are the whole utterance's)."""
    ratio = code_rate / frame_rate
    frames = torch.arange(num_frames, device=codes.device)[None]
    if first_frames is not None:
        frames = frames + first_frames.to(codes.device)[:, None]
    index = ((2 * frames + 1) * ratio.numerator) // (2 * ratio.denominator)
    index = torch.minimum(index, (code_lengths.to(codes.device) - 1)[:, None]).clamp_min(0)
    index = index.expand(codes.shape[0], -1)
    aligned = codes.gather(1, index[..., None].expand(-1, -1, codes.shape[2]))
    return aligned * length_mask(frame_lengths.to(codes.device), num_frames)[..., None]


class CodeSource(ABC):
    """Codes for waveforms (or utterance ids) at the source's own rate.

    Subclasses set the attributes and implement `codes`; `frame_codes` aligns them to an
    upstream's frames. Every kind of codes is one: the upstream's quantizer, a codebook fitted
    on it, a codec, another upstream's codebook, precomputed units, a plugin's. ``describe()`` goes into the store header (``code_source``), so a store
    made with other codes is never taken for this one.
    """

    kind: str  # "quantizer", "codebook", "codec", "kmeans", "units" or a plugin's
    name: str  # short, for tables: "encodec_24khz", "kmeans(hubert-base-ls960 L6)"
    request: CodesFrom  # what `load_code_source` was asked for (saved by `Encoder.save`)
    sample_rate: int | None  # of the audio it reads; None for units (they read none)
    rate: Fraction  # codes per second
    num_codebooks: int
    codebook_size: int
    pads_safely: bool = False  # False: run once per distinct length, so batching changes nothing
    # The field of `Keys` it looks codes up by ("ids" or "paths") instead of computing them.
    looks_up: str | None = None
    # False for the upstream's own codes (its quantizer, ``codebook=``): headers record those as
    # the upstream's, and only the others as ``code_source``.
    from_elsewhere: bool = True

    @property
    def label(self) -> str:
        """``"encodec_24khz x8"``: the name and the number of codebooks, for titles."""
        return f"{self.name} x{self.num_codebooks}"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "label": self.label,
            "request": self.request.to_json(),
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "sample_rate": self.sample_rate,
            "code_rate": float(self.rate),
            "code_rate_fraction": f"{self.rate.numerator}/{self.rate.denominator}",
            "alignment": ALIGNMENT,
            "alignment_rule": ALIGNMENT_RULE,
        }

    def codes(self, waveforms: Tensor, lengths: Tensor, ids: list[str] | None = None) -> tuple[Tensor, Tensor]:
        """``(codes [B, C, G] int64, code_lengths [B])`` of zero-padded waveforms ``[B, N]`` at
        `sample_rate` with true ``lengths`` (or of utterances ``ids``). A source that overrides
        `frame_codes` instead (codes the upstream's network computes) needs none."""
        raise NotImplementedError(f"{type(self).__name__} gives no codes of its own")

    def frame_codes(self, upstream: Upstream, waveforms: Tensor, lengths: Tensor, hidden: Hidden,
                    frame_lengths: Tensor, keys: Keys) -> Tensor:
        """The codes of ``upstream``'s frames for this batch, ``[B, T, G]`` on its device."""
        num_frames = int(frame_lengths.max())
        if self.looks_up is not None:
            looked_up = getattr(keys, self.looks_up)
            if looked_up is None or any(key is None for key in looked_up):
                what = {"ids": "utterance id", "paths": "audio file"}[self.looks_up]
                raise VqpoolError(f"{self.request.spec}: precomputed units are looked up by "
                                  f"{what}, and this batch came without them")
            codes, code_lengths = self.codes(waveforms, lengths, list(looked_up))
        else:
            codes, code_lengths = self.codes(*self._resampled(waveforms, lengths, upstream.sample_rate))
        if int(code_lengths.min()) < 1:
            row = int(code_lengths.argmin())
            raise VqpoolError(f"{self.request.spec}: gave no codes for a clip of {int(lengths[row])} "
                              f"samples at {upstream.sample_rate} Hz (too short for this code source)")
        first = None if keys.first_frames is None else torch.as_tensor(list(keys.first_frames))
        frame_rate = exact_rate(upstream.frame_rate)
        if self.looks_up is not None and first is None:
            self._check_counts(getattr(keys, self.looks_up), code_lengths, frame_lengths, frame_rate)
        return align_codes(codes.to(upstream.device), code_lengths, self.rate, frame_lengths,
                           num_frames, frame_rate, first)

    def _resampled(self, waveforms: Tensor, lengths: Tensor, rate: int) -> tuple[Tensor, Tensor]:
        if rate == self.sample_rate:
            return waveforms, lengths
        import soxr

        waves = [soxr.resample(row[:n].cpu().numpy(), rate, self.sample_rate, quality="HQ")
                 for row, n in zip(waveforms, lengths.tolist(), strict=True)]
        new_lengths = torch.tensor([len(wave) for wave in waves])
        padded = torch.zeros(len(waves), int(new_lengths.max()))
        for row, wave in enumerate(waves):
            padded[row, : len(wave)] = torch.from_numpy(np.asarray(wave, dtype=np.float32))
        return padded.to(waveforms.device), new_lengths.to(waveforms.device)

    def _check_counts(self, ids: Any, code_lengths: Tensor, frame_lengths: Tensor, frame_rate: Fraction) -> None:
        expected = frame_lengths.cpu().double() * float(self.rate / frame_rate)
        off = (code_lengths.cpu().double() - expected).abs() > UNIT_SLACK + 0.02 * expected
        if bool(off.any()):
            row = int(off.nonzero()[0])
            raise VqpoolError(
                f"{self.request.spec}: utterance {list(ids)[row]!r} has {int(code_lengths[row])} "
                f"units, but {int(frame_lengths[row])} frames at {float(frame_rate):g} Hz span "
                f"about {float(expected[row]):.1f} units at {float(self.rate):g} per second: give "
                "the units' rate (code_rate) or check that the file belongs to this audio"
            )

    def _by_length(self, encode: Any, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Run ``encode(waveforms [b, n]) -> [b, C, G]`` once per distinct length, unpadded, so
        that the codes never depend on the batch (codecs change near a zero-padded end)."""
        parts: dict[int, tuple[Tensor, Tensor]] = {}
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            parts[length] = (rows, encode(waveforms[rows, :length]))
        longest = max(codes.shape[1] for _, codes in parts.values())
        found = torch.zeros(len(lengths), longest, self.num_codebooks, dtype=torch.long,
                            device=waveforms.device)
        code_lengths = torch.zeros(len(lengths), dtype=torch.long)
        for rows, codes in parts.values():
            found[rows, : codes.shape[1]] = codes.long()
            code_lengths[rows.cpu()] = codes.shape[1]
        return found, code_lengths
