"""Short names of code sources for tables: one rule for every way codes reach a store.

Imports nothing heavy, so that reading results (`vqpool.evaluate.results`) stays free of torch.
"""

from collections.abc import Sequence
from pathlib import PurePath


def kmeans_name(upstream: str, layers: Sequence[str] | None = None) -> str:
    """``"kmeans(logmel)"``, ``"kmeans(hubert-base-ls960 L6,9,12)"``: a k-means codebook by the
    upstream (and, unless it is the default mean of all layers, the layers) it quantizes."""
    name = PurePath(upstream.rstrip("/")).name or upstream
    shown = ",".join(layers or ())
    return f"kmeans({name})" if shown in ("", "mean") else f"kmeans({name} L{shown})"


def own_codes_label(upstream: str | None, codes: str | None, num_codebooks: int | None) -> str | None:
    """The label of an upstream's own codes: ``"kmeans(ge2e) x2"`` for a codebook fitted on it,
    ``"quantizer x2"`` for its model's quantizer; None without codes."""
    if codes == "codebook" and upstream is not None:
        return f"{kmeans_name(upstream)} x{num_codebooks}"
    if codes == "quantizer":
        return f"quantizer x{num_codebooks}"
    return None
