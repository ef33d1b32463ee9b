"""Codes for an upstream's frames, one `CodeSource` per kind, one module per source; the
built-in sources register themselves (`registry`) when this package is imported."""

from vqpool.upstream.codes import codec, kmeans, units  # noqa: F401  (they register themselves)
from vqpool.upstream.codes.base import (
    ALIGNMENT,
    ALIGNMENT_RULE,
    CodesFrom,
    CodeSource,
    align_codes,
    exact_rate,
)
from vqpool.upstream.codes.codec import CODECS, CodecCodes
from vqpool.upstream.codes.kmeans import (
    OwnCodebook,
    UpstreamCodes,
    codebook_selections,
    read_km_bin,
)
from vqpool.upstream.codes.quantizer import QuantizerCodes
from vqpool.upstream.codes.registry import (
    CodesContext,
    code_source_names,
    load_code_source,
    looks_like_path,
    register_code_source,
)
from vqpool.upstream.codes.units import UnitCodes, read_units

__all__ = [
    "ALIGNMENT",
    "ALIGNMENT_RULE",
    "CODECS",
    "CodeSource",
    "CodecCodes",
    "CodesContext",
    "CodesFrom",
    "OwnCodebook",
    "QuantizerCodes",
    "UnitCodes",
    "UpstreamCodes",
    "align_codes",
    "code_source_names",
    "codebook_selections",
    "exact_rate",
    "load_code_source",
    "looks_like_path",
    "read_km_bin",
    "read_units",
    "register_code_source",
]
