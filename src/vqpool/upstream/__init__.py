"""Upstreams: waveforms -> frames ``[B, T, D]`` and codes ``[B, T, G]`` (docs/methods.md section 1).

``load_upstream`` takes ``"logmel"``, ``"ge2e"``, a Hugging Face hub id or a local model directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vqpool.upstream.base import Upstream, UpstreamOutput
from vqpool.upstream.codebook import KMeansCodebook

__all__ = ["BUILTIN_UPSTREAMS", "KMeansCodebook", "Upstream", "UpstreamOutput", "load_upstream"]

BUILTIN_UPSTREAMS = ("logmel", "ge2e")
"""The upstreams vqpool carries itself; every other spec is a transformers model."""


def load_upstream(
    spec: str,
    *,
    layers: str = "mean",
    codebook: str | os.PathLike | KMeansCodebook | None = None,
    device: str | torch.device = "cpu",
    allow_download: bool = False,
) -> Upstream:
    """Build the upstream named by ``spec``.

    ``layers`` picks the frames: ``"mean"`` over all layers (default), ``"last"``, one index
    ``"N"``, a list ``"a,b,c"`` (their mean), or ``"cnn"`` (a transformers model's CNN output).
    ``codebook`` (a path or a loaded codebook) gives codes to upstreams without a quantizer and
    replaces a wav2vec 2.0 quantizer's. A hub id is only fetched when ``allow_download`` is True.
    """
    if codebook is not None and not isinstance(codebook, KMeansCodebook):
        codebook = KMeansCodebook.load(Path(codebook))
    options = {"layers": layers, "codebook": codebook, "device": device}
    if spec == "logmel":
        from vqpool.upstream.logmel import LogMel

        return LogMel(**options)
    if spec == "ge2e":
        from vqpool.upstream.ge2e import GE2E

        return GE2E(**options)
    from vqpool.upstream.hf import TransformersUpstream

    return TransformersUpstream(spec, allow_download=allow_download, **options)
