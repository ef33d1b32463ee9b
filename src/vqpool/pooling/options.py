"""Pooling options: the one place where their values are checked.

The options of docs/methods.md (``semantics``, ``a``, ``smoothing``) and those that registered methods
declare share one namespace. `PoolOptions` validates them all and its errors name the Python
parameter (the CLI shows the matching flag instead).
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vqpool import plugins
from vqpool.errors import ParameterError

SEMANTICS = ("paper", "reference")


@dataclass(frozen=True)
class Option:
    """A pooling option: its default and a check that returns the problem with a value, if any."""

    name: str
    default: Any
    check: Callable[[Any], str | None]
    help: str = ""


def _semantics(value: Any) -> str | None:
    return None if value in SEMANTICS else f"must be one of {', '.join(SEMANTICS)}; got {value!r}"


def _positive(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if ok and 0 < value < math.inf else f"must be a positive number; got {value!r}"


def _non_negative(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if ok and 0 <= value < math.inf else f"must be a finite number >= 0; got {value!r}"


BUILTIN_OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("semantics", "paper", _semantics,
               "paper: the paper's definitions (docs/methods.md); reference: the reference code's behaviour"),
        Option("a", 1e-3, _positive, "the vq-sif parameter a in a / (a + p)"),
        Option("smoothing", 1.0, _non_negative, "added to every corpus code count (vq-gp, vq-bp)"),
    )
}
# Options declared by registered methods (`vqpool.register_method(..., options=...)`).
_DECLARED: dict[str, Option] = {}


def declared_option(name: str, default: Any) -> Option:
    """The option a registered method declares, typed by its default; a name may be shared by
    several methods only with the same default."""
    if name in BUILTIN_OPTIONS:
        raise ParameterError("options", f"declares {name!r}, a built-in pooling option")
    if not name.isidentifier():
        raise ParameterError("options", f"declares {name!r}, which is not a Python identifier")
    if not isinstance(default, (bool, int, float, str)):
        raise ParameterError("options", f"{name!r} needs a bool, int, float or str default; "
                                        f"got {type(default).__name__}")
    known = _DECLARED.get(name)
    if known is not None and (known.default != default or type(known.default) is not type(default)):
        raise ParameterError("options", f"declares {name!r} with default {default!r}, but "
                                        f"another method declared it with {known.default!r}")
    return Option(name, default, _typed_like(default))


def add_declared(option: Option) -> None:
    _DECLARED[option.name] = option


def is_declared(name: str) -> bool:
    """Whether ``name`` is an option of a registered method."""
    return name in _DECLARED


def _typed_like(default: Any) -> Callable[[Any], str | None]:
    kind = type(default)

    def check(value: Any) -> str | None:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"must be a {kind.__name__}; got {value!r}"
        return None

    return check


def _parse(option: Option, value: Any) -> Any:
    """Text from the command line becomes the option's type; other values pass as they are."""
    if not isinstance(value, str) or isinstance(option.default, str):
        return value
    kind = type(option.default)
    try:
        if kind is bool:
            return {"true": True, "false": False, "1": True, "0": False}[value.strip().lower()]
        return kind(value)
    except (KeyError, ValueError):
        return value  # the check names the problem


@dataclass(frozen=True)
class PoolOptions:
    """Every pooling option, checked. ``extra`` holds the options of registered methods that
    were given (name -> value); the others take their declared defaults."""

    semantics: str = BUILTIN_OPTIONS["semantics"].default
    a: float = BUILTIN_OPTIONS["a"].default
    smoothing: float = BUILTIN_OPTIONS["smoothing"].default
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for option in BUILTIN_OPTIONS.values():
            value = _parse(option, getattr(self, option.name))
            _check(option, value)
            object.__setattr__(self, option.name, float(value) if option.name != "semantics" else value)
        extra = {}
        for name, value in dict(self.extra).items():
            if name in BUILTIN_OPTIONS:
                raise ParameterError(name, "is a built-in pooling option: pass it by name, not in extra")
            option = _declared(name)
            if option is None:
                known = ", ".join([*BUILTIN_OPTIONS, *_DECLARED])
                raise ParameterError(name, f"is not a pooling option (known: {known})")
            extra[name] = _parse(option, value)
            _check(option, extra[name])
        object.__setattr__(self, "extra", dict(sorted(extra.items())))

    @classmethod
    def of(cls, **values: Any) -> "PoolOptions":
        """Options from keyword arguments, built-in and declared alike."""
        builtin = {k: v for k, v in values.items() if k in BUILTIN_OPTIONS}
        return cls(**builtin, extra={k: v for k, v in values.items() if k not in BUILTIN_OPTIONS})

    def value(self, name: str) -> Any:
        if name in BUILTIN_OPTIONS:
            return getattr(self, name)
        if name in self.extra:
            return self.extra[name]
        return _DECLARED[name].default

    def as_dict(self) -> dict[str, Any]:
        """The built-in options and the declared ones that were given (what result rows record)."""
        return {"semantics": self.semantics, "a": self.a, "smoothing": self.smoothing, **self.extra}

    def replace(self, **values: Any) -> "PoolOptions":
        return PoolOptions.of(**{**self.as_dict(), **values})


def _declared(name: str) -> Option | None:
    """A registered method's option; an unknown name first loads the plugins."""
    if name not in _DECLARED:
        plugins.load(plugins.METHODS)
    return _DECLARED.get(name)


def _check(option: Option, value: Any) -> None:
    problem = option.check(value)
    if problem is not None:
        raise ParameterError(option.name, problem)


DEFAULT_OPTIONS = PoolOptions()


def requested_options(options: "Mapping[str, Any] | PoolOptions | None" = None,
                      named: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The pooling options a caller named: ``options`` (a mapping of built-in and declared
    options, or a `PoolOptions`) updated by ``named`` (keyword options). ``None`` values are left
    out: they take the store's value or the default. Validation is `PoolOptions`'s."""
    given = options.as_dict() if isinstance(options, PoolOptions) else dict(options or {})
    given.update(named or {})
    return {name: value for name, value in given.items() if value is not None}
