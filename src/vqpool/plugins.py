"""Plugins: distributions that add pooling methods, upstreams or code sources by entry point.

A plugin declares, in its ``pyproject.toml``::

    [project.entry-points."vqpool.methods"]       # or "vqpool.upstreams", "vqpool.code_sources"
    my-thing = "my_package:register"

and ``my_package.register()`` calls `vqpool.register_method` (`register_upstream`,
`register_code_source`). Each group is looked for once, the first time a name is not found
among those registered; a plugin that fails is reported in a warning, not fatal.
"""

import logging
from importlib import metadata
from typing import Any, Generic, TypeVar

from vqpool.errors import ParameterError

log = logging.getLogger(__name__)

METHODS = "vqpool.methods"
UPSTREAMS = "vqpool.upstreams"
CODE_SOURCES = "vqpool.code_sources"
_WHAT = {METHODS: "pooling", UPSTREAMS: "upstream", CODE_SOURCES: "code source"}

_loaded: set[str] = set()
E = TypeVar("E", bound=Any)


def load(group: str) -> None:
    """Run every entry point of ``group`` once."""
    if group in _loaded:
        return
    _loaded.add(group)
    for entry in metadata.entry_points(group=group):
        try:
            entry.load()()
        except Exception as error:  # a plugin's own bug must not stop vqpool
            log.warning("%s plugin %s (%s) failed to load: %s: %s", _WHAT.get(group, group),
                        entry.name, entry.value, type(error).__name__, error)


class Registry(Generic[E]):
    """The named entries of one kind (``what``: "upstream", "code source"), whose plugins come
    from the entry points of ``group``. vqpool's own modules register the built-ins; a name of a
    built-in cannot be taken over. Entries have ``builtin`` and ``fallback`` flags."""

    def __init__(self, group: str, what: str) -> None:
        self.group, self.what = group, what
        self.entries: dict[str, E] = {}

    def add(self, name: str, entry: E) -> E:
        known = self.entries.get(name)
        if known is not None and known.builtin:
            raise ParameterError("name", f"{name!r} is a built-in {self.what}")
        self.entries[name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        """Every registered name, the plugins' included."""
        load(self.group)
        return tuple(self.entries)

    def get(self, name: str) -> E | None:
        load(self.group)
        return self.entries.get(name)

    def in_order(self) -> list[E]:
        """Users' and plugins' entries before the built-ins, each in registration order, and
        the fallbacks last."""
        load(self.group)
        return sorted(self.entries.values(), key=lambda entry: (entry.fallback, entry.builtin))
