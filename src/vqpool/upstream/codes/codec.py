"""Codes from a transformers audio codec checkpoint (``EncodecModel``, ``DacModel``,
``MimiModel``; a local folder, or a hub id when downloads are allowed): the ``audio_codes`` of its
encoder, every quantizer level or the first ``levels`` (G = levels, V = its codebook size)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vqpool.errors import ParameterError
from vqpool.upstream.codes.base import CodesFrom, CodeSource
from vqpool.upstream.codes.registry import CodesContext, looks_like_path, register_code_source
from vqpool.upstream.hub import load_config, missing_model

CODECS = {"encodec": "EncodecModel", "dac": "DacModel", "mimi": "MimiModel"}


class CodecCodes(CodeSource):
    """The residual vector quantizer codes of an EnCodec, DAC or Mimi checkpoint's encoder,
    exactly as ``model.encode`` gives them for the unpadded waveform."""

    kind = "codec"

    def __init__(self, request: CodesFrom, *, device: torch.device, allow_download: bool) -> None:
        import transformers

        self.request, spec = request, request.spec
        local_only = not allow_download
        config = load_config(spec, allow_download, parameter="codes_from")
        if config.model_type not in CODECS:
            raise ParameterError("codes_from", f"{spec!r} is a {config.model_type!r} model, not an "
                                 f"audio codec ({', '.join(CODECS)})")
        self.model_type = config.model_type
        if self.model_type == "encodec" and config.chunk_length_s is not None:
            raise ParameterError("codes_from", f"{spec!r} encodes in overlapping chunks "
                                 f"(chunk_length_s={config.chunk_length_s}, like encodec_48khz), "
                                 "whose codes have no single time grid; use a codec without chunks")
        if getattr(config, "audio_channels", 1) != 1:
            raise ParameterError("codes_from", f"{spec!r} encodes {config.audio_channels} channels; "
                                 "vqpool feeds mono audio")
        cls = getattr(transformers, CODECS[self.model_type])
        try:
            self.model = cls.from_pretrained(spec, local_files_only=local_only,
                                             trust_remote_code=False).float().to(device).eval()
        except OSError as error:
            raise missing_model(spec, allow_download, error, parameter="codes_from") from error
        self.available = {"encodec": lambda: config.num_quantizers, "dac": lambda: config.n_codebooks,
                          "mimi": lambda: config.num_quantizers}[self.model_type]()
        levels = request.levels or self.available
        if not 1 <= levels <= self.available:
            raise ParameterError("codes_from.levels", f"is {levels}: {spec!r} has {self.available} "
                                 "quantizer levels")
        self.num_codebooks = levels
        self.codebook_size = int(config.codebook_size)
        self.sample_rate = int(config.sampling_rate)
        hop = config.frame_size if self.model_type == "mimi" else config.hop_length
        self.rate = Fraction(self.sample_rate, int(hop))
        self.name = Path(spec.rstrip("/")).name
        if self.model_type == "encodec":  # the smallest bandwidth with enough levels
            quantizer = self.model.quantizer
            self.bandwidth = min(bw for bw in config.target_bandwidths
                                 if quantizer.get_num_quantizers_for_bandwidth(bw) >= levels)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": {
            "class": type(self.model).__name__, "name_or_path": self.model.config.name_or_path,
            "levels_available": self.available}}

    @torch.inference_mode()
    def codes(self, waveforms: Tensor, lengths: Tensor, ids: list[str] | None = None) -> tuple[Tensor, Tensor]:
        return self._by_length(self._encode, waveforms, lengths)

    def _encode(self, waveforms: Tensor) -> Tensor:
        """``[b, n]`` equal-length waveforms -> ``[b, C, G]``."""
        inputs = waveforms[:, None, :]
        if self.model_type == "encodec":
            codes = self.model.encode(inputs, bandwidth=self.bandwidth).audio_codes[0]
        elif self.model_type == "dac":
            codes = self.model.encode(inputs, n_quantizers=self.num_codebooks).audio_codes
        else:
            codes = self.model.encode(inputs, num_quantizers=self.num_codebooks).audio_codes
        return codes[:, : self.num_codebooks].transpose(1, 2)


def _is_codec(request: CodesFrom) -> bool:
    """A folder holding config.json, or a name that is no path (a hub id)."""
    path = Path(request.spec).expanduser()
    if path.is_dir():
        return (path / "config.json").is_file()
    return not path.exists() and not looks_like_path(request.spec)


def _codec(request: CodesFrom, context: CodesContext) -> CodecCodes:
    return CodecCodes(request, device=context.upstream.device, allow_download=context.allow_download)


register_code_source("codec", _codec, matches=_is_codec, builtin=True,
                     description="an EnCodec, DAC or Mimi checkpoint (folder or hub id)")
