"""The "frames x codes" tables and the code source in every table, from hand-written result rows.

Every expected cell, label and CSV field is typed in by hand from the rows below.
"""

import csv
import json

from vqpool.cli import main
from vqpool.code_labels import kmeans_name
from vqpool.evaluate.results import codes_label, format_table
from vqpool.report import build_frames_codes, frames_codes_text, write_report

GE2E = {"upstream": "ge2e", "layers": "mean", "num_codebooks": 2, "codebook_size": 64}
OWN = {**GE2E, "codes": "codebook", "codebook": "/demo/codebook-ge2e.pt"}
FROM_LOGMEL = {**GE2E, "codes": "kmeans", "codebook": None, "code_source": "kmeans(logmel) x2"}
FROM_CODEC = {**GE2E, "codes": "codec", "codebook": None, "codebook_size": 16,
              "code_source": "encodec x2"}
LOGMEL = {"upstream": "logmel", "layers": "mean", "codes": "codebook", "num_codebooks": 2,
          "codebook_size": 64, "codebook": "/demo/codebook-logmel.pt"}


def result(method, accuracy, summary, store, *, protocol="1nn", ci95=None, std=None, task="synth"):
    return {
        "protocol": protocol, "method": method, "task": task, "corpus": "synth",
        "upstream": summary["upstream"], "paper_upstream": None, "accuracy": accuracy,
        "std": std, "per_fold": [accuracy], "per_seed": None, "num_train": 100, "num_test": 20,
        "settings": {"semantics": "paper"}, "store": store, "store_header": summary,
        "versions": {"vqpool": "0.1.0"}, "seconds": 1.0, "timestamp": "2026-12-01T10:00:00+00:00",
        **({} if ci95 is None else {"ci95": list(ci95)}),
    }


ROWS = [
    result("ap", 95.0, OWN, "/demo/store-ge2e", ci95=(93.0, 97.0)),
    result("vq-lp", 98.0, OWN, "/demo/store-ge2e", ci95=(97.0, 99.0)),
    result("sp", 96.0, OWN, "/demo/store-ge2e"),
    result("ap", 95.0, FROM_LOGMEL, "/demo/store-ge2e-logmel", ci95=(93.0, 97.0)),
    result("vq-lp", 96.5, FROM_LOGMEL, "/demo/store-ge2e-logmel", ci95=(94.0, 98.0)),
    result("ap", 95.0, FROM_CODEC, "/demo/store-ge2e-codec"),
    result("vq-lp", 90.0, FROM_CODEC, "/demo/store-ge2e-codec"),
    result("ap", 78.0, LOGMEL, "/demo/store-logmel"),
    result("vq-lp", 74.0, LOGMEL, "/demo/store-logmel"),
    result("sp", 86.0, LOGMEL, "/demo/store-logmel"),
    # the probe ran on each upstream's own codes only: nothing to compare there
    result("ap", 98.0, OWN, "/demo/store-ge2e", protocol="probe", std=0.5),
    result("ap", 66.0, LOGMEL, "/demo/store-logmel", protocol="probe", std=1.5),
]


def test_code_labels_name_every_source():
    assert codes_label({"store_header": OWN}) == "kmeans(ge2e) x2"
    assert codes_label({"store_header": FROM_LOGMEL}) == "kmeans(logmel) x2"
    quantizer = {"upstream": "facebook/wav2vec2-base", "codes": "quantizer", "num_codebooks": 2}
    assert codes_label({"store_header": quantizer}) == "quantizer x2"
    assert codes_label({"store_header": {"upstream": "logmel", "codes": None}}) is None
    assert codes_label({"store_header": {}}) is None
    assert kmeans_name("/models/hubert-base-ls960/", ("6", "9")) == "kmeans(hubert-base-ls960 L6,9)"
    assert kmeans_name("logmel", ("mean",)) == "kmeans(logmel)"


def test_bench_table_names_the_upstreams_own_codes():
    title = format_table([ROWS[0]]).splitlines()[0]
    assert title == "1nn · task synth · frames: ge2e mean; codes: kmeans(ge2e) x2"


