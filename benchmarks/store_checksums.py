"""What the store's CRC-32 checksums cost, as ratios against the same work without them.

(a) writing: ``StoreWriter.write`` (fsync included) with the per-entry CRC-32 against the
    same writer with the checksum replaced by a constant;
(b) reading a whole split through ``FeatureStore.batches`` (fp16 -> fp32, padding) with each
    entry's bytes checked on first read (the default) against ``check_reads=False``;
(c) reading utterance by utterance (``store[i]``), likewise;
(d) ``pooled(method)`` of a pooled-only store (one CRC-32 per small vector, a Python loop);
(e) a whole ``vqpool bench`` (``run_bench``, every method, 1-NN) on the same store, checked
    against not checked: what a user waits for;
(f) ``verify()`` (every byte), and zlib's CRC-32 against xxhash's XXH3 on one buffer, for the
    record (the store uses zlib: no dependency).

The store holds random fp16 frames of D=768 (wav2vec2-base) and 2 int16 codes per frame, lengths
drawn from 50 to 500 frames (1 to 10 s at 50 frames/s). Files are read from the page cache
(each is read once before timing), so disk speed does not hide the checksum's cost.

    python benchmarks/store_checksums.py                   # 200 utterances, 5 repeats
    python benchmarks/store_checksums.py --num 1000 --repeats 3

Times are the fastest of --repeats runs taking turns (on a shared machine the fastest run is the
least disturbed one, and the checksum's cost is a difference of two such times); one torch thread.
"""

import argparse
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from vqpool.evaluate.bench import run_bench
from vqpool.store import (
    FeatureStore,
    Job,
    PooledOnly,
    StoreHeader,
    StoreWriter,
    UpstreamInfo,
    verify,
)

DIM, GROUPS = 768, 2


def header(num: int, pooled: dict[str, int] | None = None) -> StoreHeader:
    upstream = UpstreamInfo(spec="bench", kind="bench", layers="mean", num_layers=1, dim=DIM, sample_rate=16000,
                            frame_rate=50.0, pads_safely=True, codes="quantizer", num_codebooks=GROUPS,
                            codebook_size=320, codebook=None)
    only = None if pooled is None else PooledOnly(dims=pooled, stats=None, semantics="paper", a=1e-3,
                                                  smoothing=1.0, extra={})
    return StoreHeader(upstream=upstream, corpus=None, task="bench", pooled_only=only,
                       job=Job(rows_sha256="0" * 64, batch_seconds=60.0, part=None, num_utterances=num))


def items(num: int, seed: int = 0, pooled: bool = False) -> list[tuple[int, dict, dict]]:
    generator = np.random.default_rng(seed)
    found = []
    for order in range(num):
        length = int(generator.integers(50, 501))
        arrays = {"codes": generator.integers(0, 320, size=(length, GROUPS)).astype(np.int16)}
        if pooled:
            arrays["pooled-ap"] = generator.normal(size=DIM).astype(np.float32)
        else:
            arrays["frames"] = generator.normal(size=(length, DIM)).astype(np.float16)
        meta = {"id": f"u{order}", "label": str(order % 7), "split": "test" if order % 5 == 0 else "train",
                "num_frames": length}
        found.append((order, meta, arrays))
    return found


def write(path: Path, utterances, checksums: bool, pooled: dict[str, int] | None = None) -> float:
    patch = mock.patch("vqpool.store.writer.checksum", (lambda blob: 0) if not checksums else zlib.crc32)
    start = time.perf_counter()
    with patch:
        writer = StoreWriter(path, header(len(utterances), pooled))
        for begin in range(0, len(utterances), 16):
            writer.write(utterances[begin : begin + 16])
        writer.seal()
    return time.perf_counter() - start


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=200, help="utterances (default 200)")
    parser.add_argument("--pooled", type=int, default=20000, help="utterances of the pooled-only store")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    utterances = items(args.num)
    vectors = items(args.pooled, pooled=True)
    times: dict[str, list[float]] = {name: [] for name in (
        "write", "write, no crc", "batches", "batches, no check", "store[i]", "store[i], no check",
        "pooled", "pooled, no check", "bench", "bench, no check", "verify")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for _ in range(args.repeats):  # each store removed at once: the page cache keeps the one read below
            times["write"].append(write(tmp / "c", utterances, True))
            shutil.rmtree(tmp / "c")
            times["write, no crc"].append(write(tmp / "n", utterances, False))
            shutil.rmtree(tmp / "n")
        store = tmp / "s"
        write(store, utterances, True)
        write(tmp / "p", vectors, True, {"ap": DIM})
        data_bytes = sum(f.stat().st_size for f in store.glob("*.bin"))
        verify(store)  # into the page cache
        sum(1 for _ in FeatureStore(store).batches())  # and the allocator warmed up
        for repeat in range(args.repeats):
            for check in (True, False) if repeat % 2 else (False, True):  # neither always goes first
                suffix = "" if check else ", no check"
                opened = FeatureStore(store, check_reads=check)
                times["batches" + suffix].append(timed(lambda s=opened: sum(1 for _ in s.batches())))
                opened = FeatureStore(store, check_reads=check)
                times["store[i]" + suffix].append(timed(lambda s=opened: [s[i] for i in range(len(s))]))
                opened = FeatureStore(tmp / "p", check_reads=check)
                times["pooled" + suffix].append(timed(lambda s=opened: s.pooled("ap")))
                opened = FeatureStore(store, check_reads=check)
                times["bench" + suffix].append(timed(lambda s=opened: run_bench(s, write=False, progress=False)))
            times["verify"].append(timed(lambda: verify(store)))
        blob = np.random.default_rng(1).bytes(256 << 20)
        crc = timed(lambda: zlib.crc32(blob))
        try:
            import xxhash

            xxh = timed(lambda: xxhash.xxh3_64_intdigest(blob))
        except ImportError:
            xxh = float("nan")
    fastest = {name: min(values) for name, values in times.items()}
    print(f"{args.num} utterances ({data_bytes / 1e6:.0f} MB of fp16 frames and int16 codes, D={DIM}); "
          f"pooled-only store of {args.pooled} AP vectors; fastest of {args.repeats}, 1 thread")
    print(f"{'measure':40} {'with crc s':>11} {'without s':>11} {'ratio':>7}")
    for name, base in (("write", "write, no crc"), ("batches", "batches, no check"),
                       ("store[i]", "store[i], no check"), ("pooled", "pooled, no check"),
                       ("bench", "bench, no check")):
        print(f"{name:40} {fastest[name]:11.4f} {fastest[base]:11.4f} {fastest[name] / fastest[base]:7.3f}")
    print(f"verify(): {data_bytes / fastest['verify'] / 1e9:.2f} GB/s; zlib.crc32 {len(blob) / crc / 1e9:.2f} GB/s, "
          f"xxhash xxh3_64 {len(blob) / xxh / 1e9:.2f} GB/s (256 MB buffer)")


if __name__ == "__main__":
    main()
