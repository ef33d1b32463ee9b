"""What `vqpool index` buys: FAISS exact and approximate search against vqpool's chunked 1-NN.

One run, on synthetic clustered vectors shaped like pooled utterance vectors (100k x 768 by
default): 100 groups of 10 clusters each (speakers within accents, say), each point its
cluster's centre plus variation in a shared 32-dimensional subspace plus isotropic noise, L2
normalised. Queries are fresh draws from the same clusters (held out of the index).

- exact: `vqpool.evaluate.knn.nearest_neighbours` (`vqpool bench`'s 1-NN) with the chunked matmul
  and with FAISS candidates (both re-scored in float64), against FAISS `IndexFlatIP` itself (what
  `vqpool index build` writes by default), k=1 and k=10;
- approximate: IVF and HNSW built by `vqpool.neighbours` with the library's default
  parameters, searched at their default and a few other settings; recall@10 against the exact
  top 10, speed-up against exact FAISS search for k=10.

    python benchmarks/search.py                          # 100k x 768, 300 queries, about 1 min on 2 cores
    python benchmarks/search.py --threads 1 --clock cpu  # steadier on a shared machine
    python benchmarks/search.py --vectors 20000 --queries 200    # a quick look

Search times are medians of --repeats runs on --clock (wall, or process CPU time: it does not
count waiting for other users of a shared machine; with more than one thread it adds up the
threads' time), the other clock beside it; builds run once. On a busy machine OpenMP threads
wait for each other and every multi-threaded time suffers: use --threads 1 --clock cpu there.
Ratios compare with baselines measured in the same run, on the same clock.
Targets (issue 12): exact FAISS search at least as fast as the chunked matmul; an approximate
index at least 10x faster than exact search at recall@10 >= 0.95. Issue 15: vqpool's 1-NN with
FAISS candidates in at most 0.6x the time of its chunked matmul (the two take turns).
"""

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vqpool.evaluate.knn import nearest_neighbours
from vqpool.neighbours import (
    import_faiss,
    make_index,
    normalized,
    recall_at,
    resolve_params,
    search,
)

K = 10
TARGET_SPEEDUP, TARGET_RECALL = 10.0, 0.95
TARGET_FAISS_PATH = 0.6  # vqpool's FAISS path over its matmul path


