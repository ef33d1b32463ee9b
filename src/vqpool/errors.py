"""Errors a user can act on. The CLI prints these without a traceback."""

import re
from collections.abc import Callable


class VqpoolError(Exception):
    """Base class for errors caused by the user's input (files, arguments, data)."""


class ParameterError(VqpoolError):
    """A bad value of one Python parameter. The message starts with the parameter's name, and
    ``{name}`` in ``problem`` stands for another parameter, so that the CLI can show the flags
    the user typed instead (its one table in ``vqpool.cli``)."""

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        self.problem = problem
        super().__init__(self.render(lambda name: name))

    def render(self, spell: Callable[[str], str]) -> str:
        """The message with every parameter spelled by ``spell`` (the CLI: its flag)."""
        problem = re.sub(r"\{([a-z_]+)\}", lambda match: spell(match.group(1)), self.problem)
        return f"{spell(self.parameter)} {problem}"


class BadAudioError(VqpoolError):
    """An audio file that cannot be used; names the file and the reason. ``kind`` names the
    kinds a caller may choose to keep instead (``"silent"``, ``"truncated"``); None otherwise."""

    def __init__(self, path: object, reason: str, kind: str | None = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
        self.kind = kind
