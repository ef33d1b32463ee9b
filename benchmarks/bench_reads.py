"""What ``vqpool bench --methods all`` costs on a synthetic store, against another version of vqpool.

Each repeat runs ``run_bench(store, "all")`` in a fresh process with this checkout's ``src`` and
in one with ``--baseline-src`` (e.g. ``git archive main src | tar -x -C /tmp/base``), taking
turns, one torch thread each. Reported per version (medians): wall and CPU seconds of the whole
benchmark, seconds spent inside ``FeatureStore.batches`` (reading, CRC-32 on first read,
widening, padding), and the bytes of frames and codes it read; then the CPU seconds of one read
pass over the store (``sum(1 for _ in store.batches())``), and for a version that has
``reuse``, with it, and with it and ``check_reads=False`` (no CRC-32). The ratios are this checkout's over the baseline's,
and the accuracies of both must be equal.

The store is written with the real ``StoreWriter``: N utterances of 60 to 140 frames of D=768
fp16 (a speaker's centre plus noise) and 2 int16 codes per frame, 50 speakers, a fifth of each
speaker's utterances in the test split. It is read once before timing (page cache).

    python benchmarks/bench_reads.py --baseline-src /tmp/base/src            # 4000, 3 repeats
    python benchmarks/bench_reads.py --baseline-src /tmp/base/src --num 1000 --repeats 1
"""

import argparse
import inspect
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from store_checksums import DIM, GROUPS, header

SPEAKERS = 50
SRC = Path(__file__).resolve().parents[1] / "src"


def write_store(path: Path, num: int, seed: int = 0) -> None:
    from vqpool.store import StoreWriter

    generator = np.random.default_rng(seed)
    centres = generator.normal(size=(SPEAKERS, DIM)).astype(np.float32)
    writer = StoreWriter(path, header(num))
    lengths = sorted(generator.integers(60, 141, size=num).tolist(), reverse=True)  # as extract orders
    for begin in range(0, num, 64):
        chunk = []
        for order in range(begin, min(num, begin + 64)):
            speaker, length = order % SPEAKERS, lengths[order]
            frames = centres[speaker] + generator.normal(scale=2.0, size=(length, DIM))
            chunk.append((order, {"id": f"u{order}", "label": f"s{speaker}",
                                  "split": "test" if (order // SPEAKERS) % 5 == 0 else "train",
                                  "num_frames": length},
                          {"frames": frames.astype(np.float16),
                           "codes": generator.integers(0, 320, size=(length, GROUPS)).astype(np.int16)}))
        writer.write(chunk)
    writer.seal()


def child(store_path: str) -> dict:
    """One measured benchmark in this process (run with the version's src on sys.path)."""
    import torch

    from vqpool.evaluate.bench import run_bench
    from vqpool.store import FeatureStore

    torch.set_num_threads(1)
    spent = {"wall": 0.0, "cpu": 0.0, "frames": 0, "codes": 0}
    batches = FeatureStore.batches

    def timed_batches(self, *args, **kwargs):
        iterator = batches(self, *args, **kwargs)
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            batch = next(iterator, None)
            spent["wall"] += time.perf_counter() - wall
            spent["cpu"] += time.process_time() - cpu
            if batch is None:
                return
            for stream, tensor in (("frames", batch[0]), ("codes", batch[2])):
                if tensor is not None:
                    spent[stream] += sum(self._records[i]["data"][stream][2] for i in batch[3])
            yield batch

    FeatureStore.batches = timed_batches
    wall, cpu = time.perf_counter(), time.process_time()
    rows = run_bench(FeatureStore(store_path), "all", write=False, progress=False)
    measured = {"bench wall": time.perf_counter() - wall, "bench cpu": time.process_time() - cpu,
                "read wall": spent["wall"], "read cpu": spent["cpu"],
                "frames MB": spent["frames"] / 1e6, "codes MB": spent["codes"] / 1e6}
    FeatureStore.batches = batches
    variants = {"read pass cpu": ({}, True)}
    if "reuse" in inspect.signature(batches).parameters:  # a version that has the option
        variants.update({"  reused": ({"reuse": True}, True),
                         "  reused, no crc": ({"reuse": True}, False)})
    for name, (options, check) in variants.items():
        store = FeatureStore(store_path, check_reads=check)
        cpu = time.process_time()
        sum(1 for _ in store.batches(**options))
        measured[name] = time.process_time() - cpu
    return {"measured": measured, "accuracy": {r["method"]: r["per_fold"] for r in rows}}


def run_child(src: Path, store: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{Path(__file__).parent}"}
    done = subprocess.run([sys.executable, __file__, "--child", str(store)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=4000, help="utterances (default 4000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, required="--child" not in sys.argv,
                        help="the src folder of the version to compare with")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        write_store(store, args.num)
        size = sum(f.stat().st_size for f in store.glob("*.bin"))
        for f in store.glob("*.bin"):  # into the page cache
            f.read_bytes()
        runs: dict[str, list[dict]] = {"new": [], "base": []}
        for repeat in range(args.repeats):
            for version in ("new", "base") if repeat % 2 == 0 else ("base", "new"):
                runs[version].append(run_child(SRC if version == "new" else args.baseline_src, store))
    same = runs["new"][0]["accuracy"] == runs["base"][0]["accuracy"]
    print(f"{args.num} utterances, {size / 1e9:.2f} GB of store files (D={DIM} fp16, {GROUPS} int16 "
          f"codes); medians of {args.repeats} run(s) per version, 1 thread; load {os.getloadavg()}")
    print(f"{'measure':16} {'baseline':>10} {'this':>10} {'ratio':>7}")
    for name in runs["new"][0]["measured"]:
        base, new = (statistics.median(r["measured"].get(name, math.nan) for r in runs[v])
                     for v in ("base", "new"))
        print(f"{name:16} {base:10.3f} {new:10.3f} {new / base if base else float('nan'):7.3f}")
    print("accuracies identical" if same else f"ACCURACIES DIFFER: {runs['new'][0]['accuracy']} "
          f"vs {runs['base'][0]['accuracy']}")


if __name__ == "__main__":
    main()
