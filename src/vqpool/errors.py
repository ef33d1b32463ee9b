"""Errors a user can act on. The CLI prints these without a traceback."""


class VqpoolError(Exception):
    """Base class for errors caused by the user's input (files, arguments, data)."""


class BadAudioError(VqpoolError):
    """An audio file that cannot be used; names the file and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
