"""Upstreams by name: `register_upstream`, and `load_upstream`, the one place where an upstream
and its codes are put together.

A spec names a registered upstream (``"logmel"``, ``"ge2e"``, a plugin's), else the first whose
``matches`` accepts it (users' and plugins' before the built-in ones), else the fallback: any
other spec is a transformers model (a hub id or a local folder). Plugins register through the
``vqpool.upstreams`` entry points (`vqpool.plugins`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from vqpool import plugins
from vqpool.errors import ParameterError, VqpoolError
from vqpool.upstream.base import Upstream
from vqpool.upstream.codebook import KMeansCodebook
from vqpool.upstream.codes import CodesContext, CodesFrom, CodeSource, OwnCodebook, load_code_source

UpstreamFactory = Callable[..., Upstream]
"""``factory(spec, *, layers, device, allow_download) -> Upstream``."""


@dataclass(frozen=True)
class UpstreamEntry:
    name: str
    factory: UpstreamFactory
    matches: Callable[[str], bool] | None
    builtin: bool
    fallback: bool  # takes every spec no other upstream takes
    description: str


UPSTREAMS: plugins.Registry[UpstreamEntry] = plugins.Registry(plugins.UPSTREAMS, "upstream")


def register_upstream(
    name: str,
    factory: UpstreamFactory,
    *,
    matches: Callable[[str], bool] | None = None,
    description: str = "",
    builtin: bool = False,
    fallback: bool = False,
) -> UpstreamEntry:
    """Register an upstream: ``factory(spec, *, layers, device, allow_download)`` returns an
    `Upstream` for the specs equal to ``name`` or accepted by ``matches(spec)``."""
    if not name or name != name.strip():
        raise ParameterError("name", f"{name!r} is not an upstream name")
    return UPSTREAMS.add(name, UpstreamEntry(name, factory, matches, builtin, fallback, description))


def upstream_names() -> tuple[str, ...]:
    """Registered upstreams, the plugins' included."""
    return UPSTREAMS.names()


def find_upstream(spec: str) -> UpstreamEntry:
    """The registered upstream that takes ``spec``."""
    entry = UPSTREAMS.get(spec)
    if entry is not None and not entry.fallback:
        return entry
    for entry in UPSTREAMS.in_order():
        if entry.fallback or (entry.matches is not None and entry.matches(spec)):
            return entry
    raise ParameterError("upstream", f"{spec!r}: no registered upstream takes it "
                         f"({', '.join(UPSTREAMS.names())})")


def load_upstream(
    spec: str,
    *,
    layers: str = "mean",
    codebook: str | os.PathLike | KMeansCodebook | None = None,
    codes_from: str | os.PathLike | CodesFrom | CodeSource | None = None,
    device: str | torch.device = "cpu",
    allow_download: bool = False,
) -> Upstream:
    """Build the upstream named by ``spec``, with its codes.

    ``layers`` picks the frames: ``"mean"`` over all layers (default), ``"last"``, one index
    ``"N"``, a list ``"a,b,c"`` (their mean), or ``"cnn"`` (a transformers model's CNN output).
    ``codebook`` (a path or a loaded codebook) gives codes to upstreams without a quantizer and
    replaces a wav2vec 2.0 quantizer's. ``codes_from`` takes the codes from elsewhere instead: a
    codec checkpoint, another upstream's codebook, a fairseq km.bin, precomputed units or a
    plugin's source (`vqpool.upstream.codes`; a `CodesFrom` adds levels, layer, rate), aligned
    to the frames by time. A hub id is only fetched when ``allow_download`` is True.
    """
    _one_source(codebook, codes_from)  # before the model loads
    upstream = find_upstream(spec).factory(spec, layers=layers, device=device,
                                           allow_download=allow_download)
    if not isinstance(upstream, Upstream):
        raise VqpoolError(f"upstream {spec!r}: its factory returned {type(upstream).__name__}, "
                          "not a vqpool.upstream.Upstream")
    return _attach(upstream, codebook, codes_from, allow_download)


def with_codes(
    upstream: Upstream,
    *,
    codebook: str | os.PathLike | KMeansCodebook | None = None,
    codes_from: str | os.PathLike | CodesFrom | CodeSource | None = None,
    allow_download: bool = False,
) -> Upstream:
    """``upstream`` taking its codes from ``codebook`` (fitted on it) or ``codes_from``."""
    _one_source(codebook, codes_from)
    return _attach(upstream, codebook, codes_from, allow_download)


def _one_source(codebook: object, codes_from: object) -> None:
    if codebook is not None and codes_from is not None:
        raise ParameterError("codes_from", "replaces the upstream's codes: give it or {codebook}, not both")


def _attach(upstream: Upstream, codebook: str | os.PathLike | KMeansCodebook | None,
            codes_from: str | os.PathLike | CodesFrom | CodeSource | None,
            allow_download: bool) -> Upstream:
    if codebook is not None:
        loaded = codebook if isinstance(codebook, KMeansCodebook) else KMeansCodebook.load(Path(codebook))
        upstream.use_codes(OwnCodebook(loaded, upstream))
    elif codes_from is not None:
        context = CodesContext(upstream, allow_download, load_upstream)
        upstream.use_codes(load_code_source(codes_from, context))
    return upstream
