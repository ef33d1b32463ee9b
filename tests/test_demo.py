"""`vqpool demo` end to end on a reduced synthetic corpus: every table, plot and results row."""

import csv
import json

import pytest

from vqpool.cli import main
from vqpool.pooling import METHODS


# Two whole demo runs (eSpeak, k-means, two upstreams, every method, t-SNE, figures): 11 s on an
# idle 2-core machine, minutes on a busy one; fewer voices, words or epochs barely change that.
@pytest.mark.e2e
def test_demo_runs_end_to_end_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--words", "yes,no,up,down", "--voices", "6",
            "--probe-epochs", "3", "--head-epochs", "2", "--probe-seeds", "1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    printed = captured.out
    # stderr is no terminal here: progress still comes as lines, one per step and probe method
    assert "logmel: extracting frames and codes" in captured.err
    assert sum(line.startswith("probe ") for line in captured.err.splitlines()) == 12
    assert "vqpool demo: finished in " in printed and "(wall time)" in printed
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for upstream in ("logmel", "ge2e"):
        store = str(out / f"store-{upstream}")
        assert {r["method"] for r in rows if r["store"] == store and r["protocol"] == "1nn"} == set(METHODS)
        assert {r["method"] for r in rows if r["upstream"] == upstream and r["protocol"] == "probe"} == {
            "ap", "sp", "vq-lp", "sap", "asp", "vap"}
        assert f"(paper Table 1): frames: {upstream} mean; codes: kmeans({upstream}) x2" in printed
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 100.0
    report = out / "report"
    for name in ("report.md", "tables.csv", "frames_codes.csv", "weights-logmel.png",
                 "tsne-logmel.png", "tsne-ge2e.png", "bars-1nn-logmel-codes-kmeans-logmel-x2.png",
                 "bars-probe-ge2e-codes-kmeans-ge2e-x2.png"):
        assert (report / name).stat().st_size > 0, name
    assert (report / "weights-logmel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (report / "report.md").read_text()
    assert "(weights-logmel.png)" in markdown and "(tsne-ge2e.png)" in markdown

    # The codes comparison: GE2E's frames with its own k-means codes, log-mel's and a random
    # codec's (2 levels), each through the store header's code source, 1-NN only.
    compared = [r for r in rows if r["store"] != str(out / "store-logmel")
                and r["store"] != str(out / "store-ge2e")]
    assert {(r["method"], r["protocol"], r["store_header"]["code_source"]) for r in compared} == {
        (method, "1nn", source) for method in ("ap", "vq-lp", "vq-allsquash-and")
        for source in ("kmeans(logmel) x2", "encodec-random-untrained x2")}
    with (report / "frames_codes.csv").open() as file:
        cells = {(c["method"], c["frames"], c["codes"]) for c in csv.DictReader(file)}
    assert cells == {(method, frames, codes) for method in ("ap", "vq-lp", "vq-allsquash-and")
                     for frames, codes in (("ge2e mean", "kmeans(ge2e) x2"),
                                           ("ge2e mean", "kmeans(logmel) x2"),
                                           ("ge2e mean", "encodec-random-untrained x2"),
                                           ("logmel mean", "kmeans(logmel) x2"))}
    assert "## Frames x codes" in markdown and "random, untrained weights" in markdown
    assert "Frames x codes, Unsupervised, 1-nearest-neighbour (paper Table 1): synth" in printed
    assert "random, untrained weights" in printed

    # A second run reuses the corpus, codebooks and stores, and re-measures the results.
    corpus_mtime = (out / "corpus" / "manifest.csv").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "corpus" / "manifest.csv").stat().st_mtime_ns == corpus_mtime
    again = (out / "results.jsonl").read_text().splitlines()
    assert len(again) == len(rows)
    tables = [line for line in printed.splitlines() if "finished in" not in line]
    assert [line for line in capsys.readouterr().out.splitlines() if "finished in" not in line] == tables
