"""The store header (``header.json``): one typed, versioned record of what produced a store.

Every field is defined once, here, and stored once: the upstream's own description
(``Upstream.describe()``) holds its spec, layers, dimension, rates, codes and codebook; the
corpus and task say what the rows are for; ``pooled_only`` how a pooled-only store's vectors
were pooled; ``job`` the rest of what fixes the bytes (the rows, the batching, the rank).
The streams a store holds follow from these and are not stored.

Reading checks every field against its annotation, so a damaged or foreign header is one
:class:`VqpoolError` naming the file and the field, and a header of another format version is
refused in one line.
"""

import json
import os
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from vqpool.errors import VqpoolError
from vqpool.io import atomic_write_text
from vqpool.store.format import HEADER

FORMAT = "vqpool-store"
FORMAT_VERSION = 3  # 3: per-entry CRC-32 of the arrays, no times, the sealed header in complete.json

@dataclass(frozen=True)
class UpstreamInfo:
    """``Upstream.describe()``: the fields the store and its readers use, typed; the rest of the
    description (library versions, model class, feature settings…) as it is in ``details``."""

    spec: str  # as given: "logmel", a hub id or a local model folder
    kind: str
    layers: str  # the layer selection: "mean", "last", "N" or "a,b,c"
    num_layers: int  # hidden states the model returns
    dim: int  # of the frames
    sample_rate: int
    frame_rate: float  # frames per second
    pads_safely: bool
    codes: str | None  # "quantizer", "codebook", None; with codes from elsewhere "codec", "kmeans" or "units"
    num_codebooks: int | None
    codebook_size: int | None
    codebook: dict[str, Any] | None  # KMeansCodebook.describe(): its path and settings
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def code_source(self) -> dict[str, Any] | None:
        """``CodeSource.describe()`` of codes from elsewhere (kind, name, levels, rate, alignment,
        file checksums); None when the codes are the upstream's own or its codebook's."""
        return self.details.get("code_source")

    def to_json(self) -> dict[str, Any]:
        return {**_fields_json(self, skip=("details",)), **self.details}

    @classmethod
    def from_json(cls, data: Any, where: str, name: str = "upstream") -> "UpstreamInfo":
        known = _parse(cls, data, where, name, skip=("details",))
        return cls(**known, details={k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class PooledOnly:
    """How a pooled-only store's vectors were pooled (``vqpool.pool`` options and statistics)."""

    dims: dict[str, int]  # method -> D' of its stream ``pooled-<method>``, in stream order
    stats: dict[str, Any] | None  # what tells the CorpusStats used apart (None: none used)
    semantics: str
    a: float
    smoothing: float
    extra: dict[str, Any]  # options of registered methods that were given

    @property
    def options(self) -> dict[str, Any]:
        """The ``vqpool.pool`` options the vectors were pooled with."""
        return {"semantics": self.semantics, "a": self.a, "smoothing": self.smoothing, **self.extra}


@dataclass(frozen=True)
class Job:
    """With the upstream, corpus, task and pooling: what fixes the batches, order and bytes."""

    rows_sha256: str  # digest of the rows' ids and canonical paths
    batch_seconds: float
    part: tuple[int, int] | None  # (rank, world) of a torchrun rank store; None for a whole store
    num_utterances: int  # planned for this store (this rank's share for a rank store)


@dataclass(frozen=True)
class StoreHeader:
    """What produced a store, as ``header.json`` holds it (``to_json`` / ``from_json``)."""

    upstream: UpstreamInfo
    corpus: str | None
    task: str | None
    pooled_only: PooledOnly | None  # None: the store keeps frames
    job: Job

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams of arrays the store holds, in the order each record lists them."""
        codes = ("codes",) if self.upstream.num_codebooks else ()
        if self.pooled_only is None:
            return (*codes, "frames")
        return (*codes, *(f"pooled-{method}" for method in self.pooled_only.dims))

    @property
    def pooled_methods(self) -> tuple[str, ...]:
        return () if self.pooled_only is None else tuple(self.pooled_only.dims)

    @property
    def pooled_options(self) -> dict[str, Any] | None:
        return None if self.pooled_only is None else self.pooled_only.options

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **_fields_json(self)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "StoreHeader":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise VqpoolError(f"{where}: not a vqpool store header")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            written = "an older vqpool" if isinstance(version, int) and version < FORMAT_VERSION else "another vqpool"
            raise VqpoolError(
                f"{where}: store format {version}, written by {written}; this one reads format "
                f"{FORMAT_VERSION}: extract the store again with this version"
            )
        return cls(**_parse(cls, data, where, ""))


def read_header(directory: str | os.PathLike) -> StoreHeader:
    """The header of the store at ``directory``."""
    path = Path(directory) / HEADER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VqpoolError(f"{directory}: not a feature store (no {HEADER})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VqpoolError(f"{path}: not JSON ({error}); the header is damaged") from None
    return StoreHeader.from_json(data, str(path))


def write_header(directory: str | os.PathLike, header: StoreHeader) -> None:
    atomic_write_text(Path(directory) / HEADER, json.dumps(header.to_json(), indent=2) + "\n")


def _fields_json(instance: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: _json(getattr(instance, f.name)) for f in fields(instance) if f.name not in skip}


def _json(value: Any) -> Any:
    if is_dataclass(value):
        return value.to_json() if hasattr(value, "to_json") else _fields_json(value)
    return list(value) if isinstance(value, tuple) else value


def _parse(cls: type, data: Any, where: str, prefix: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``cls`` read from ``data``, each checked against its annotation."""
    if not isinstance(data, dict):
        raise VqpoolError(f"{where}: header field {prefix!r} is {_show(data)}, expected an object")
    hints = typing.get_type_hints(cls)
    values = {}
    for spec in fields(cls):
        if spec.name in skip:
            continue
        name = f"{prefix}.{spec.name}" if prefix else spec.name
        if spec.name not in data:
            raise VqpoolError(f"{where}: header field {name!r} is missing")
        values[spec.name] = _value(data[spec.name], hints[spec.name], where, name)
    return values


def _value(value: Any, hint: Any, where: str, name: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (hint,) = [arm for arm in args if arm is not type(None)]
        return _value(value, hint, where, name)
    if hint is UpstreamInfo:
        return UpstreamInfo.from_json(value, where, name)
    if is_dataclass(hint):
        return hint(**_parse(hint, value, where, name))
    if origin is tuple:
        if isinstance(value, list) and len(value) == len(args):
            items = zip(value, args, strict=True)
            return tuple(_value(item, arm, where, f"{name}[{k}]") for k, (item, arm) in enumerate(items))
    elif origin is dict:
        if isinstance(value, dict):
            return {key: _value(item, args[1], where, f"{name}.{key}") for key, item in value.items()}
    elif hint is Any:
        return value
    elif _is(value, hint):
        return value
    raise VqpoolError(f"{where}: header field {name!r} is {_show(value)}, expected {_name(hint)}")


def _is(value: Any, hint: type) -> bool:
    if isinstance(value, bool):  # bool is an int subclass; a True dimension is damage
        return hint is bool
    return isinstance(value, (int, float) if hint is float else hint)


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return f"a list of {len(typing.get_args(hint))}"
    if origin is dict:
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))
