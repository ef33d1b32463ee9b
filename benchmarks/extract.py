"""What extraction and the store cost, as ratios against baselines measured in the same run.

(a) ``extract()`` wall time over N FSDD utterances (read, resample, forward, fp16, write, fsync)
    against the bare model forward on the same batches with the audio already in memory;
    also without the background audio threads (``prefetch=0``). Target: at most 1.15.
(b) store bytes against one ``torch.save`` file per utterance holding fp32 frames and int64
    codes, the layout research scripts use. Target: at most 0.5.
(c) reading the whole store through ``store.batches`` (utterances/s, MB/s of fp32 frames
    delivered) against ``torch.load`` of those per-utterance files.

The upstream is a random wav2vec 2.0 (layer-norm, pads safely) small enough for a CPU but not
trivial; it is built with the real transformers class and loaded through ``load_upstream``.

    python benchmarks/extract.py                      # 300 utterances, 5 repeats, 1 thread
    python benchmarks/extract.py --num 1000 --threads 2 --repeats 3

Times are medians over --repeats runs taking turns (the extraction ratio is the median of each
repeat's ratio); one torch thread by default, because on a shared machine extra threads measure
the neighbours more than the code.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForPreTraining

from vqpool.audio import load_audio
from vqpool.extract import extract, plan
from vqpool.store import FeatureStore
from vqpool.upstream import load_upstream

FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


def make_model(directory: Path) -> Path:
    """A 4-layer, 256-wide wav2vec 2.0 with a 2 x 320 quantizer, randomly initialised."""
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
        conv_dim=(128,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
        num_codevector_groups=2, num_codevectors_per_group=320, codevector_dim=256,
        proj_codevector_dim=256, architectures=["Wav2Vec2ForPreTraining"],
    )
    Wav2Vec2ForPreTraining(config).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=True
                             ).save_pretrained(directory)
    return directory


def bare_forward(upstream, batches) -> float:
    """Seconds of upstream calls alone (audio already resampled and padded in memory)."""
    start = time.perf_counter()
    for waves, lengths in batches:
        output = upstream(waves, lengths)
        output.frames.cpu()
    return time.perf_counter() - start


def padded_batches(rows, upstream, batch_seconds: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    planned, _ = plan(rows, batch_seconds, pads_safely=upstream.pads_safely, progress=False)
    batches = []
    for batch in planned:
        waves = [torch.from_numpy(load_audio(item.row["path"], upstream.sample_rate)) for item in batch]
        lengths = torch.tensor([len(w) for w in waves])
        padded = torch.zeros(len(waves), int(lengths.max()))
        for row, wave in enumerate(waves):
            padded[row, : len(wave)] = wave
        batches.append((padded, lengths))
    return batches


def timed_extract(rows, upstream, out: Path, batch_seconds: float, prefetch: int) -> float:
    start = time.perf_counter()
    extract(rows, upstream, out, batch_seconds=batch_seconds, prefetch=prefetch, progress=False)
    return time.perf_counter() - start


def parse_arguments(description: str) -> tuple[argparse.Namespace, list[Path]]:
    """The options of the extraction benchmarks, and the FSDD files they read (spread evenly)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--num", type=int, default=300, help="FSDD utterances (default 300)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fsdd", type=Path, default=FSDD)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(args.fsdd.glob("*.wav"))
    return args, files[:: max(1, len(files) // args.num)][: args.num]


def main() -> None:
    args, files = parse_arguments(__doc__.split("\n")[0])
    rows = [{"id": f.stem, "path": str(f), "label": f.stem.split("_")[0], "split": "train"} for f in files]
    audio_seconds = sum(load_audio(f, 8000).shape[0] for f in files) / 8000

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        upstream = load_upstream(str(make_model(tmp / "model")))
        batches = padded_batches(rows, upstream, args.batch_seconds)
        bare_forward(upstream, batches[:2])  # warm-up
        times: dict[str, list[float]] = {"forward": [], "extract": [], "extract, no prefetch": []}
        for repeat in range(args.repeats):
            times["forward"].append(bare_forward(upstream, batches))
            times["extract"].append(timed_extract(rows, upstream, tmp / f"s{repeat}", args.batch_seconds, 2))
            times["extract, no prefetch"].append(
                timed_extract(rows, upstream, tmp / f"n{repeat}", args.batch_seconds, 0))
        median = {name: statistics.median(values) for name, values in times.items()}
        # Runs take turns, so each repeat's ratio compares neighbours in time: steadier on a
        # shared machine than a ratio of medians.
        overhead = {name: statistics.median(t / f for t, f in zip(values, times["forward"], strict=True))
                    for name, values in times.items()}

        store = FeatureStore(tmp / "s0")
        (tmp / "pt").mkdir()
        for i in range(len(store)):
            frames, codes, meta = store[i]
            torch.save({"frames": frames, "codes": codes}, tmp / "pt" / f"{meta['id']}.pt")
        store_bytes = sum(f.stat().st_size for f in (tmp / "s0").iterdir())
        files_bytes = sum(f.stat().st_size for f in (tmp / "pt").iterdir())

        read_store, read_files = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            delivered = sum(frames.numel() * 4 for frames, *_ in FeatureStore(tmp / "s0").batches())
            read_store.append(time.perf_counter() - start)
            start = time.perf_counter()
            for path in sorted((tmp / "pt").iterdir()):
                torch.load(path)
            read_files.append(time.perf_counter() - start)
        store_read, files_read = statistics.median(read_store), statistics.median(read_files)

    n = len(rows)
    print(f"{n} FSDD utterances ({audio_seconds:.0f} s of audio), random wav2vec2 D={upstream.dim}, "
          f"{len(batches)} batches of <= {args.batch_seconds:g} s, {args.threads} thread(s), "
          f"medians of {args.repeats}")
    print(f"{'measure':44} {'value':>16} {'baseline':>16} {'ratio':>7} {'target':>7}")
    rows_out = [
        ("(a) extract() wall s vs bare forward", median["extract"], median["forward"],
         overhead["extract"], "<=1.15"),
        ("(a) extract(prefetch=0) vs bare forward", median["extract, no prefetch"], median["forward"],
         overhead["extract, no prefetch"], ""),
        ("(b) store bytes vs torch.save fp32 files", store_bytes, files_bytes, store_bytes / files_bytes, "<=0.5"),
        ("(c) read s: store.batches vs torch.load", store_read, files_read, store_read / files_read, ""),
    ]
    for name, value, baseline, ratio, target in rows_out:
        print(f"{name:44} {value:16.4g} {baseline:16.4g} {ratio:7.3f} {target:>7}")
    print(f"extraction: {n / median['extract']:.0f} utterances/s, real-time factor "
          f"{median['extract'] / audio_seconds:.4f}")
    print(f"reading the split: {n / store_read:.0f} utterances/s, "
          f"{delivered / store_read / 1e6:.0f} MB/s of fp32 frames")


if __name__ == "__main__":
    main()
