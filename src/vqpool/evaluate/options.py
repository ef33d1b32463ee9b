"""What users pass to an evaluation, checked up front: a bad value is one clear line naming its
parameter, not a traceback from deep inside pooling or training."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from vqpool.errors import ParameterError, VqpoolError
from vqpool.pooling import DEFAULT_OPTIONS, PoolOptions, get_method
from vqpool.store import Store


def at_least(name: str, value: float, minimum: float) -> None:
    if not value >= minimum:  # NaN fails too
        raise ParameterError(name, f"must be at least {minimum}; got {value}")


def positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ParameterError(name, f"must be a positive number; got {value}")


def stored_options(store: Store) -> PoolOptions | None:
    """The options a pooled-only store's vectors were pooled with (``None`` for a frame store).

    Stores that record no pooling options (older ones, some fakes) were pooled with the defaults."""
    if store.has_frames:
        return None
    return PoolOptions.of(**(store.header.pooled_options or {}))


def resolve_pool_options(
    store: Store, methods: Sequence[str], *, semantics: str | None = None, a: float | None = None,
    smoothing: float | None = None, options: Mapping[str, Any] | None = None,
    where: str = "the store",
) -> tuple[PoolOptions, dict[str, PoolOptions]]:
    """The options to pool with, and those each method's vectors were pooled with.

    An option left as ``None`` (or out of ``options``, which holds registered methods' own
    options) takes the store's value (a pooled-only store's) or the default. A pooled-only
    store's stored methods were pooled at extraction: asking for another value of an option
    that changes them is refused rather than silently ignored; their result rows record the
    stored options. Methods derived at evaluation time follow the resolved options.
    """
    stored = stored_options(store)
    base = stored or DEFAULT_OPTIONS
    requested = {"semantics": semantics, "a": a, "smoothing": smoothing, **(options or {})}
    requested = {name: value for name, value in requested.items() if value is not None}
    resolved = base.replace(**requested)
    if stored is None:
        return resolved, dict.fromkeys(methods, resolved)
    kept = [m for m in methods if m in store.pooled_methods]
    conflicts = [
        f"{method} was pooled at extraction with {name}={stored.value(name)!r}, not the "
        f"requested {resolved.value(name)!r}"
        for method in kept for name in requested
        if name in get_method(method).options and resolved.value(name) != stored.value(name)
    ]
    if conflicts:
        raise VqpoolError(
            f"{where} keeps pooled vectors only: {'; '.join(conflicts)}. Leave the option out to "
            "use the stored value, or extract again with the wanted one (or with frames)"
        )
    return resolved, {m: stored if m in kept else resolved for m in methods}


def check_device(device: str | torch.device) -> torch.device:
    """A device this torch can use: ``device="bogus"`` or CUDA on a CPU-only build is refused."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError("device", f"{device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if parsed.type == "cpu":
        return parsed
    backend = getattr(torch, parsed.type, None)  # torch.cuda, torch.mps, torch.xpu, ...
    if not hasattr(backend, "is_available") or not backend.is_available():
        raise ParameterError("device", f"{device}: this torch ({torch.__version__}) has no usable "
                             f"{parsed.type} device; use cpu")
    count = getattr(backend, "device_count", None)
    if parsed.index is not None and count is not None and parsed.index >= count():
        raise ParameterError("device", f"{device}: there are {count()} {parsed.type} device(s), "
                             "numbered from 0")
    return parsed
