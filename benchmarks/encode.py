"""What ``Encoder.encode`` costs, as ratios against baselines measured in the same run.

(a) ``Encoder.encode`` wall time over N FSDD files (read, resample, batch, forward, fp16,
    pool) against the bare model forward on the same batches with the audio already in
    memory. Target: at most 1.15, as for extract.
(b) the naive loop a user writes without vqpool: read, resample and forward one file at a
    time, then pool; ``encode`` should be faster.

The upstream is the random 4-layer, 256-wide wav2vec 2.0 of ``benchmarks/extract.py``.

    python benchmarks/encode.py                      # 300 utterances, 5 repeats, 1 thread
"""

import statistics
import tempfile
import time
from pathlib import Path

import torch

from extract import bare_forward, make_model, padded_batches, parse_arguments
from vqpool import Encoder, pool
from vqpool.audio import load_audio


def naive_loop(encoder: Encoder, files: list[Path]) -> float:
    """Seconds of one file at a time: read, resample, forward, pool."""
    upstream = encoder.upstream
    start = time.perf_counter()
    for path in files:
        wave = torch.from_numpy(load_audio(path, upstream.sample_rate))[None]
        frames, lengths, codes = upstream(wave, torch.tensor([wave.shape[1]]))
        pool(frames, lengths, codes, encoder.method)
    return time.perf_counter() - start


def timed_encode(encoder: Encoder, files: list[Path]) -> float:
    start = time.perf_counter()
    encoder.encode(files, progress=False)
    return time.perf_counter() - start


def main() -> None:
    args, files = parse_arguments(__doc__.split("\n")[0])
    rows = [{"id": f.stem, "path": str(f)} for f in files]
    audio_seconds = sum(load_audio(f, 8000).shape[0] for f in files) / 8000

    with tempfile.TemporaryDirectory() as tmp:
        encoder = Encoder(str(make_model(Path(tmp) / "model")), "vq-lp", batch_seconds=args.batch_seconds)
        batches = padded_batches(rows, encoder.upstream, args.batch_seconds)
        bare_forward(encoder.upstream, batches[:2])  # warm-up
        times: dict[str, list[float]] = {"forward": [], "encode": [], "naive": []}
        for _ in range(args.repeats):  # runs take turns, so each repeat's ratio compares neighbours
            times["forward"].append(bare_forward(encoder.upstream, batches))
            times["encode"].append(timed_encode(encoder, files))
            times["naive"].append(naive_loop(encoder, files))
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = {name: statistics.median(t / b for t, b in zip(values, times[base], strict=True))
             for (name, base), values in
             ((("encode", "forward"), times["encode"]), (("naive", "encode"), times["naive"]))}

    print(f"{len(files)} FSDD utterances ({audio_seconds:.0f} s of audio), random wav2vec2 "
          f"D={encoder.upstream.dim}, {len(batches)} batches of <= {args.batch_seconds:g} s, "
          f"{args.threads} thread(s), medians of {args.repeats}")
    print(f"{'measure':44} {'seconds':>9} {'baseline':>9} {'ratio':>7} {'target':>7}")
    print(f"{'(a) Encoder.encode vs bare forward':44} {median['encode']:9.3f} {median['forward']:9.3f} "
          f"{ratio['encode']:7.3f} {'<=1.15':>7}")
    print(f"{'(b) naive per-file loop vs Encoder.encode':44} {median['naive']:9.3f} {median['encode']:9.3f} "
          f"{ratio['naive']:7.3f} {'>1':>7}")
    print(f"encode: {len(files) / median['encode']:.0f} utterances/s, real-time factor "
          f"{median['encode'] / audio_seconds:.4f}")


if __name__ == "__main__":
    main()
