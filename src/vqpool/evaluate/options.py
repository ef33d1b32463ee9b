"""What users pass to an evaluation, checked up front: a bad value is one clear line naming its
option, not a traceback from deep inside pooling or training."""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from vqpool.errors import VqpoolError
from vqpool.pooling import METHODS, SEMANTICS
from vqpool.store import Store

# The methods whose vectors each pooling option changes (METHODS.md sections 2-4); a pooled-only
# store's vectors of other methods hold whatever these options are.
OPTION_METHODS = {
    "semantics": ("vq-squash-or", "vq-allsquash-or", "softdecay"),
    "a": ("vq-sif",),
    "smoothing": ("vq-gp", "vq-bp"),
}


def at_least(name: str, value: float, minimum: float) -> None:
    if not value >= minimum:  # NaN fails too
        raise VqpoolError(f"{name} must be at least {minimum}; got {value}")


def positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise VqpoolError(f"{name} must be a positive number; got {value}")


@dataclass(frozen=True)
class PoolOptions:
    """Pooling options of METHODS.md (recorded in every result row)."""

    semantics: str = "paper"
    a: float = 1e-3
    smoothing: float = 1.0

    def __post_init__(self) -> None:
        if self.semantics not in SEMANTICS:
            raise VqpoolError(f"--semantics {self.semantics!r}: choose from {', '.join(SEMANTICS)}")
        positive("--a", self.a)
        at_least("--smoothing", self.smoothing, 0)
        if math.isinf(self.smoothing):
            raise VqpoolError("--smoothing must be finite")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_OPTIONS = PoolOptions()


def stored_options(store: Store) -> PoolOptions | None:
    """The options a pooled-only store's vectors were pooled with (``None`` for a frame store).

    Stores that record no pooling options (older ones, some fakes) were pooled with the defaults."""
    if store.has_frames:
        return None
    recorded = store.header.pooled_options or {}
    return PoolOptions(**{f.name: recorded[f.name] for f in fields(PoolOptions) if f.name in recorded})


def resolve_pool_options(
    store: Store, methods: Sequence[str], *, semantics: str | None = None, a: float | None = None,
    smoothing: float | None = None, where: str = "the store",
) -> tuple[PoolOptions, dict[str, PoolOptions]]:
    """The options to pool with, and those each method's vectors were pooled with.

    An option left as ``None`` takes the store's value (a pooled-only store's) or the default.
    A pooled-only store's stored methods were pooled at extraction: asking for another value of
    an option that changes them is refused rather than silently ignored; their result rows
    record the stored options. Methods derived at evaluation time follow the resolved options.
    """
    stored = stored_options(store)
    base = stored or DEFAULT_OPTIONS
    requested = {"semantics": semantics, "a": a, "smoothing": smoothing}
    options = PoolOptions(**{name: getattr(base, name) if value is None else value
                             for name, value in requested.items()})
    if stored is None:
        return options, dict.fromkeys(methods, options)
    kept = [m for m in methods if m in store.pooled_methods]
    conflicts = [
        f"{method} was pooled at extraction with {name}={getattr(stored, name)!r}, not the "
        f"requested {value!r}"
        for method in kept for name, value in requested.items()
        if method in OPTION_METHODS[name] and value is not None and value != getattr(stored, name)
    ]
    if conflicts:
        raise VqpoolError(
            f"{where} keeps pooled vectors only: {'; '.join(conflicts)}. Leave the option out to "
            "use the stored value, or extract again with the wanted one (or without --pooled-only)"
        )
    return options, {m: stored if m in kept else options for m in methods}


def check_methods(methods: Sequence[str], allowed: Sequence[str] = METHODS) -> list[str]:
    unknown = [m for m in methods if m not in allowed]
    if unknown:
        raise VqpoolError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(methods))


def require_methods(methods: Sequence[str]) -> None:
    if not methods:
        raise VqpoolError("--methods names no method: give a comma-separated list, e.g. ap,vq-lp")


def check_device(device: str | torch.device) -> torch.device:
    """A device this torch can use: ``--device bogus`` or CUDA on a CPU-only build is refused."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise VqpoolError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if parsed.type == "cpu":
        return parsed
    backend = getattr(torch, parsed.type, None)  # torch.cuda, torch.mps, torch.xpu, ...
    if not hasattr(backend, "is_available") or not backend.is_available():
        raise VqpoolError(f"--device {device}: this torch ({torch.__version__}) has no usable "
                          f"{parsed.type} device; use --device cpu")
    count = getattr(backend, "device_count", None)
    if parsed.index is not None and count is not None and parsed.index >= count():
        raise VqpoolError(f"--device {device}: there are {count()} {parsed.type} device(s), "
                          f"numbered from 0")
    return parsed
