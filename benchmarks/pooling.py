"""How much pooling costs: every method's fast path against AP, and against a per-utterance loop.

AP (one pass over the frames) is the floor a pooling method can reach; a vq-* method adds code
work that is small next to it. The loop is how a research script would do it: one utterance at
a time with itertools.groupby / Counter / union-find (tests/pooling/reference_impl.py, the same
code the tests check the fast path against). Codes come in runs of 1-6 equal codes per codebook
(`--longest-run 1`: a fresh code every frame, as fine codec levels behave),
as int32 with zero padding, as `FeatureStore.batches` gives them (int64 codes cost one more pass).

    python benchmarks/pooling.py               # B=256, D=768, L in 50 200 800, G x V in 2x320 8x1024 32x2048
    python benchmarks/pooling.py --threads 1 --clock cpu   # steadier on a shared machine
    python benchmarks/pooling.py --device cuda --repeats 20 --lengths 200 --shapes 32x2048

Times are medians over --repeats runs (the loop runs once: it is slow); AP is measured in the
same run, taking turns with the other methods, each call starting with flushed caches.
Targets (issue 2): with wav2vec 2.0's G = 2, V = 320, every vq-* method at most 1.5x AP under the
paper semantics and at most 3x AP under the reference semantics. Issue 11: with the many large
codebooks of neural codecs (G = 8, V = 1024: EnCodec at 6 kbps; G = 32, V = 2048: all of Mimi's
levels), every vq-* method at most 2x AP under either semantics.
"""

import argparse
import functools
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from vqpool.pooling import METHODS, SEMANTICS, CorpusStats, frame_weights, get_method, pool

# What the registry says of the built-in methods: which have frame weights, which use codes.
WEIGHTED_METHODS = [m for m in METHODS if get_method(m).weights is not None]
CODE_METHODS = [m for m in METHODS if get_method(m).needs_codes]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pooling"))
import reference_impl  # noqa: E402  (the literal loop lives with the tests that check against it)

TARGET = {"paper": 1.5, "reference": 3.0}
LARGE_TARGET = 2.0  # G > 2: codec-sized codebooks (issue 11)
FLUSH_BYTES = 128 * 2**20  # more than any last-level cache
# process CPU time does not count waiting for other users of a shared machine (one thread, CPU)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def runs_of_codes(
    batch: int, length: int, groups: int, values: int, generator: torch.Generator, longest_run: int = 6
) -> Tensor:
    """``[B, L, G]`` codes in runs of 1 to ``longest_run`` equal codes, independently per codebook
    (runs of 1: a code drawn afresh at every frame, as a codec's fine levels behave)."""
    run_ends = torch.randint(1, longest_run + 1, (batch, groups, length), generator=generator).cumsum(-1)
    run = torch.searchsorted(
        run_ends, torch.arange(length).expand(batch, groups, -1).contiguous(), right=True
    )
    run_codes = torch.randint(0, values, (batch, groups, length), generator=generator)
    return run_codes.gather(-1, run).transpose(1, 2).contiguous()


