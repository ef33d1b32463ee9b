"""Atomic file writing: a reader never sees a half-written file under its final name.

The temporary beside the final file is named ``.NAME.tmp-PID-HOST``. A process killed while
writing leaves it behind; the next atomic write of the same file removes those of processes
that no longer run on this host, so killed runs do not pile them up. Whole outputs (a folder,
a tagged file) are written under a lock beside them (``.NAME.lock``), so two writers never mix.
"""

import csv
import ctypes
import errno
import glob
import hashlib
import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vqpool import locking

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from vqpool.errors import BadAudioError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_output(final)
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
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of the output ``path`` (``.NAME.lock`` beside it; re-entrant) and clear
    what killed writers of it left behind (`recover_output`). A second process is refused in
    one line naming the first."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = final.with_name(f".{final.name}.lock")
    with locking.locked(lock, f"{final}: another vqpool process is writing this output"):
        recover_output(final)
        yield


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success fsync the files in it and
    swap it into place (replacing a folder already there), holding `output_lock`. On an error,
    or if the process dies, ``path`` is untouched: only a hidden ``.NAME.tmp-PID-HOST`` folder
    can be left behind, which the next writer of ``path`` removes."""
    final = Path(path)
    with output_lock(final):
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{socket.gethostname()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp
            for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
                with open(file, "rb+") as handle:
                    os.fsync(handle.fileno())
            fsync_dir(tmp)
            _swap_into_place(tmp, final)
            fsync_dir(final.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_into_place(new: Path, final: Path) -> None:
    """Put ``new`` at ``final``. An existing ``final`` is exchanged with ``new`` in one atomic
    step where the filesystem can (Linux renameat2), so ``final`` is never missing; ``new`` then
    holds the old output, for the caller to remove. Elsewhere the old output is first renamed to
    ``.NAME.old-PID-HOST``, which `recover_output` puts back if the process dies in between."""
    if not os.path.lexists(final):
        os.replace(new, final)
    elif not _exchange(new, final):
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{socket.gethostname()}")
        os.replace(final, old)
        os.replace(new, final)
        _remove(old)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the OS or filesystem cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def recover_output(final: Path) -> None:
    """Clear what dead writers of ``final`` (processes of this host that no longer run) left:
    an old output stranded by a swap goes back in place if ``final`` is missing, else it is
    removed; their temporaries (``.NAME.tmp-…``, ``.NAME.arrow-…``) are removed."""
    for leftover in sorted(final.parent.glob(f".{glob.escape(final.name)}.*-*")):
        kind, _, owner = leftover.name[len(final.name) + 2:].partition("-")
        if kind not in ("tmp", "old", "arrow") or not _dead(owner):
            continue
        if kind == "old" and not os.path.lexists(final):
            os.replace(leftover, final)
            log.warning("%s: put back in place: an earlier run to it was stopped while "
                        "replacing it", final)
        else:
            _remove(leftover)


def _dead(owner: str) -> bool:
    """Whether ``PID`` or ``PID-HOST`` names a process of this host that no longer runs."""
    pid, _, host = owner.partition("-")
    return pid.isdigit() and host in ("", socket.gethostname()) and not _running(int(pid))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def reserve(path: str | os.PathLike) -> None:
    """Allocate the blocks of a file created at its full size (a memory map's), so a full disk
    is an ``OSError`` now rather than a bus error when the map is written."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(descriptor).st_size
        if size:
            os.posix_fallocate(descriptor, 0, size)
    finally:
        os.close(descriptor)


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
    """``torch.save`` a dict atomically with a format tag, version and a SHA-256 of its content,
    for :func:`load_tagged`, holding `output_lock`. The version is written ``"N+sha256"``, so a
    vqpool from before checksums refuses the file in one line instead of misreading it."""
    import torch

    with output_lock(path), atomic_path(path) as tmp:
        torch.save({"format": format, "version": f"{version}{CHECKED}",
                    CHECKSUM: content_sha256(payload), CONTENT: payload}, tmp)
    return Path(path)


CHECKSUM = "content_sha256"  # of a tagged file's payload: its keys, values and tensors' bytes
CONTENT = "content"
CHECKED = "+sha256"


def content_sha256(value: Any) -> str:
    """A SHA-256 of nested dicts, lists, scalars, strings, tensors and arrays: their structure,
    types, shapes, dtypes and bytes, so that any change of content changes it."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    import numpy as np
    import torch

    if isinstance(value, dict):
        digest.update(b"{%d" % len(value))
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(b"[%d" % len(value))
        for item in value:
            _feed(digest, item)
    elif isinstance(value, torch.Tensor):
        array = value.detach().cpu().contiguous()
        digest.update(f"T{array.dtype}{tuple(array.shape)}".encode())
        digest.update(array.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"A{value.dtype.str}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


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
    damaged = VqpoolError(f"{path}: damaged: its content does not match the checksum it was "
                          f"saved with; restore the {what} file from a copy, or make it again")
    if payload.get("version") == version:  # written before checksums: the payload inline
        if CHECKSUM in payload or CONTENT in payload:
            raise damaged
        return payload
    if payload.get("version") != f"{version}{CHECKED}":
        raise VqpoolError(
            f"{path}: {what} format version {payload.get('version')}; this vqpool reads version {version}"
        )
    content = payload.get(CONTENT)
    if set(payload) != {"format", "version", CHECKSUM, CONTENT} or not isinstance(content, dict) \
            or payload[CHECKSUM] != content_sha256(content):
        raise damaged
    return {**content, "format": format, "version": version}
