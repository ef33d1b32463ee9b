"""A store that opens as complete holds the right data: one writer at a time, checksums of the
data, one-line errors for edited files, and nothing left behind by killed runs (issue #9,
cases 1, 2 and 6)."""

import json
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_store_extract import ONE_THREAD, fsdd_rows, store_bytes

from toy_headers import toy_header
from vqpool.cli import main
from vqpool.errors import VqpoolError
from vqpool.extract import extract
from vqpool.manifest import read_manifest, write_manifest
from vqpool.store import INDEX, FeatureStore, StoreWriter
from vqpool.upstream import load_upstream

DIM, GROUPS = 6, 2

# Run the CLI once a "go" file appears (after the imports, so that both processes start together).
STARTER = """
import os, sys, time
from pathlib import Path
from vqpool.cli import main
import vqpool.data, vqpool.extract, vqpool.upstream.logmel, vqpool.commands.extract
go = Path(sys.argv[1])
Path(f"{go}.{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.001)
sys.exit(main(sys.argv[2:]))
"""


def verify(store: Path) -> list[str]:
    from vqpool.store import (
        verify,  # new with the checksums: imported here, so that each test fails alone without it
    )

    return verify(store)


def run_together(go: Path, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    processes = [subprocess.Popen([sys.executable, "-c", STARTER, str(go), *command], env=ONE_THREAD,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for command in commands]
    deadline = time.monotonic() + 120
    while len(list(go.parent.glob(f"{go.name}.*"))) < len(commands) and time.monotonic() < deadline:
        time.sleep(0.005)
    go.touch()
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate()) for p in processes]


def cut_to(store: Path, lines: int) -> None:
    """What a kill after ``lines`` committed utterances leaves."""
    (store / "complete.json").unlink()
    index = store / INDEX
    index.write_bytes(b"".join(index.read_bytes().splitlines(keepends=True)[:lines]))


# Case 1: one writer per store.

def test_two_extractions_started_together_never_leave_wrong_data(fsdd_root, tmp_path):
    write_manifest(fsdd_rows(fsdd_root, 30, step=11), tmp_path / "m.csv")
    args = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"), "--batch-seconds", "0.3"]
    assert main([*args, "--out", str(tmp_path / "clean")]) == 0
    fresh, killed = tmp_path / "fresh", tmp_path / "killed"
    assert main([*args, "--out", str(killed)]) == 0
    cut_to(killed, 5)
    # Two extractions into one new folder, and two resumes of one killed store, all at once.
    results = run_together(tmp_path / "go", *[[*args, "--out", str(fresh)]] * 2,
                           *[[*args, "--out", str(killed), "--resume"]] * 2)
    for out, pair in ((killed, results[2:]), (fresh, results[:2])):
        assert store_bytes(out) == store_bytes(tmp_path / "clean")  # the right data, all of it
        assert len(FeatureStore(out)) == 30 and verify(out) == []
        refused = [r for r in pair if r.returncode != 0]
        assert len(refused) <= 1, [r.stderr[-500:] for r in pair]
        for result in refused:  # the other one was refused at once, or came after and found it done
            assert "Traceback" not in result.stderr
            if "already holds a complete feature store" in result.stderr:
                continue
            assert "another vqpool process is writing this store (pid " in result.stderr
            assert f"on host {socket.gethostname()}" in result.stderr


