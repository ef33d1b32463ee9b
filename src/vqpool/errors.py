"""Errors a user can act on. The CLI prints these without a traceback.

A message may name Python parameters as ``{name}``, or a setting as ``{name=value}``; ``str()``
spells them as Python does (``name``, ``name='value'``) and ``render`` as the caller asks (the
CLI: ``--flag``, ``--flag value``, from its one table in ``vqpool.cli``).
"""

import importlib
import re
from collections.abc import Callable
from types import ModuleType

Spell = Callable[[str], str]


def _python(name: str) -> str:
    return name


def fill(text: str, spell: Spell = _python) -> str:
    """``text`` with every ``{name}`` and ``{name=value}`` spelled by ``spell``. A spelling that
    is a flag (starts with ``-``) takes its value after a space, as a shell does; a Python name
    takes ``=value`` (quoted unless it is a number)."""

    def one(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        spelled = spell(name)
        if value is None:
            return spelled
        if spelled.startswith("-"):
            return f"{spelled}={value}" if " " in spelled else f"{spelled} {value}"
        return f"{spelled}={value if re.fullmatch(r'[-+.0-9e]+', value) else repr(value)}"

    return re.sub(r"\{([a-z_]+)(?:=([^{}\s]+))?\}", one, text)


class VqpoolError(Exception):
    """Base class for errors caused by the user's input (files, arguments, data)."""

    def render(self, spell: Spell = _python) -> str:
        """The message with its parameters spelled by ``spell`` (none in a plain error)."""
        return str(self)


class ParameterError(VqpoolError):
    """A bad value of one Python parameter. The message starts with the parameter's name, and
    ``{name}`` (or ``{name=value}``) in ``problem`` stands for another parameter, so that the CLI
    can show the flags the user typed instead."""

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        self.problem = problem
        super().__init__(self.render())

    def render(self, spell: Spell = _python) -> str:
        """The message with every parameter spelled by ``spell`` (the CLI: its flag)."""
        return f"{spell(self.parameter)} {fill(self.problem, spell)}"


# What extraction does by default with an unusable file, and how to go on without it.
SKIP_HINT = ("extraction stops at the first unusable file; {on_bad_audio=skip} skips such files "
             "and lists them in the store's skipped.csv")


class BadAudioError(VqpoolError):
    """An audio file that cannot be used; names the file and the reason, then ``hint`` (by
    default how extraction can skip such files; None where skipping is no option). ``kind``
    names the kinds a caller may choose to keep instead (``"silent"``, ``"truncated"``); None
    otherwise."""

    def __init__(self, path: object, reason: str, kind: str | None = None, *,
                 hint: str | None = SKIP_HINT) -> None:
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        self.hint = hint
        super().__init__(self.render())

    def render(self, spell: Spell = _python) -> str:
        hint = f" ({fill(self.hint, spell)})" if self.hint else ""
        return f"{self.path}: {self.reason}{hint}"

    def without_hint(self) -> "BadAudioError":
        """The same error for a caller that cannot skip files."""
        return BadAudioError(self.path, self.reason, self.kind, hint=None)


def import_extra(module: str, extra: str, needed_for: str = "") -> ModuleType:
    """Import an optional dependency, or say in one line which extra of vqpool brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        why = f" (needed for {needed_for})" if needed_for else ""
        raise VqpoolError(f"{module} is not installed{why}: pip install 'vqpool[{extra}]'") from None
