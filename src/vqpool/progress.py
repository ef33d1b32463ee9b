"""Progress of long work: a bar on a terminal, a log line every half minute otherwise.

A tqdm bar redrawn with carriage returns is unreadable in a log file (one line of thousands of
overwrites), and a bar that draws only on a terminal leaves a redirected run silent for hours.
So each piece of long work makes one `progress_bar`: on a terminal (stderr is a TTY) it is a
transient tqdm bar; otherwise it writes INFO records to the ``vqpool.progress`` logger, at most
one every `LOG_EVERY` seconds, and a closing line once it has written any. The command line
shows those records on stderr (`vqpool.commands.logs`); an API user sees them with logging
configured.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)

LOG_EVERY = 30.0  # seconds between two progress lines in a log


class LoggedProgress:
    """The log-file form of a bar: ``update``, ``set_postfix_str`` and ``close`` as tqdm's."""

    def __init__(self, total: int | None, desc: str, unit: str, *,
                 every: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.every = LOG_EVERY if every is None else every
        self.clock = clock
        self.count = 0
        self.postfix = ""
        self.start = self.last = clock()
        self.lines = 0

    def update(self, n: int = 1) -> None:
        self.count += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self._write(now, self._eta(now))

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        if self.lines:  # a log that showed the work going also shows it ending
            self._write(self.clock(), "done")

    def _eta(self, now: float) -> str:
        if not self.total or not self.count:
            return ""
        left = (now - self.start) * (self.total - self.count) / self.count
        return f"about {duration(left)} left"

    def _write(self, now: float, state: str) -> None:
        share = f" ({100 * self.count / self.total:.0f}%)" if self.total else ""
        tail = ", ".join(part for part in (f"{duration(now - self.start)} elapsed", state,
                                           self.postfix) if part)
        log.info("%s: %s%s, %s", self.desc, amount(self.count, self.total, self.unit), share, tail)
        self.lines += 1

    def __enter__(self) -> LoggedProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()


class NoProgress:
    """What a bar is when progress is not wanted."""

    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, text: str, refresh: bool = True) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc_info: Any) -> None: ...


Bar = tqdm | LoggedProgress | NoProgress


def progress_bar(progress: bool = True, *, total: int | None = None, desc: str,
                 unit: str = "it") -> Bar:
    """A bar for ``total`` steps of ``desc`` (use it as a context manager): tqdm on a terminal,
    log lines otherwise, nothing when ``progress`` is False. Unit "B" counts bytes."""
    if not progress:
        return NoProgress()
    if sys.stderr is not None and sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                    dynamic_ncols=True, unit_scale=unit == "B")
    return LoggedProgress(total, desc, unit)


def amount(count: float, total: float | None, unit: str) -> str:
    """``1200, 3000, "utt"`` -> ``"1200/3000 utt"``; bytes in SI units: ``"1.23 MB of 4.80 GB"``."""
    if unit == "B":
        of = f" of {_bytes(total)}" if total else ""
        return _bytes(count) + of
    return f"{count}/{total} {unit}" if total else f"{count} {unit}"


def _bytes(count: float) -> str:
    return tqdm.format_sizeof(count, suffix="B", divisor=1000)


def duration(seconds: float) -> str:
    """``42 s``, ``2 min 05 s``, ``1 h 02 min``."""
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
