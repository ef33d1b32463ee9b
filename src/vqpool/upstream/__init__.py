"""Upstreams: waveforms -> frames ``[B, T, D]`` and codes ``[B, T, G]`` (docs/methods.md section 1).

``load_upstream`` takes ``"logmel"``, ``"ge2e"``, a Hugging Face hub id or a local model directory,
and ``codes_from`` a code source other than the upstream's own (`vqpool.upstream.codes`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vqpool.errors import ParameterError
from vqpool.upstream.base import Upstream, UpstreamOutput
from vqpool.upstream.codebook import KMeansCodebook
from vqpool.upstream.codes import CodesFrom, CodeSource, load_code_source

__all__ = ["BUILTIN_UPSTREAMS", "CodeSource", "CodesFrom", "KMeansCodebook", "Upstream",
           "UpstreamOutput", "load_upstream"]

BUILTIN_UPSTREAMS = ("logmel", "ge2e")
"""The upstreams vqpool carries itself; every other spec is a transformers model."""


def load_upstream(
    spec: str,
    *,
    layers: str = "mean",
    codebook: str | os.PathLike | KMeansCodebook | None = None,
    codes_from: str | os.PathLike | CodesFrom | CodeSource | None = None,
    device: str | torch.device = "cpu",
    allow_download: bool = False,
) -> Upstream:
    """Build the upstream named by ``spec``.

    ``layers`` picks the frames: ``"mean"`` over all layers (default), ``"last"``, one index
    ``"N"``, a list ``"a,b,c"`` (their mean), or ``"cnn"`` (a transformers model's CNN output).
    ``codebook`` (a path or a loaded codebook) gives codes to upstreams without a quantizer and
    replaces a wav2vec 2.0 quantizer's. ``codes_from`` takes the codes from elsewhere instead: a
    codec checkpoint, another upstream's codebook, a fairseq km.bin or precomputed units
    (`vqpool.upstream.codes`; a `CodesFrom` adds levels, layer, rate), aligned to the frames by
    time. A hub id is only fetched when ``allow_download`` is True.
    """
    if codebook is not None and codes_from is not None:
        raise ParameterError("codes_from", "replaces the upstream's codes: give it or {codebook}, not both")
    if codebook is not None and not isinstance(codebook, KMeansCodebook):
        codebook = KMeansCodebook.load(Path(codebook))
    options = {"layers": layers, "codebook": codebook, "device": device}
    if spec == "logmel":
        from vqpool.upstream.logmel import LogMel

        upstream: Upstream = LogMel(**options)
    elif spec == "ge2e":
        from vqpool.upstream.ge2e import GE2E

        upstream = GE2E(**options)
    else:
        from vqpool.upstream.hf import TransformersUpstream

        upstream = TransformersUpstream(spec, allow_download=allow_download, **options)
    if codes_from is not None:
        upstream.attach_codes(load_code_source(codes_from, upstream, allow_download=allow_download))
    return upstream
