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

log = logging.getLogger(__name__)

METHODS = "vqpool.methods"
UPSTREAMS = "vqpool.upstreams"
CODE_SOURCES = "vqpool.code_sources"
_WHAT = {METHODS: "pooling", UPSTREAMS: "upstream", CODE_SOURCES: "code source"}

_loaded: set[str] = set()


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


def forget(group: str) -> None:
    """Look for ``group``'s plugins again on next use (new distributions were installed)."""
    _loaded.discard(group)
