"""The benchmark protocol at growing scale: where `vqpool bench` and `vqpool probe` spend their time.

Synthetic stores of N utterances (default 2k, 8k, 32k) are written with the real store writer,
so the files are what extraction writes: D=768 fp16 frames (wav2vec2-base), 50-300 frames an
utterance (1-6 s), G=2 V=320 codes in runs of 1-6 equal codes, and a speaker-ID-like task:
min(1251, N/16) speakers (VoxCeleb1 has 1,251), each utterance its speaker's centre, an
utterance offset four times the centres' spread and per-frame noise; per speaker every tenth utterance tests, the next one
validates, the rest train. For each size, in one run:

- `run_bench(store, "all")` and `run_probe` (``--probe-methods``, one seed, ``--probe-epochs``
  epochs: a few, to keep the run short; the paper trains SID for 50), wall time, and the share of
  each phase, measured by timers wrapped around stable names: read = time spent producing
  batches (`FeatureStore.batches`), statistics = `CorpusStats.fit` / `CorpusStats.from_store`
  (less the reading inside), pooling = `vqpool.pooling.pool` (wherever it is looked up), search =
  `vqpool.evaluate.knn.nearest_neighbours`; "other" is the rest (the probe's training is there).
  A phase's time is exclusive: time in a phase nested inside another counts for the inner one.
  Only the main thread's calls are timed (a reader thread's work shows as the main thread's
  wait for batches);
- peak anonymous memory: the largest RssAnon of /proc/self/status (resident heap and tensors of
  this process, not the page cache nor the store's memory-mapped files) sampled every 10 ms in a
  thread during the call, and its rise over the value before the call;
- FAISS against matmul 1-NN: `nearest_neighbours` on the first vectors bench searched, with
  ``search="faiss"`` and ``"matmul"``, median of three, as a ratio (skipped on code without the
  ``search`` option).

Then the fitted growth exponent (least-squares slope of log time against log N) of bench and
probe, and, on one batch of the first store, `pool()` on fp16 and bf16 frames against the same
call on fp32 frames for ap, sp, vq-lp and vq-sif (median of seven, taking turns).

    python benchmarks/protocol.py                               # 2k, 8k, 32k (32k: 8.6 GB of frames)
    python benchmarks/protocol.py --sizes 1000 2000 4000 --out protocol  # a quick check; protocol.md/.csv
    PYTHONPATH=<checkout>/src python benchmarks/protocol.py --work /tmp/stores   # another checkout, stores kept

The quick check took 2.5 min on 2 cores shared at load 4-5 (stores built included; 4k: 1.1 GB);
bench time grows about linearly with N, so the default sizes take several times 32/4 as long.
Runs on any vqpool since main 627cfaf (the store format is the same): the lead runs it on old and
new code back to back with the same ``--work`` folder, so both read the same stores.
"""

import argparse
import csv
import functools
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vqpool.evaluate.knn as knn
import vqpool.pooling
from vqpool.errors import VqpoolError
from vqpool.evaluate import run_bench, run_probe
from vqpool.pooling import CorpusStats
from vqpool.store import FeatureStore, Job, StoreHeader, StoreWriter, UpstreamInfo

DIM, GROUPS, VALUES = 768, 2, 320
MIN_FRAMES, MAX_FRAMES = 50, 300
MAX_SPEAKERS = 1251
PHASES = ("read", "statistics", "pooling", "search")
DTYPE_METHODS = ("ap", "sp", "vq-lp", "vq-sif")


# --- the synthetic stores -------------------------------------------------------------------

def header(num: int) -> StoreHeader:
    upstream = UpstreamInfo(spec="synthetic", kind="synthetic", layers="mean", num_layers=1, dim=DIM,
                            sample_rate=16000, frame_rate=50.0, pads_safely=True, codes="quantizer",
                            num_codebooks=GROUPS, codebook_size=VALUES, codebook=None)
    return StoreHeader(upstream=upstream, corpus=None, task="sid", pooled_only=None,
                       job=Job(rows_sha256="0" * 64, batch_seconds=60.0, part=None, num_utterances=num))


