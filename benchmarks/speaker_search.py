"""precision@10 of `vqpool search` for a voice it never trained on: FSDD through GE2E.

Runs the command line as a user would: prepare FSDD with one speaker held out (`--split
speaker`), fit a k-means codebook on the training voices, extract GE2E frames and codes, build
one exact index per method over every recording, then query each recording of the held-out
speaker as an audio file (`vqpool search FILE -k 11 --json`). precision@10 is the share of its
10 nearest other recordings (the query itself, found first, is left out) spoken by the same
speaker, averaged over the held-out speaker's recordings; the digit's share is shown beside it.

    python benchmarks/speaker_search.py --work /tmp/fsdd-search            # all 3,000 recordings
    python benchmarks/speaker_search.py --work /tmp/fsdd-search --takes 10  # 600: a quicker look
"""

import argparse
import contextlib
import csv
import io
import json
import time
from pathlib import Path

from vqpool.cli import main as vqpool

REPO = Path(__file__).resolve().parents[1]


def run(*argv: str, shown: str | None = None) -> str:
    """``vqpool ARGV`` in this process (printed as ``shown`` if given); its stdout."""
    print("$ vqpool " + (shown or " ".join(argv)), flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = vqpool(list(argv))
    if code:
        raise SystemExit(f"vqpool {argv[0]} failed ({code})")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fsdd", type=Path, default=REPO.parent / "shared" / "data" / "fsdd")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--takes", type=int, default=50, help="recordings per speaker and digit (max 50)")
    parser.add_argument("--methods", default="ap,vq-lp")
    parser.add_argument("--layers", default="mean", help="GE2E layers (default: mean of the three)")
    parser.add_argument("--size", type=int, default=64, help="codebook size V (default 64)")
    args = parser.parse_args()
    start = time.perf_counter()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "fsdd.csv"
    if not manifest.exists():
        run("data", "prepare", "fsdd", "--root", str(args.fsdd), "--out", str(work / "all.csv"),
            "--split", "speaker")
        with open(work / "all.csv", newline="") as handle:
            every = list(csv.DictReader(handle))
        with open(manifest, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(every[0]))
            writer.writeheader()
            writer.writerows(r for r in every if int(r["id"].rsplit("_", 1)[1]) < args.takes)
    codebook, store = work / f"ge2e-{args.layers}.codebook", work / f"store-{args.layers}"
    if not codebook.exists():
        run("codebook", "fit", "--upstream", "ge2e", "--manifest", str(manifest), "--out",
            str(codebook), "--size", str(args.size), "--layer", args.layers)
    if not (store / "complete.json").exists():
        run("extract", "--upstream", "ge2e", "--layers", args.layers, "--codebook", str(codebook),
            "--manifest", str(manifest), "--out", str(store))

    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    held_out = [row for row in rows if row["split"] == "test"]
    base = manifest.parent
    queries = [str(Path(row["path"]) if Path(row["path"]).is_absolute() else base / row["path"])
               for row in held_out]
    speaker = held_out[0]["speaker"]
    print(f"\n{len(rows)} recordings; held-out speaker {speaker}: {len(held_out)} queries; "
          f"chance precision {(len(held_out) - 1) / (len(rows) - 1):.3f}\n")
    table = []
    for method in args.methods.split(","):
        index = work / f"{method}-{args.layers}.index"
        run("index", "build", "--store", str(store), "--method", method, "--out", str(index),
            "--overwrite")
        results = json.loads(run("search", "--index", str(index), *queries, "-k", "11", "--json",
                                 shown=f"search --index {index} <the {len(queries)} held-out "
                                 "recordings> -k 11 --json"))
        same_speaker, same_digit, itself = [], [], []
        for row, result in zip(held_out, results["results"], strict=True):
            hits = result["hits"]
            itself.append(hits[0]["id"] == row["id"])
            others = [hit for hit in hits if hit["id"] != row["id"]][:10]
            same_speaker.append(sum(hit["speaker"] == speaker for hit in others) / len(others))
            same_digit.append(sum(hit["label"] == row["label"] for hit in others) / len(others))
        table.append((method, sum(same_speaker) / len(same_speaker),
                      sum(same_digit) / len(same_digit), sum(itself) / len(itself)))
    print(f"\nGE2E frames (layers {args.layers}), k-means codes (2 x {args.size}), exact index, "
          f"{len(held_out)} queries of held-out speaker {speaker}")
    print(f"{'method':8}  {'P@10 speaker':>12}  {'P@10 digit':>10}  {'itself first':>12}")
    for method, speaker_p, digit_p, first in table:
        print(f"{method:8}  {speaker_p:12.3f}  {digit_p:10.3f}  {first:12.3f}")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
