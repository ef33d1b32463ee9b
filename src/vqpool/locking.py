"""Exclusive OS locks on lock files: one writer at a time for a store or an output.

``flock(LOCK_EX | LOCK_NB)``: the operating system releases it when the holder exits, however
it exits, so a crashed writer never blocks the next run; a second writer is refused at once,
with the holder's pid and host, which the holder writes into the lock file. ``flock`` on NFS is
emulated with POSIX locks by Linux, so it also holds between machines sharing a filesystem.
"""

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from vqpool.errors import VqpoolError


class BusyError(VqpoolError):
    """Another process holds the lock."""


_guard = threading.Lock()
_held: dict[str, list[int]] = {}  # lock file -> [descriptor, depth]


def acquire(path: str | os.PathLike, busy: str) -> None:
    """Lock the file ``path``; re-entrant within a process (two ``flock`` calls on one file from
    one process would refuse each other). ``busy`` starts the refusal a second process gets."""
    key = os.path.abspath(path)
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return
        _held[key] = [lock_file(Path(path), busy), 1]


def release(path: str | os.PathLike) -> None:
    """Give the lock back (once per `acquire`); the last release removes the lock file."""
    key = os.path.abspath(path)
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            unlock_file(Path(path), entry[0])


def holds(path: str | os.PathLike) -> bool:
    """Whether this process holds the lock file ``path``."""
    with _guard:
        return os.path.abspath(path) in _held


@contextmanager
def locked(path: str | os.PathLike, busy: str) -> Iterator[None]:
    """`acquire` for the ``with`` block."""
    acquire(path, busy)
    try:
        yield
    finally:
        release(path)


def lock_file(path: Path, busy: str) -> int:
    """Lock ``path`` (created if missing) and return its descriptor; refuse with
    ``"{busy} ({holder}); ..."`` when another process holds it."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise BusyError(f"{busy} ({holder}); wait for it to finish or stop it (a writer that "
                            "died releases it by itself)") from None
        except OSError as error:
            os.close(descriptor)
            raise VqpoolError(f"{path}: cannot lock it ({error.strerror})") from None
        # A holder that released between our open and flock removed the file we opened: the
        # lock on that orphan is worth nothing, so start again on the path's current file.
        try:
            same = os.path.samestat(os.stat(path), os.fstat(descriptor))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(descriptor)
    owner = {"pid": os.getpid(), "host": socket.gethostname(),
             "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(owner).encode() + b"\n", 0)
    return descriptor


def unlock_file(path: Path, descriptor: int) -> None:
    """Remove the lock file while still holding it (no one else can own it then), then release."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # its folder is already gone (a merged rank store)
    os.close(descriptor)


def _holder(descriptor: int) -> str:
    """The holder's pid and host as it wrote them (it writes just after locking: wait a little)."""
    for _ in range(25):
        try:
            owner = json.loads(os.pread(descriptor, 4096, 0))
            return f"pid {owner['pid']} on host {owner['host']}, since {owner['since']}"
        except (ValueError, KeyError, TypeError):
            time.sleep(0.02)
    return "its pid and host are not recorded yet"