def test_frames_by_codes_per_protocol_and_task():
    (table,) = build_frames_codes(ROWS)  # the probe compares no codes: no table for it
    assert (table.protocol, table.task) == ("1nn", "synth")
    # sp ran with one code source per frames: not a comparison of codes
    assert table.lines == [("ap", "ge2e mean"), ("ap", "logmel mean"),
                           ("vq-lp", "ge2e mean"), ("vq-lp", "logmel mean")]
    assert table.codes == ["kmeans(ge2e) x2", "kmeans(logmel) x2", "encodec x2"]
    assert table.cells["vq-lp", "ge2e mean", "kmeans(logmel) x2"].ci95 == (94.0, 98.0)
    assert table.cells["vq-lp", "logmel mean", "kmeans(logmel) x2"].ours == 74.0
    assert ("vq-lp", "logmel mean", "kmeans(ge2e) x2") not in table.cells
    assert table.stores["ap", "ge2e mean", "encodec x2"] == "/demo/store-ge2e-codec"
    lines = frames_codes_text(table).splitlines()
    assert lines[0] == "Frames x codes, Unsupervised, 1-nearest-neighbour (paper Table 1): synth"
    assert lines[4].split() == ["AP", "logmel", "mean", "-", "78.00", "-"]
    assert lines[5].split() == ["VQ-LP", "ge2e", "mean", "98.00", "±", "1.00", "96.50", "±",
                                "2.00", "90.00"]


def test_report_writes_the_comparison_and_names_codes_everywhere(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Frames x codes, Unsupervised, 1-nearest-neighbour (paper Table 1): synth" in printed
    assert f"frames x codes: {out / 'frames_codes.csv'}" in printed
    markdown = (out / "report.md").read_text()
    # each row's best code source in bold; a row of one cell has nothing to beat
    assert "| VQ-LP | ge2e mean | **98.00** ± 1.00 | 96.50 ± 2.00 | 90.00 |" in markdown
    assert "| VQ-LP | logmel mean | - | 74.00 | - |" in markdown
    assert "| AP | ge2e mean | **95.00** ± 2.00 | **95.00** ± 2.00 | **95.00** |" in markdown
    assert "## Unsupervised, 1-nearest-neighbour (paper Table 1): frames: ge2e mean; codes: kmeans(logmel) x2" in markdown
    with (out / "frames_codes.csv").open() as file:
        cells = list(csv.DictReader(file))
    assert len(cells) == 8  # ap and vq-lp: three code sources on ge2e, one on logmel
    assert cells[0] == {"protocol": "1nn", "task": "synth", "method": "ap", "frames": "ge2e mean",
                        "codes": "kmeans(ge2e) x2", "ours": "95.0", "std": "", "ci95_low": "93.0",
                        "ci95_high": "97.0", "store": "/demo/store-ge2e"}
    with (out / "tables.csv").open() as file:
        tables = list(csv.DictReader(file))
    codes = {(row["protocol"], row["upstream"], row["codes"]) for row in tables}
    assert codes == {("1nn", "ge2e", "kmeans(ge2e) x2"), ("1nn", "ge2e", "kmeans(logmel) x2"),
                     ("1nn", "ge2e", "encodec x2"), ("1nn", "logmel", "kmeans(logmel) x2"),
                     ("probe", "ge2e", "kmeans(ge2e) x2"), ("probe", "logmel", "kmeans(logmel) x2")}
    assert (out / "bars-1nn-ge2e-codes-encodec-x2.png").is_file()

    # Without a comparison the report has none, and drops the one an earlier report left.
    files = write_report([_own_only(tmp_path)], out)
    assert files.frames_codes == [] and files.frames_codes_csv is None
    assert not (out / "frames_codes.csv").exists()
    assert "Frames x codes" not in (out / "report.md").read_text()


def _own_only(tmp_path):
    path = tmp_path / "own.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS if row["store"] in (
        "/demo/store-ge2e", "/demo/store-logmel")))
    return path


def test_one_code_source_on_two_stores_of_the_same_frames_gets_a_column_each():
    bigger = {**OWN, "codebook_size": 128, "codebook": "/demo/b/codebook.pt"}
    rows = [result("vq-lp", 98.0, OWN, "/demo/a"), result("vq-lp", 97.0, bigger, "/demo/b"),
            result("vq-lp", 96.0, FROM_LOGMEL, "/demo/c")]
    (table,) = build_frames_codes(rows)
    assert table.codes == ["kmeans(ge2e) x2 · a", "kmeans(ge2e) x2 · b", "kmeans(logmel) x2"]
    assert table.cells["vq-lp", "ge2e mean", "kmeans(ge2e) x2 · b"].ours == 97.0