def runs_of_codes(length: int, rng: np.random.Generator) -> np.ndarray:
    """``[L, G]`` int16 codes in runs of 1-6 equal codes, independently per codebook."""
    columns = []
    for _ in range(GROUPS):
        ends = np.cumsum(rng.integers(1, 7, size=length))
        run = np.searchsorted(ends, np.arange(length), side="right")
        columns.append(rng.integers(0, VALUES, size=length)[run])
    return np.stack(columns, axis=1).astype(np.int16)


def build_store(path: Path, num: int, seed: int) -> None:
    """Write the store described in the module docstring at ``path``."""
    rng = np.random.default_rng(seed)
    speakers = max(2, min(MAX_SPEAKERS, num // 16))
    centres = rng.standard_normal((speakers, DIM), dtype=np.float32)
    # Per-frame noise drawn from one bank at random offsets: drawing 5M x 768 normals would
    # take longer than everything it measures.
    bank = rng.standard_normal((1 << 16, DIM), dtype=np.float32) * 2.0
    writer = StoreWriter(path, header(num))
    batch = []
    for order in range(num):
        speaker, turn = order % speakers, order // speakers
        length = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
        start = int(rng.integers(0, len(bank) - length))
        # An utterance's own offset, large against the speakers' spread: 1-NN is not perfect.
        utterance = centres[speaker] + 4.0 * rng.standard_normal(DIM, dtype=np.float32)
        frames = (utterance + bank[start : start + length]).astype(np.float16)
        split = "test" if turn % 10 == 0 else "validation" if turn % 10 == 1 else "train"
        meta = {"id": f"spk{speaker:04d}-{turn:03d}", "label": f"spk{speaker:04d}",
                "speaker": f"spk{speaker:04d}", "split": split, "num_frames": length,
                "duration": length / 50}
        batch.append((order, meta, {"codes": runs_of_codes(length, rng), "frames": frames}))
        if len(batch) == 256:
            writer.write(batch)
            batch = []
    if batch:
        writer.write(batch)
    writer.seal()


def open_or_build(folder: Path, num: int, seed: int) -> tuple[FeatureStore, float]:
    """The store of ``num`` utterances in ``folder`` (built unless a complete one is there) and
    the seconds its building took (0 when reused)."""
    path = folder / f"synthetic-{num}-seed{seed}"
    try:
        store = FeatureStore(path)
        if len(store) == num:
            return store, 0.0
    except (VqpoolError, OSError):
        pass
    start = time.perf_counter()
    build_store(path, num, seed)
    return FeatureStore(path), time.perf_counter() - start


# --- phase timers ---------------------------------------------------------------------------

class Phases:
    """Exclusive seconds per phase of the main thread's wrapped calls (see the docstring)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []  # [phase, start, seconds of nested phases]
        self._main = threading.get_ident()

    def reset(self) -> None:
        self.seconds.clear()

    def timed(self, phase: str, call: Callable[[], Any]) -> Any:
        if threading.get_ident() != self._main:
            return call()
        self._stack.append([phase, time.perf_counter(), 0.0])
        try:
            return call()
        finally:
            _, start, nested = self._stack.pop()
            elapsed = time.perf_counter() - start
            self.seconds[phase] += elapsed - nested
            if self._stack:
                self._stack[-1][2] += elapsed

    def wrap(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self.timed(phase, lambda: function(*args, **kwargs))
        return wrapper

    def wrap_iterator(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` returns an iterator: time spent in each of its steps counts."""
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            return TimedIterator(iter(function(*args, **kwargs)), self, phase)
        return wrapper


class TimedIterator:
    def __init__(self, inner: Iterator[Any], phases: Phases, phase: str) -> None:
        self.inner, self.phases, self.phase = inner, phases, phase

    def __iter__(self) -> "TimedIterator":
        return self

    def __next__(self) -> Any:
        return self.phases.timed(self.phase, lambda: next(self.inner))

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


def install_timers(phases: Phases, searched: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Wrap the stable names; ``searched`` keeps the first (train, test) pair searched in a
    run (`run_bench` searches the AP vectors first)."""
    FeatureStore.batches = phases.wrap_iterator("read", FeatureStore.batches)
    for name in ("fit", "from_store"):
        function = CorpusStats.__dict__[name].__func__
        setattr(CorpusStats, name, classmethod(phases.wrap("statistics", function)))
    original_pool = vqpool.pooling.pool
    timed_pool = phases.wrap("pooling", original_pool)
    original_search = knn.nearest_neighbours
    timed_search = phases.wrap("search", original_search)

    def search(train_x: torch.Tensor, test_x: torch.Tensor, **options: Any) -> torch.Tensor:
        if not searched:
            searched.append((train_x, test_x))
        return timed_search(train_x, test_x, **options)

    # Patched wherever the names are looked up: every vqpool module that imported them.
    for module in [m for name, m in sys.modules.items() if name.startswith("vqpool") and m]:
        if getattr(module, "pool", None) is original_pool:
            module.pool = timed_pool
        if getattr(module, "nearest_neighbours", None) is original_search:
            module.nearest_neighbours = search


# --- memory and clocks ----------------------------------------------------------------------

def rss_anon() -> int:
    """This process's resident anonymous memory in bytes (0 where /proc is not there)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measured(call: Callable[[], Any]) -> tuple[Any, float, int, int]:
    """``call()``, its wall seconds, its peak RssAnon and the rise over the value before."""
    before = peak = rss_anon()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.01):
            peak = max(peak, rss_anon())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = call()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    peak = max(peak, rss_anon())
    return result, seconds, peak, peak - before


def median_seconds(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the measurements -----------------------------------------------------------------------

def search_ratio(pair: list[tuple[torch.Tensor, torch.Tensor]], function: Callable[..., Any]) -> str:
    """FAISS over matmul 1-NN time on the pair bench searched first, or why it is not measured."""
    if "search" not in inspect.signature(function).parameters:
        return "n/a (no search option)"
    try:
        import faiss  # noqa: F401
    except ImportError:
        return "n/a (faiss not installed)"
    train, test = pair[0]
    seconds = {}
    for search in ("matmul", "faiss", "matmul", "faiss"):  # taking turns; the second round counts
        seconds[search] = median_seconds(lambda s=search: function(train, test, search=s), 3)
    return f"{seconds['faiss'] / seconds['matmul']:.2f} ({seconds['faiss']:.2f} / {seconds['matmul']:.2f} s)"


def dtype_ratios(store: FeatureStore, pool: Callable[..., torch.Tensor]) -> list[list[str]]:
    """pool() time on fp16 and bf16 frames over fp32, per method, on one batch of the store."""
    frames, lengths, codes, _ = next(iter(store.batches(store.indices("train")[:64])))
    stats = CorpusStats.fit([(frames, lengths, codes)], VALUES, progress=False)
    dtypes = (torch.float32, torch.float16, torch.bfloat16)
    typed = {dtype: frames.to(dtype) for dtype in dtypes}
    rows = []
    for method in DTYPE_METHODS:
        times: dict[torch.dtype, list[float]] = {dtype: [] for dtype in dtypes}
        for repeat in range(8):  # the dtypes take turns; the first round warms up
            for dtype in dtypes:
                start = time.perf_counter()
                pool(typed[dtype], lengths, codes, method, stats)
                if repeat:
                    times[dtype].append(time.perf_counter() - start)
        fp32, fp16, bf16 = (statistics.median(times[dtype]) for dtype in dtypes)
        rows.append([method, f"{fp32 * 1e3:.1f}", f"{fp16 / fp32:.2f}", f"{bf16 / fp32:.2f}"])
    return rows


def slope(sizes: list[int], seconds: list[float]) -> str:
    if len(sizes) < 2:
        return "n/a (one size)"
    x, y = np.log(sizes), np.log(seconds)
    return f"{np.polyfit(x, y, 1)[0]:.2f}"


def shares(seconds: dict[str, float], total: float) -> list[str]:
    other = total - sum(seconds.get(p, 0.0) for p in PHASES)
    return [f"{100 * seconds.get(p, 0.0) / total:.0f}%" for p in PHASES] + [f"{100 * other / total:.0f}%"]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--work", type=Path, help="folder to keep the stores in and reuse them "
                        "from (default: a temporary folder, removed at the end)")
    parser.add_argument("--probe-epochs", type=int, default=3,
                        help="probe epochs (default 3: a timing, not an accuracy)")
    parser.add_argument("--probe-methods", default="ap,sp,vq-lp",
                        help="probe methods (default ap,sp,vq-lp; the heads sap,asp,vap train on "
                        "frames and take far longer)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write OUT.md and OUT.csv")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        pass

    phases, searched = Phases(), []
    original_pool, original_search = vqpool.pooling.pool, knn.nearest_neighbours
    install_timers(phases, searched)
    print(f"vqpool from {Path(vqpool.__file__).parent}; torch {torch.__version__}, "
          f"{args.threads} threads; {os.cpu_count()} cores; at start: {uptime()}")
    header_row = ["N", "frames", "store GB", "build s", "bench s", "read", "statistics", "pooling",
                  "search", "other", "bench peak MB (rise)", "1-NN", "faiss/matmul 1-NN",
                  "probe s", "p.read", "p.statistics", "p.pooling", "p.search", "p.other",
                  "probe peak MB (rise)"]
    rows, bench_times, probe_times = [], [], []
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.work or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        first_store = None
        for num in args.sizes:
            store, build_s = open_or_build(folder, num, args.seed)
            first_store = first_store or store
            frames = int(sum(store.meta[i]["num_frames"] for i in range(len(store))))
            size = sum(f.stat().st_size for f in Path(store.path).glob("*.bin")) / 1e9

            phases.reset()
            searched.clear()
            bench, bench_s, bench_peak, bench_rise = measured(
                lambda s=store: run_bench(s, "all", write=False, progress=False))
            bench_phases = dict(phases.seconds)
            backend = bench[0]["settings"].get("search", "matmul (no search option)")
            accuracy = next(r["accuracy"] for r in bench if r["method"] == "ap")
            ratio = search_ratio(searched, original_search)

            phases.reset()
            _, probe_s, probe_peak, probe_rise = measured(
                lambda s=store: run_probe(s, args.probe_methods.split(","), seeds=1,
                                          epochs=args.probe_epochs, write=False, progress=False))
            probe_phases = dict(phases.seconds)
            bench_times.append(bench_s)
            probe_times.append(probe_s)
            rows.append([str(num), str(frames), f"{size:.2f}", f"{build_s:.0f}", f"{bench_s:.1f}",
                         *shares(bench_phases, bench_s),
                         f"{bench_peak / 2**20:.0f} ({bench_rise / 2**20:.0f})",
                         f"ap {accuracy:.1f}% ({backend})", ratio, f"{probe_s:.1f}",
                         *shares(probe_phases, probe_s),
                         f"{probe_peak / 2**20:.0f} ({probe_rise / 2**20:.0f})"])
            print(f"N={num}: bench {bench_s:.1f} s, probe {probe_s:.1f} s ({uptime()})", flush=True)
        dtype_rows = dtype_ratios(first_store, original_pool)

    print()
    table = markdown(header_row, rows)
    growth = (f"growth exponent (slope of log time vs log N): bench {slope(args.sizes, bench_times)}, "
              f"probe {slope(args.sizes, probe_times)}")
    dtype_header = ["method", "fp32 ms", "fp16/fp32", "bf16/fp32"]
    dtypes = markdown(dtype_header, dtype_rows)
    notes = (f"Shares are of each call's wall time; peak MB is the largest RssAnon during the call "
             f"(rise over the value before it). Probe: methods {args.probe_methods}, 1 seed, "
             f"{args.probe_epochs} epochs. pool() ratios on one batch of 64 training utterances of "
             f"the first store, median of 7 taking turns. At end: {uptime()}")
    print(table, growth, "", "pool() on fp16 / bf16 frames against fp32:", dtypes, "", notes,
          sep="\n")
    if args.out:
        args.out.with_suffix(".md").write_text(
            "\n\n".join([table, growth, dtypes, notes]) + "\n", encoding="utf-8")
        with open(args.out.with_suffix(".csv"), "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header_row)
            writer.writerows(rows)
            writer.writerow([])
            writer.writerow(dtype_header)
            writer.writerows(dtype_rows)
        print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
