"""Outputs around the store: checksummed tagged files, one writer per output, swaps that never
lose the old output, debris of killed runs removed, and disk errors as one line."""

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from vqpool.cli import describe_disk_error, disk_error
from vqpool.errors import VqpoolError
from vqpool.io import atomic_folder, content_sha256, load_tagged, save_tagged
from vqpool.locking import BusyError

REPO = Path(__file__).resolve().parents[2]
FORMAT = "test-format"


def payload() -> dict:
    return {"centroids": torch.arange(64, dtype=torch.float32).reshape(4, 16),
            "counts": torch.tensor([3, 1, 4, 1]), "settings": {"layer": "mean", "size": 4}}


def test_every_flipped_byte_is_refused_or_leaves_the_content_unchanged(tmp_path: Path) -> None:
    path = save_tagged(tmp_path / "c.pt", payload(), format=FORMAT, version=1)
    original = path.read_bytes()
    expected = content_sha256(payload())
    refused = 0
    for offset in range(0, len(original), 7):
        damaged = bytearray(original)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        try:
            loaded = load_tagged(path, format=FORMAT, version=1, what="test")
        except VqpoolError as error:
            assert "\n" not in str(error) and str(path) in str(error)
            refused += 1
            continue
        content = {k: v for k, v in loaded.items() if k not in ("format", "version")}
        assert content_sha256(content) == expected, f"byte {offset} changed the content silently"
    assert refused > 0


def test_a_flipped_tensor_byte_names_the_damage(tmp_path: Path) -> None:
    path = save_tagged(tmp_path / "c.pt", payload(), format=FORMAT, version=1)
    data = bytearray(path.read_bytes())
    at = data.find(torch.tensor([5.0]).numpy().tobytes())  # a centroid's float32 bytes
    assert at > 0
    data[at] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(VqpoolError, match="damaged"):
        load_tagged(path, format=FORMAT, version=1, what="test")


def test_files_from_before_checksums_still_load(tmp_path: Path) -> None:
    torch.save({**payload(), "format": FORMAT, "version": 1}, tmp_path / "old.pt")
    loaded = load_tagged(tmp_path / "old.pt", format=FORMAT, version=1, what="test")
    assert torch.equal(loaded["centroids"], payload()["centroids"])


def test_checksum_sees_structure_and_values() -> None:
    base = content_sha256(payload())
    changed = payload()
    changed["counts"][2] = 5
    assert content_sha256(changed) != base
    assert content_sha256({**payload(), "counts": payload()["counts"].to(torch.int32)}) != base
    assert content_sha256(payload()) == base


def run_python(code: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, text=True, **kwargs)


def test_a_second_writer_of_one_output_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "export"
    holder = run_python(f"""
        import sys, time
        from vqpool.io import atomic_folder
        with atomic_folder({str(out)!r}) as folder:
            print("ready", flush=True)
            time.sleep(60)
    """)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(BusyError, match=f"pid {holder.pid}"), atomic_folder(out):
            pass
        with pytest.raises(BusyError, match="another vqpool process"):
            save_tagged(out, payload(), format=FORMAT, version=1)
    finally:
        holder.kill()
        holder.wait()
    with atomic_folder(out) as folder:  # a killed holder releases the output by itself
        (folder / "done").write_text("yes")
    assert (out / "done").read_text() == "yes"


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_kill_while_swapping_never_loses_the_old_output(tmp_path: Path, exchange: bool) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "which").write_text("old")
    # Dies at the swap's last step: after the exchange, or between the two renames.
    killer = run_python(f"""
        import os, signal
        import vqpool.io as io
        real = os.replace
        calls = []
        if not {exchange}:
            io._exchange = lambda a, b: False
        def replace(a, b):
            calls.append(a)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            real(a, b)
        io.os.replace = replace
        real_exchange = io._exchange
        def exchange(a, b):
            done = real_exchange(a, b)
            os.kill(os.getpid(), signal.SIGKILL)
        if {exchange}:
            io._exchange = exchange
        with io.atomic_folder({str(out)!r}) as folder:
            (folder / "which").write_text("new")
    """)
    killer.wait()
    assert killer.returncode == -9
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out."))
    assert leftovers  # the killed run left its debris
    if exchange:
        assert (out / "which").read_text() == "new"
    with atomic_folder(out) as folder:  # the next run puts back or clears what was left
        (folder / "which").write_text("next")
    assert (out / "which").read_text() == "next"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_a_stranded_old_output_goes_back_in_place(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stranded = tmp_path / f".out.old-{dead}"
    stranded.mkdir()
    (stranded / "which").write_text("old")
    (tmp_path / f".out.arrow-{dead}").write_bytes(b"half an arrow stream")
    (tmp_path / f".out.tmp-{dead}").mkdir()
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "out"):
        raise RuntimeError("this run fails too")
    assert (tmp_path / "out" / "which").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_disk_errors_are_found_behind_chained_errors() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("a cleanup failing as well")  # noqa: B904 (the implicit chain is the case)
    except RuntimeError as error:
        found = disk_error(error)
    assert found is not None and found.errno == errno.ENOSPC
    assert disk_error(OSError(errno.ENOENT, "missing")) is None


def mounted_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_export_to_a_full_disk_is_one_line_and_leaves_no_output(speaker_store: Path,
                                                                 tmp_path: Path) -> None:
    disk = tmp_path / "small"
    if not mounted_tmpfs(disk, "12k"):
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    try:
        for format, out in (("npy", disk / "v"), ("parquet", disk / "v.parquet"), ("hf", disk / "d")):
            done = subprocess.run(
                [sys.executable, "-m", "vqpool", "export", "--store", str(speaker_store),
                 "--methods", "ap", "--format", format, "--out", str(out)],
                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
            assert done.returncode == 1, (format, done.returncode, done.stderr[-2000:])
            lines = done.stderr.strip().splitlines()
            assert "Traceback" not in done.stderr, (format, done.stderr[-2000:])
            assert "no space left on device" in lines[-1], (format, lines)
            assert not out.exists()
    finally:
        subprocess.run(["umount", str(disk)])


def test_bench_on_a_read_only_store_names_results(speaker_store: Path, tmp_path: Path) -> None:
    disk = tmp_path / "ro"
    if not mounted_tmpfs(disk, "64m"):
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        subprocess.run(["cp", "-r", str(speaker_store), str(disk / "store")], check=True)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        done = subprocess.run(
            [sys.executable, "-m", "vqpool", "bench", "--store", str(disk / "store"), "--methods", "ap"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        assert done.returncode == 1, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert "read-only file system" in done.stderr and "--results" in done.stderr
    finally:
        subprocess.run(["umount", str(disk)])


def test_the_line_for_each_case() -> None:
    import argparse

    full = describe_disk_error(OSError(errno.ENOSPC, "x", "/d/s/codes.bin"),
                               argparse.Namespace(verb="extract", out="/d/s"))
    assert full.startswith("/d/s/codes.bin: no space left on device") and "--resume" in full
    ro = describe_disk_error(OSError(errno.EROFS, "x"), argparse.Namespace(verb="probe", results="/r.jsonl"))
    assert ro.startswith("/r.jsonl: cannot write there (read-only file system)") and "--results" in ro
