"""Upstreams: waveforms -> frames ``[B, T, D]`` and codes ``[B, T, G]`` (docs/methods.md section 1).

One module per upstream, each registering itself (`registry`): ``"logmel"``, ``"ge2e"``, and any
transformers model (a hub id or a local folder). `load_upstream` builds one with its codes: its
own quantizer, a k-means codebook, or a source from elsewhere (`vqpool.upstream.codes`).
"""

from vqpool.upstream import ge2e, hf, logmel  # noqa: F401  (they register themselves)
from vqpool.upstream.base import Upstream, UpstreamOutput
from vqpool.upstream.codebook import KMeansCodebook
from vqpool.upstream.codes import CodesFrom, CodeSource, register_code_source
from vqpool.upstream.registry import load_upstream, register_upstream, upstream_names, with_codes

__all__ = ["CodeSource", "CodesFrom", "KMeansCodebook", "Upstream", "UpstreamOutput",
           "load_upstream", "register_code_source", "register_upstream", "upstream_names",
           "with_codes"]
