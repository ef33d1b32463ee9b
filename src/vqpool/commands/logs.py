"""What the command line shows of the library's own reports: its log records, one line each.

The library logs notes and progress to the ``vqpool`` logger (INFO) and configures no handler;
an API user sees them with ``logging.basicConfig(level=logging.INFO)``. The command line shows
each record's message alone on stderr, as a line of its own.
"""

import logging
import sys


class StderrLines(logging.Handler):
    """Each record's message as a line on stderr: the ``sys.stderr`` of the moment, so that a
    replaced stderr (a test's capture, a redirected stream) receives it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def show_library_logs(level: int = logging.INFO) -> logging.Logger:
    """Print the ``vqpool`` logger's records of ``level`` and above on stderr; calling it again
    adds no second handler."""
    logger = logging.getLogger("vqpool")
    if not any(isinstance(handler, StderrLines) for handler in logger.handlers):
        logger.addHandler(StderrLines())
    logger.setLevel(level)
    return logger