def clustered(count: int, dim: int, groups: int, clusters: int, rank: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` normalised vectors and their cluster, as the module docstring says."""
    group_centres = rng.standard_normal((groups, dim), dtype=np.float32)
    cluster_group = rng.integers(0, groups, clusters)
    centres = group_centres[cluster_group] + 0.6 * rng.standard_normal((clusters, dim), dtype=np.float32)
    basis = rng.standard_normal((rank, dim), dtype=np.float32) / np.sqrt(rank)
    labels = rng.integers(0, clusters, count)
    vectors = centres[labels]
    vectors += rng.standard_normal((count, rank), dtype=np.float32) @ (0.8 * basis)
    vectors += 0.3 * rng.standard_normal((count, dim), dtype=np.float32)
    return normalized(vectors), labels


CLOCK = "wall"  # set from --clock: which of the two clocks `timed` returns first


def timed(function: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """The result, and the median seconds over ``repeats`` calls on --clock and on the other."""
    return taking_turns([function], repeats)[0]


def taking_turns(functions: list[Callable[[], Any]], repeats: int) -> list[tuple[Any, float, float]]:
    """`timed` for each of ``functions``, called in turn ``repeats`` times: a change in the
    machine's load falls on all of them alike."""
    walls: list[list[float]] = [[] for _ in functions]
    cpus: list[list[float]] = [[] for _ in functions]
    results: list[Any] = [None for _ in functions]
    for _ in range(repeats):
        for number, function in enumerate(functions):
            wall, cpu = time.perf_counter(), time.process_time()
            results[number] = function()
            walls[number].append(time.perf_counter() - wall)
            cpus[number].append(time.process_time() - cpu)
    timings = []
    for result, wall_times, cpu_times in zip(results, walls, cpus, strict=True):
        wall, cpu = statistics.median(wall_times), statistics.median(cpu_times)
        timings.append((result, wall, cpu) if CLOCK == "wall" else (result, cpu, wall))
    return timings


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--rank", type=int, default=32, help="dimension of the within-cluster variation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    global CLOCK
    CLOCK = args.clock
    other = "cpu" if args.clock == "wall" else "wall"

    faiss = import_faiss()
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"machine: {os.cpu_count()} cores; at start: {uptime()}")
    print(f"threads: faiss {faiss.omp_get_max_threads()}, torch {torch.get_num_threads()}; "
          f"faiss {faiss.__version__}, torch {torch.__version__}")

    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    data, _ = clustered(args.vectors + args.queries, args.dim, args.groups, args.clusters,
                        args.rank, rng)
    base, queries = data[: args.vectors], data[args.vectors :]
    print(f"data: {args.vectors} x {args.dim} fp32 in {args.clusters} clusters of "
          f"{args.groups} groups, {args.queries} held-out queries, k={K} "
          f"(made in {time.perf_counter() - start:.1f} s)\n")
    none = np.full(len(queries), -1)  # held-out queries: no row of the index is the query itself

    rows: list[tuple[str, str, float, float, str, str]] = []  # name, build, search, cpu, recall, speed-up
    base_t, queries_t = torch.from_numpy(base), torch.from_numpy(queries)
    (knn_rows, knn_s, knn_cpu), (faiss_rows, nn_faiss_s, nn_faiss_cpu) = taking_turns(
        [lambda kind=kind: nearest_neighbours(base_t, queries_t, search=kind)
         for kind in ("matmul", "faiss")],
        args.repeats)

    (flat, flat_build, _) = timed(lambda: make_index(faiss, base, resolve_params("flat", len(base))), 1)
    (_, top1), flat1_s, flat1_cpu = timed(lambda: search(faiss, flat, queries, 1), args.repeats)
    (_, truth), flat_s, flat_cpu = timed(lambda: search(faiss, flat, queries, K), args.repeats)
    agree = float((top1[:, 0] == knn_rows.numpy()).mean())
    rows.append(("vqpool chunked matmul, 1-NN", "-", knn_s, knn_cpu, "exact", "-"))
    rows.append(("vqpool faiss candidates, 1-NN", "-", nn_faiss_s, nn_faiss_cpu, "exact",
                 f"{knn_s / nn_faiss_s:.2f}x vs matmul"))
    rows.append(("faiss IndexFlatIP, k=1", f"{flat_build:.2f}", flat1_s, flat1_cpu, "exact",
                 f"{knn_s / flat1_s:.2f}x vs matmul"))
    rows.append((f"faiss IndexFlatIP, k={K}", "", flat_s, flat_cpu, "exact",
                 f"{knn_s / flat_s:.2f}x vs matmul"))

    best: list[tuple[str, float, float]] = []
    for kind, sweep_name, sweep in (("ivf", "nprobe", (1, 2, 4, 8)), ("hnsw", "ef_search", (16, 32))):
        params = resolve_params(kind, len(base))
        default = getattr(params, sweep_name)
        values = sorted({*sweep, default, 2 * default})
        index, build_s, _ = timed(lambda params=params: make_index(faiss, base, params), 1)
        label = params.describe()
        for value in values:
            if kind == "ivf":
                index.nprobe = value
            else:
                index.hnsw.efSearch = value
            (_, found), search_s, search_cpu = timed(lambda index=index: search(faiss, index, queries, K),
                                                     args.repeats)
            recall = recall_at(found, truth, none, K)
            speedup = flat_s / search_s
            mark = " (default)" if value == default else ""
            rows.append((f"{kind} {sweep_name}={value}{mark}", f"{build_s:.2f}" if value == values[0]
                         else "", search_s, search_cpu, f"{recall:.4f}", f"{speedup:.1f}x"))
            if recall >= TARGET_RECALL:
                best.append((f"{kind} {sweep_name}={value}", speedup, recall))
        rows.append((f"  ({label})", "", float("nan"), float("nan"), "", ""))

    header = ("index", "build s", f"search s ({args.clock})", f"{other} s", "recall@10",
              "speed-up vs exact k=10")
    table = [header] + [(name, build, f"{s:.4f}" if s == s else "", f"{c:.3f}" if c == c else "",
                         recall, speed) for name, build, s, c, recall, speed in rows]
    widths = [max(len(str(row[c])) for row in table) for c in range(len(header))]
    for number, row in enumerate(table):
        print("  ".join(str(cell).ljust(w) if c == 0 else str(cell).rjust(w)
                        for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nsearch s: median {args.clock} time of {args.repeats} runs for all {args.queries} "
          f"queries ({other} time beside it; build s on the {args.clock} clock); 1-NN agreement "
          f"IndexFlatIP vs matmul: {agree:.4f}; vqpool faiss vs matmul: "
          f"{float((faiss_rows == knn_rows).double().mean()):.4f}")
    path_ratio = nn_faiss_s / knn_s
    print(f"target vqpool 1-NN: faiss path {nn_faiss_s:.3f} s / matmul path {knn_s:.3f} s = "
          f"{path_ratio:.2f} (at most {TARGET_FAISS_PATH}): "
          f"{'met' if path_ratio <= TARGET_FAISS_PATH else 'NOT met'}")
    exact_ok = flat1_s <= knn_s
    print(f"target exact: faiss k=1 {flat1_s:.3f} s vs matmul {knn_s:.3f} s -> "
          f"{knn_s / flat1_s:.2f}x: {'met' if exact_ok else 'NOT met'}")
    fast = [b for b in best if b[1] >= TARGET_SPEEDUP]
    if fast:
        name, speedup, recall = max(fast, key=lambda b: b[1])
        print(f"target approximate: {name}: {speedup:.1f}x faster at recall@10 {recall:.4f}: met")
    else:
        print(f"target approximate: no setting reached {TARGET_SPEEDUP:.0f}x at recall@10 >= "
              f"{TARGET_RECALL}: NOT met")
    print(f"at end: {uptime()}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
