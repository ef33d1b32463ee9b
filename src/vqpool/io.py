"""Atomic file writing: a reader never sees a half-written file under its final name.

The temporary beside the final file is named ``.NAME.tmp-PID-HOST``. A process killed while
writing leaves it behind; the next atomic write of the same file removes those of processes
that no longer run on this host, so killed runs do not pile them up.
"""

import csv
import glob
import os
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vqpool.errors import BadAudioError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{socket.gethostname()}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success fsync the files in it and
    rename it into place (replacing a folder already there). On an error, or if the process
    dies, ``path`` is untouched: only a hidden ``.NAME.tmp-PID`` folder can be left behind."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
            with open(file, "rb+") as handle:
                os.fsync(handle.fileno())
        fsync_dir(tmp)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def check_replaceable(out: Path, overwrite: bool, is_ours: Callable[[Path], bool]) -> None:
    """Refuse an existing ``out`` unless ``overwrite`` (an empty folder is fine), and never
    replace what ``is_ours`` does not recognise as an earlier output of the same writer."""
    from vqpool.errors import ParameterError

    if not out.exists():
        return
    empty = out.is_dir() and not any(out.iterdir())
    if not overwrite and not empty:
        raise ParameterError("out", f"{out} exists; pass {{overwrite}} to replace it, or choose "
                             "another path")
    if not empty and not is_ours(out):
        raise ParameterError("out", f"{out} exists and is not what this writes; it is left "
                             "alone: choose another path")


def remove_stale_temporaries(final: Path) -> None:
    """Remove the temporaries of ``final`` left by dead processes of this host (those of other
    hosts, or of processes still running, stay: their writers may be at work)."""
    host = socket.gethostname()
    for leftover in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        pid, _, owner = leftover.name.rpartition(".tmp-")[2].partition("-")
        if pid.isdigit() and owner in ("", host) and not _running(int(pid)):
            leftover.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_skip_report(errors: "Iterable[BadAudioError]", path: str | os.PathLike) -> Path:
    """Write the skipped files and why, as CSV (``path,reason``), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "reason"])
        for error in errors:
            writer.writerow([error.path, error.reason])
    return Path(path)


def save_tagged(path: str | os.PathLike, payload: dict, *, format: str, version: int) -> Path:
    """``torch.save`` a dict atomically with a format tag and version, for :func:`load_tagged`."""
    import torch

    with atomic_path(path) as tmp:
        torch.save({**payload, "format": format, "version": version}, tmp)
    return Path(path)


def load_tagged(
    path: str | os.PathLike, *, format: str, version: int, what: str, hint: str = ""
) -> dict:
    """Read a file written by :func:`save_tagged`; every failure names the file and ``what`` it is."""
    import torch

    from vqpool.errors import VqpoolError

    path = Path(path)
    if not path.is_file():
        raise VqpoolError(f"{path}: {what} not found{hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise VqpoolError(
            f"{path}: cannot read it; not a vqpool {what} file ({type(error).__name__})"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != format:
        raise VqpoolError(f"{path}: not a vqpool {what} file")
    if payload.get("version") != version:
        raise VqpoolError(
            f"{path}: {what} format version {payload.get('version')}; this vqpool reads version {version}"
        )
    return payload
