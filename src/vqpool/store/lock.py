"""One writer per store: an exclusive OS lock (`vqpool.locking`) on ``STORE/writer.lock`` for
the whole write.

The OS releases the lock when the holder exits, however it exits (SIGKILL, a lost node), so a
crashed writer never blocks a later ``resume``. The file is removed when the lock is released;
one left by a crash is stale and simply taken over. Locks are re-entrant within a process
(``extract`` holds its store's lock and the ``StoreWriter`` inside takes it again).
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vqpool import locking
from vqpool.errors import VqpoolError
from vqpool.locking import BusyError

LOCK = "writer.lock"

StoreBusyError = BusyError  # another process is writing the store

_guard = threading.Lock()
_created: dict[str, bool] = {}  # held store folder -> whether acquiring it created the folder


def acquire(directory: str | os.PathLike) -> None:
    """Take the writer's lock of the store folder ``directory`` (created if missing)."""
    folder = Path(directory)
    key = os.path.abspath(folder)
    with _guard:
        if key in _created:
            locking.acquire(folder / LOCK, "")  # re-entrant: only counts
            return
        if folder.exists() and not folder.is_dir():
            raise VqpoolError(f"{folder}: is a file, not a store folder; choose another output folder")
        created = not folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise VqpoolError(f"{folder}: cannot create the store folder ({error.strerror})") from None
        try:
            locking.acquire(folder / LOCK, f"{folder}: another vqpool process is writing this store")
        except BaseException:
            if created:
                _remove_if_empty(folder)
            raise
        _created[key] = created


def release(directory: str | os.PathLike) -> None:
    """Give the lock back (once per ``acquire``); the last release removes the lock file, and
    the folder too when ``acquire`` created it and nothing was written there."""
    folder = Path(directory)
    key = os.path.abspath(folder)
    with _guard:
        if key not in _created:
            return
        locking.release(folder / LOCK)
        if not locking.holds(folder / LOCK) and _created.pop(key):
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
    return locking.holds(Path(directory) / LOCK)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty, or gone
