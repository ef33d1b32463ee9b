"""One writer per store: an exclusive OS lock on ``STORE/writer.lock`` for the whole write.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on a file inside the store folder. The operating
system releases it when the holder exits, however it exits (SIGKILL, a lost node), so a
crashed writer never blocks a later ``resume``; a second writer is refused at once, with the
holder's pid and host, which the holder writes into the file. The file is removed when the
lock is released; one left by a crash is stale and simply taken over. Locks are re-entrant
within a process (``extract`` holds its store's lock and the ``StoreWriter`` inside takes it
again), since two ``flock`` calls on one file from one process would refuse each other.

``flock`` on NFS is emulated with POSIX locks by Linux (2.6.12 and later), so it also holds
between machines sharing the store's filesystem.
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
from typing import Any

from vqpool.errors import VqpoolError

LOCK = "writer.lock"

_guard = threading.Lock()
_held: dict[str, list[Any]] = {}  # folder -> [descriptor, depth, created the folder]


class StoreBusyError(VqpoolError):
    """Another process is writing the store."""


def acquire(directory: str | os.PathLike) -> None:
    """Take the writer's lock of the store folder ``directory`` (created if missing)."""
    folder = Path(directory)
    key = os.path.abspath(folder)
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return
        if folder.exists() and not folder.is_dir():
            raise VqpoolError(f"{folder}: is a file, not a store folder; choose another output folder")
        created = not folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise VqpoolError(f"{folder}: cannot create the store folder ({error.strerror})") from None
        try:
            descriptor = _lock(folder / LOCK)
        except BaseException:
            if created:
                _remove_if_empty(folder)
            raise
        _held[key] = [descriptor, 1, created]


def release(directory: str | os.PathLike) -> None:
    """Give the lock back (once per ``acquire``); the last release removes the lock file, and
    the folder too when ``acquire`` created it and nothing was written there."""
    folder = Path(directory)
    key = os.path.abspath(folder)
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[key]
        descriptor, _, created = entry
        try:
            (folder / LOCK).unlink(missing_ok=True)  # while still held: no one else can own it
        except OSError:
            pass  # a folder already removed (a merged rank store)
        os.close(descriptor)
        if created:
            _remove_if_empty(folder)


@contextmanager
def store_lock(directory: str | os.PathLike) -> Iterator[None]:
    """``acquire`` for the ``with`` block."""
    acquire(directory)
    try:
        yield
    finally:
        release(directory)


def holds(directory: str | os.PathLike) -> bool:
    """Whether this process holds the lock of ``directory``."""
    with _guard:
        return os.path.abspath(directory) in _held


def _lock(path: Path) -> int:
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise StoreBusyError(
                f"{path.parent}: another vqpool process is writing this store ({holder}); wait "
                "for it to finish or stop it (a writer that died releases the store by itself)"
            ) from None
        except OSError as error:
            os.close(descriptor)
            raise VqpoolError(f"{path}: cannot lock the store ({error.strerror})") from None
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


def _holder(descriptor: int) -> str:
    """The holder's pid and host as it wrote them (it writes just after locking: wait a little)."""
    for _ in range(25):
        try:
            owner = json.loads(os.pread(descriptor, 4096, 0))
            return f"pid {owner['pid']} on host {owner['host']}, since {owner['since']}"
        except (ValueError, KeyError, TypeError):
            time.sleep(0.02)
    return "its pid and host are not recorded yet"


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty, or gone
