"""Store headers for tests that write or fake a store without a real upstream."""

from typing import Any

from vqpool.store import Job, PooledOnly, StoreHeader, UpstreamInfo


def toy_header(
    *,
    spec: str = "toy",
    dim: int = 6,
    num_layers: int = 1,
    num_codebooks: int | None = 2,
    codebook_size: int | None = 8,
    corpus: str | None = "toy",
    task: str | None = "toy",
    pooled_options: dict[str, Any] | None = None,
    pooled_dims: dict[str, int] | None = None,
    num_utterances: int = 0,
    **job: Any,
) -> StoreHeader:
    """A whole store's header, as extract writes it for an upstream described by the arguments.

    ``pooled_options`` or ``pooled_dims`` make it a pooled-only store's (default options and
    the AP stream, when only one of them is given); ``job`` overrides other ``Job`` fields.
    """
    upstream = UpstreamInfo(
        spec=spec, kind="toy", layers="mean", num_layers=num_layers, dim=dim, sample_rate=16000,
        frame_rate=50.0, pads_safely=True, codes="quantizer" if num_codebooks else None,
        num_codebooks=num_codebooks, codebook_size=codebook_size, codebook=None,
    )
    pooled = None
    if pooled_options is not None or pooled_dims is not None:
        options = {"semantics": "paper", "a": 1e-3, "smoothing": 1.0, **(pooled_options or {})}
        builtin = {k: options.pop(k) for k in ("semantics", "a", "smoothing")}
        pooled = PooledOnly(dims=pooled_dims or {"ap": dim}, stats=None, **builtin, extra=options)
    job = {"rows_sha256": "0" * 64, "batch_seconds": 60.0, "part": None,
           "num_utterances": num_utterances, **job}
    return StoreHeader(upstream=upstream, corpus=corpus, task=task, pooled_only=pooled, job=Job(**job))
