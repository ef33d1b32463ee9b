"""The codes of an upstream's own quantizer (wav2vec 2.0's product quantizer): the network gives
them with its hidden states, at the frames' own rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from vqpool.upstream.codes.base import CodesFrom, CodeSource, exact_rate

if TYPE_CHECKING:
    from vqpool.upstream.base import Hidden, Keys, Upstream


class QuantizerCodes(CodeSource):
    """``G`` codebooks of ``V`` entries that the upstream's network computes itself."""

    kind = "quantizer"
    from_elsewhere = False
    pads_safely = True

    def __init__(self, upstream: Upstream, num_codebooks: int, codebook_size: int) -> None:
        self.request = CodesFrom(upstream.name)
        self.name = "quantizer"
        self.sample_rate = upstream.sample_rate
        self.rate = exact_rate(upstream.frame_rate)
        self.num_codebooks, self.codebook_size = num_codebooks, codebook_size

    def frame_codes(self, upstream: Upstream, waveforms: Tensor, lengths: Tensor, hidden: Hidden,
                    frame_lengths: Tensor, keys: Keys) -> Tensor:
        return hidden.codes[:, : int(frame_lengths.max())]
