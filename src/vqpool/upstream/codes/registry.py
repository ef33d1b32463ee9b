"""Code sources by name: `register_code_source`, and `load_code_source`, which picks the source
a ``codes_from`` spec names.

A spec is taken, in this order, as: a registered source's name (``"my-units"``) or
``NAME:ARGUMENT`` (``"units:/data/units.npz"``), when no file of that name exists; else the
first source whose ``matches`` accepts it, users' and plugins' sources before the built-in ones
(codec checkpoints, precomputed units, fairseq km.bin), and last a fallback (any other file
is read as a vqpool codebook). Plugins register
through the ``vqpool.code_sources`` entry points (`vqpool.plugins`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vqpool import plugins
from vqpool.errors import ParameterError
from vqpool.upstream.codes.base import CodesFrom, CodeSource

if TYPE_CHECKING:
    from vqpool.upstream.base import Upstream


@dataclass(frozen=True)
class CodesContext:
    """What a code source is built for: the frames' upstream (its device, rate and name), whether
    downloads are allowed, and how to load another upstream (for a codebook fitted on one)."""

    upstream: Upstream
    allow_download: bool
    load_upstream: Callable[..., Upstream]


CodeSourceFactory = Callable[[CodesFrom, CodesContext], CodeSource]


@dataclass(frozen=True)
class CodeSourceEntry:
    name: str
    factory: CodeSourceFactory
    matches: Callable[[CodesFrom], bool] | None
    suffixes: tuple[str, ...]  # file suffixes it reads: a spec ending so is a path, not a hub id
    builtin: bool
    fallback: bool  # tried after every other source (reads whatever file is left)
    description: str


CODE_SOURCES: plugins.Registry[CodeSourceEntry] = plugins.Registry(plugins.CODE_SOURCES, "code source")


def register_code_source(
    name: str,
    factory: CodeSourceFactory,
    *,
    matches: Callable[[CodesFrom], bool] | None = None,
    suffixes: tuple[str, ...] = (),
    description: str = "",
    builtin: bool = False,
    fallback: bool = False,
) -> CodeSourceEntry:
    """Register a code source: ``factory(request, context) -> CodeSource`` builds it for a
    `CodesFrom` request and a `CodesContext`. It is chosen by name (``codes_from="name"`` or
    ``"name:argument"``, the argument then being ``request.spec``), or for the specs that
    ``matches(request)`` accepts (default: paths ending in one of ``suffixes``)."""
    if not name or ":" in name or name != name.strip():
        raise ParameterError("name", f"{name!r}: a code source's name is a word without ':'")
    if matches is None and suffixes:
        def matches(request: CodesFrom) -> bool:
            return Path(request.spec).suffix.lower() in suffixes
    return CODE_SOURCES.add(name, CodeSourceEntry(name, factory, matches, tuple(suffixes), builtin,
                                                   fallback, description))


def code_source_names() -> tuple[str, ...]:
    """Registered code sources, the plugins' included."""
    return CODE_SOURCES.names()


def file_suffixes() -> tuple[str, ...]:
    """Every suffix a registered code source reads."""
    return tuple(suffix for entry in CODE_SOURCES.entries.values() for suffix in entry.suffixes)


def looks_like_path(spec: str) -> bool:
    """A spec written as a path (not ``namespace/name``): a missing one is an error, not a hub id."""
    return (spec.startswith((".", "/", "~")) or spec.count("/") > 1
            or Path(spec).suffix.lower() in file_suffixes())


def load_code_source(codes_from: str | os.PathLike | CodesFrom | CodeSource,
                     context: CodesContext) -> CodeSource:
    """The code source ``codes_from`` names (module docstring), built for ``context``."""
    if isinstance(codes_from, CodeSource):
        return codes_from
    request = codes_from if isinstance(codes_from, CodesFrom) else CodesFrom(os.fspath(codes_from))
    if not Path(request.spec).expanduser().exists():
        name, _, argument = request.spec.partition(":")
        entry = CODE_SOURCES.get(name)
        if entry is not None:
            named = request if not argument else CodesFrom(**{**request.to_json(), "spec": argument})
            return entry.factory(named, context)
    for entry in CODE_SOURCES.in_order():
        if entry.matches is not None and entry.matches(request):
            return entry.factory(request, context)
    if not Path(request.spec).expanduser().exists():
        raise ParameterError("codes_from", f"{request.spec}: no such file or folder")
    raise ParameterError("codes_from", f"{request.spec}: no code source reads it (registered: "
                         f"{', '.join(CODE_SOURCES.names())})")