def random_batch(
    batch: int, length: int, dim: int, groups: int, values: int, generator: torch.Generator,
    code_dtype: torch.dtype = torch.int32, longest_run: int = 6,
):
    """Frames, lengths between L/2 and L (the longest exactly L), codes (int32 by default, as
    a store's batches give them); padding is 0."""
    frames = torch.randn(batch, length, dim, generator=generator)
    lengths = torch.randint(length // 2 + 1, length + 1, (batch,), generator=generator)
    lengths[0] = length
    padding = torch.arange(length)[None] >= lengths[:, None]
    codes = runs_of_codes(batch, length, groups, values, generator, longest_run)
    codes = codes.masked_fill(padding[..., None], 0).to(code_dtype)
    return frames.masked_fill(padding[..., None], 0), lengths, codes


def shape_arg(text: str) -> tuple[int, int]:
    """``"32x2048"`` -> ``(32, 2048)``: codebooks G and codebook size V."""
    try:
        groups, values = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected GxV, e.g. 8x1024") from None
    return groups, values


def median_seconds(
    functions: dict[str, Callable[[], object]],
    device: torch.device,
    repeats: int,
    *,
    warm: bool,
    now: Callable[[], float],
) -> dict[str, float]:
    """Median wall time of each function. The functions take turns, so that load from other
    processes on a shared machine hits them all alike, and each starts with the caches flushed
    (unless ``warm``), as when frames arrive fresh from a model or a store; else a function
    running after a small one finds the frames still cached."""
    flush = torch.ones(FLUSH_BYTES // 4, device=device)

    def once(function: Callable[[], object]) -> float:
        if not warm:
            flush.sum()  # reads evict clean: writes would leave dirty lines for the timed call
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = now()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return now() - start

    times: dict[str, list[float]] = {name: [] for name in functions}
    for repeat in range(repeats + 1):
        for name, function in functions.items():
            seconds = once(function)
            if repeat:  # the first round warms up
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def loop_pool(frames, lengths, codes, method, semantics, corpus) -> Tensor:
    """One utterance at a time, as a research script would."""
    pooled = []
    for b, n in enumerate(lengths.tolist()):
        tuples = [tuple(q) for q in codes[b, :n].tolist()]
        w = torch.tensor(
            reference_impl.weights(method, tuples, semantics, corpus), device=frames.device
        )
        pooled.append(w @ frames[b, :n].float())
    return torch.stack(pooled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--repeats", type=int, default=7, help="timed runs per measurement (median)"
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 200, 800], help="padded L")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--shapes", type=shape_arg, nargs="+", default=[(2, 320), (8, 1024), (32, 2048)],
                        metavar="GxV", help="codebooks G x codebook size V (default 2x320 8x1024 32x2048)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--code-dtype", choices=("int32", "int64"), default="int32",
                        help="dtype of the codes passed to pool (stores give int32)")
    parser.add_argument("--longest-run", type=int, default=6,
                        help="codes come in runs of 1 to this many equal codes (1: a fresh code every frame)")
    parser.add_argument("--no-loop", action="store_true", help="skip the slow per-utterance loops")
    parser.add_argument(
        "--warm", action="store_true", help="do not flush the caches before each call"
    )
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="cpu: process CPU time (steadier on a shared machine)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    now = CLOCKS[args.clock]
    generator = torch.Generator().manual_seed(0)
    print(
        f"B={args.batch} D={args.dim} device={device} "
        f"threads={torch.get_num_threads()} codes={args.code_dtype} runs=1-{args.longest_run} repeats={args.repeats} caches={'warm' if args.warm else 'flushed'} clock={args.clock} "
        f"torch={torch.__version__}"
    )
    header = f"{'GxV':>7} {'L':>5} {'semantics':<9} {'method':<17} {'pool ms':>9} {'weights ms':>10} {'loop ms':>10} {'pool/AP':>8} {'loop/pool':>9}"
    print(header)
    print("-" * len(header))
    misses = []
    for (groups, values), length in itertools.product(args.shapes, args.lengths):
        shape = (args.batch, length, args.dim, groups, values)
        train_frames, train_lengths, train_codes = random_batch(
            *shape, generator, longest_run=args.longest_run)
        stats = CorpusStats.fit(
            [(train_frames, train_lengths, train_codes)], codebook_size=values, progress=False
        )
        corpus = reference_impl.Corpus(
            [
                tuple(q)
                for b, n in enumerate(train_lengths.tolist())
                for q in train_codes[b, :n].tolist()
            ]
        )
        frames, lengths, codes = (
            x.to(device)
            for x in random_batch(*shape, generator, getattr(torch, args.code_dtype), args.longest_run))
        for semantics in SEMANTICS:
            options = dict(stats=stats, semantics=semantics)
            functions = {
                ("pool", method): functools.partial(pool, frames, lengths, codes, method, **options)
                for method in METHODS
            }
            functions |= {
                ("weights", method): functools.partial(
                    frame_weights, lengths, codes, method, **options
                )
                for method in WEIGHTED_METHODS
            }
            times = median_seconds(functions, device, args.repeats, warm=args.warm, now=now)
            ap = times["pool", "ap"]
            for method in METHODS:
                fast = times["pool", method]
                weights = (
                    f"{times['weights', method] * 1e3:.2f}" if method in WEIGHTED_METHODS else ""
                )
                loop = loop_ratio = mark = ""
                if method in CODE_METHODS and not args.no_loop:
                    start = now()
                    loop_pool(frames, lengths, codes, method, semantics, corpus)
                    seconds = now() - start
                    loop, loop_ratio = f"{seconds * 1e3:.1f}", f"{seconds / fast:.1f}"
                target = TARGET[semantics] if groups <= 2 else LARGE_TARGET
                if method in CODE_METHODS and fast / ap > target:
                    mark = f"  > {target}x AP"
                    misses.append(f"{groups}x{values} L={length} {semantics} {method}: {fast / ap:.2f}x AP")
                print(
                    f"{groups}x{values:<{6 - len(str(groups))}} {length:>5} {semantics:<9} {method:<17} {fast * 1e3:9.2f} {weights:>10} {loop:>10} "
                    f"{fast / ap:8.2f} {loop_ratio:>9}{mark}"
                )
    print("targets met" if not misses else "targets missed:\n  " + "\n  ".join(misses))


if __name__ == "__main__":
    main()