def test_a_second_writer_is_refused_at_once_and_a_dead_one_blocks_nothing(fsdd_root, tmp_path, capsys):
    write_manifest(fsdd_rows(fsdd_root, 3), tmp_path / "m.csv")
    out = tmp_path / "s"
    args = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"), "--out", str(out)]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from vqpool.store import lock; lock.acquire(sys.argv[1]); "
         "print('held', flush=True); time.sleep(600)", str(out)],
        stdout=subprocess.PIPE, text=True, env=ONE_THREAD)
    try:
        assert holder.stdout.readline() == "held\n"
        start = time.monotonic()
        for extra in ([], ["--resume"]):
            assert main([*args, *extra]) == 1
            err = capsys.readouterr().err
            assert f"another vqpool process is writing this store (pid {holder.pid} on host " \
                   f"{socket.gethostname()}, since " in err and len(err.strip().splitlines()) == 1
        assert time.monotonic() - start < 5  # refused at once, not after waiting
        with pytest.raises(VqpoolError, match="another vqpool process"):
            StoreWriter(out, toy_header())
    finally:
        holder.send_signal(signal.SIGKILL)  # a crashed holder: the OS releases its lock
        holder.wait()
    assert (out / "writer.lock").is_file()  # stale: taken over, not obeyed
    assert main([*args, "--resume"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["codes-00000.bin", "complete.json", "frames-00000.bin",
                                                      "header.json", "index.jsonl"] or \
        sorted(p.name for p in out.iterdir()) == ["complete.json", "frames-00000.bin", "header.json", "index.jsonl"]
    from vqpool.store import store_lock

    with store_lock(out), store_lock(out):  # re-entrant within a process
        assert (out / "writer.lock").is_file()
    assert not (out / "writer.lock").exists()


# Case 2: checksums of the data.

def tiny_store(path: Path, *, pooled: bool = False, shard_bytes: int = 100) -> list[tuple[int, dict, dict]]:
    generator = np.random.default_rng(0)
    items = []
    for order, length in enumerate([5, 9, 3, 7, 4]):
        arrays = {"codes": generator.integers(0, 50, size=(length, GROUPS))}
        if pooled:
            arrays |= {"pooled-ap": generator.normal(size=DIM).astype(np.float32),
                       "pooled-sp": generator.normal(size=2 * DIM).astype(np.float32)}
        else:
            arrays["frames"] = generator.normal(size=(length, DIM)).astype(np.float32)
        items.append((order, {"id": f"u{order}", "split": "train", "num_frames": length}, arrays))
    header = toy_header(dim=DIM, num_codebooks=GROUPS, codebook_size=50, num_utterances=len(items),
                        pooled_dims={"ap": DIM, "sp": 2 * DIM} if pooled else None)
    writer = StoreWriter(path, header, shard_bytes=shard_bytes)
    writer.write(items[:2])
    writer.write(items[2:])
    writer.seal()
    return items


@pytest.mark.parametrize("pooled", [False, True])
def test_verify_finds_a_single_flipped_byte_in_any_shard(tmp_path, pooled, capsys):
    store = tmp_path / "s"
    tiny_store(store, pooled=pooled)
    shards = sorted(store.glob("*.bin"))
    assert len(shards) >= 4 and verify(store) == []
    assert main(["verify", str(store)]) == 0
    assert "all 5 utterances intact" in capsys.readouterr().out
    for shard in shards:
        original = shard.read_bytes()
        for position in sorted({0, len(original) // 2, len(original) - 1}):
            damaged = bytearray(original)
            damaged[position] ^= 0x01
            shard.write_bytes(bytes(damaged))
            problems = verify(store)
            assert len(problems) == 1 and shard.name in problems[0] and "differ from their checksum" in problems[0]
            opened = FeatureStore(store)  # opening reads no array; reading the damaged one stops
            with pytest.raises(VqpoolError, match=f"damaged store: utterance .* its {shard.name.rsplit('-', 1)[0]} bytes"):
                if pooled and shard.name.startswith("pooled-"):
                    opened.pooled(shard.name.rsplit("-", 1)[0].removeprefix("pooled-"))
                else:
                    for i in range(len(opened)):
                        opened[i]
            assert main(["verify", str(store)]) == 1
            assert problems[0] in capsys.readouterr().out
        shard.write_bytes(original)
    assert verify(store) == []


def test_an_infinite_frame_a_flipped_code_or_a_copied_index_line_is_never_read_as_valid(tmp_path):
    store = tmp_path / "s"
    tiny_store(store, shard_bytes=1 << 20)
    frames = np.memmap(store / "frames-00000.bin", dtype=np.float16, mode="r+")
    frames[7] = np.inf  # a flipped exponent: +inf, in utterance u0 (the first 5 x 6 values)
    frames.flush()
    codes = np.memmap(store / "codes-00000.bin", dtype=np.uint8, mode="r+")
    codes[-1] ^= 0x40  # the last utterance's last code
    codes.flush()
    del frames, codes
    opened = FeatureStore(store)
    with pytest.raises(VqpoolError, match="utterance 'u0': its frames bytes"):
        list(opened.batches())
    with pytest.raises(VqpoolError, match="utterance 'u4': its codes bytes"):
        opened[4]
    problems = verify(store)
    assert len(problems) == 2 and "'u0': its frames" in problems[0] and "'u4': its codes" in problems[1]

    other = tmp_path / "copied"
    tiny_store(other)
    index = other / INDEX
    lines = index.read_bytes().splitlines(keepends=True)
    lines[2] = lines[1]  # the count is kept, one utterance lost, one twice
    index.write_bytes(b"".join(lines))
    with pytest.raises(VqpoolError, match=r"index.jsonl:3: plan position 1 again \(first on line 2\)"):
        FeatureStore(other)
    assert any("utterance id 'u1' again" in problem for problem in verify(other))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_index_line(store: Path, number: int, change) -> None:
    """Edit line ``number`` of the index as a careful hand would: with a new line checksum."""
    lines = (store / INDEX).read_bytes().splitlines(keepends=True)
    record = json.loads(lines[number - 1].split(b" ", 1)[1])
    change(record)
    body = json.dumps(record).encode()
    lines[number - 1] = b"%08x %s\n" % (zlib.crc32(body), body)
    (store / INDEX).write_bytes(b"".join(lines))


def test_edited_headers_and_completion_records_are_one_line_errors(tmp_path, capsys):
    def upstream(key, value):
        return lambda data: data["upstream"].__setitem__(key, value)

    edits = {  # what to edit -> what the one line says
        "dim": ("header.json", upstream("dim", 3), "header field 'upstream.dim' is 3, but was 6 when the store was sealed"),
        "codebooks": ("header.json", upstream("num_codebooks", 3), "header field 'upstream.num_codebooks' is 3, but was 2"),
        "no codes": ("header.json", upstream("num_codebooks", None), "header field 'upstream.num_codebooks' is null, but was 2"),
        "size": ("header.json", upstream("codebook_size", 64), "'upstream.codebook_size' is 64, but was 50"),
        "truncated": ("header.json", "{\"format\": \"vqpool-", "header.json: not JSON"),
        "array": ("header.json", "[1, 2]", "header.json: not a vqpool store header"),
        "garbage": ("complete.json", "\x00\x17garbage", "complete.json: not JSON"),
        "list": ("complete.json", "[]", "complete.json: holds [], not the completion record's object"),
        "count": ("complete.json", lambda data: data.__setitem__("num_utterances", "5"),
                  "complete.json: field 'num_utterances' is \"5\", expected a count"),
        "frames": (INDEX, lambda record: record["meta"].__setitem__("num_frames", 4),
                   "index.jsonl:2: utterance 'u1': 36 bytes of codes, not the 16 that num_frames 4"),
    }
    for name, (file, change, message) in edits.items():
        store = tmp_path / name
        tiny_store(store)
        if file == INDEX:
            edit_index_line(store, 2, change)
        elif callable(change):
            edit_json(store / file, change)
        else:
            (store / file).write_text(change)
        with pytest.raises(VqpoolError, match="^" + str(store)) as caught:
            FeatureStore(store)
        assert message in str(caught.value), name
        assert main(["bench", "--store", str(store)]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, name
        assert any(message in problem for problem in verify(store)), name

    # An unsealed store has no sealed header to compare with: its entries are checked against it.
    store = tmp_path / "partial"
    tiny_store(store)
    (store / "complete.json").unlink()
    edit_json(store / "header.json", upstream("dim", 3))
    with pytest.raises(VqpoolError, match="header field 'upstream.dim' is 3, but the frames entries hold 6 values per frame"):
        FeatureStore(store, allow_partial=True)


# Case 6: no debris, and byte-identical resumes.

def test_a_resume_cleans_up_and_equals_an_uninterrupted_run_file_for_file(fsdd_root, tmp_path, capsys):
    write_manifest(fsdd_rows(fsdd_root, 6), tmp_path / "m.csv")
    args = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"), "--batch-seconds", "0.5"]
    out = tmp_path / "s"
    assert main([*args, "--out", str(out)]) == 0
    # Killed while sealing: the completion record's temporary is there, the record is not.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    sealing = out / f".complete.json.tmp-{dead}"
    sealing.write_bytes((out / "complete.json").read_bytes()[:10])
    cut_to(out, 4)
    time.sleep(1.1)  # a later second: a time in any file would now differ
    assert main([*args, "--out", str(out), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "clean")]) == 0
    assert not sealing.exists() and not (out / "writer.lock").exists()
    every_file = {f.name: f.read_bytes() for f in sorted(out.iterdir())}
    assert every_file == {f.name: f.read_bytes() for f in sorted((tmp_path / "clean").iterdir())}
    assert sorted(every_file) == ["complete.json", "frames-00000.bin", "header.json", "index.jsonl"]


def test_killed_atomic_writes_do_not_pile_up_temporaries(tmp_path):
    from vqpool.io import atomic_write_text
    from vqpool.upstream.codebook import KMeansCodebook

    dead = [subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True).stdout.strip() for _ in range(2)]
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        leftovers = [tmp_path / f".cb.codebook.tmp-{dead[0]}", tmp_path / f".cb.codebook.tmp-{dead[1]}-{socket.gethostname()}"]
        kept = [tmp_path / f".cb.codebook.tmp-{alive.pid}", tmp_path / f".cb.codebook.tmp-{dead[0]}-another-host"]
        for path in leftovers + kept:
            path.write_bytes(b"half a codebook")
        codebook = KMeansCodebook.fit(np.random.default_rng(0).normal(size=(64, 4)), num_codebooks=2,
                                      codebook_size=4, upstream="logmel", layer="mean")
        codebook.save(tmp_path / "cb.codebook")
        assert not any(path.exists() for path in leftovers) and all(path.exists() for path in kept)
        atomic_write_text(tmp_path / "note.txt", "x")
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["cb.codebook", "note.txt"]
    finally:
        alive.kill()
        alive.wait()


def test_rank_stores_left_by_a_merge_that_finished_are_removed(fsdd_root, tmp_path, capsys):
    write_manifest(fsdd_rows(fsdd_root, 4), tmp_path / "m.csv")
    args = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"), "--batch-seconds", "1"]
    out = tmp_path / "s"
    assert main([*args, "--out", str(out)]) == 0
    rows = read_manifest(tmp_path / "m.csv")
    extract(rows, load_upstream("logmel"), tmp_path / "whole", batch_seconds=1, task="m", progress=False)
    sealed = store_bytes(out)
    for command in ([*args, "--out", str(out)], [*args, "--out", str(out), "--resume"],
                    ["extract", "--merge", "--out", str(out)]):
        # The merge sealed OUT, then was killed while removing the rank stores: part of one is left.
        leftover = out / "rank-00001"
        leftover.mkdir()
        (leftover / "header.json").write_bytes((out / "header.json").read_bytes())
        (leftover / "frames-00000.bin").write_bytes(b"\x00" * 64)
        capsys.readouterr()
        assert main(command) == 0, capsys.readouterr().err
        assert not leftover.exists() and store_bytes(out) == sealed
        assert "nothing to do" in capsys.readouterr().out or "merge" in command[1]
    assert len(FeatureStore(out)) == 4
