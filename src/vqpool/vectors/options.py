"""The pooling options a store's vectors are pooled with: the caller's, else a pooled-only
store's stored ones, else the defaults; a conflict with what a pooled-only store holds is refused."""

from collections.abc import Mapping, Sequence
from typing import Any

from vqpool.errors import VqpoolError
from vqpool.pooling import DEFAULT_OPTIONS, PoolOptions, get_method, requested_options
from vqpool.store import Store


def stored_options(store: Store) -> PoolOptions | None:
    """The options a pooled-only store's vectors were pooled with (``None`` for a frame store).

    Stores that record no pooling options (older ones, some fakes) were pooled with the defaults."""
    if store.has_frames:
        return None
    return PoolOptions.of(**(store.header.pooled_options or {}))


def resolve_pool_options(
    store: Store, methods: Sequence[str], requested: Mapping[str, Any] | None = None, *,
    where: str = "the store",
) -> tuple[PoolOptions, dict[str, PoolOptions]]:
    """The options to pool with, and those each method's vectors were pooled with.

    ``requested`` holds the options the caller named (`requested_options`); any other takes
    the store's value (a pooled-only store's) or the default. A pooled-only
    store's stored methods were pooled at extraction: asking for another value of an option
    that changes them is refused rather than silently ignored; their result rows record the
    stored options. Methods derived at evaluation time follow the resolved options.
    """
    stored = stored_options(store)
    base = stored or DEFAULT_OPTIONS
    requested = requested_options(requested)
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
