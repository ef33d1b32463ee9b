"""`vqpool report` from a hand-written results file: numbers, paper figures, newest-wins, bold, AVG, PNGs.

The expected numbers are typed in by hand (ours from the rows below, the paper's from its
Tables 1 and 2), not recomputed with the code under test.
"""

import csv
import json
from pathlib import Path

import pytest

from vqpool.cli import main
from vqpool.errors import VqpoolError
from vqpool.report import build_tables, load_results, to_text, write_report

BASE = "facebook/wav2vec2-base"
LARGE_DIR = "/models/my-wav2vec2-large"  # a local copy: the paper name comes from paper_upstream


def result(
    protocol,
    upstream,
    task,
    method,
    accuracy,
    *,
    std=None,
    paper=None,
    stamp="2026-11-20T10:00:00+00:00",
):
    return {
        "protocol": protocol,
        "method": method,
        "task": task,
        "corpus": task,
        "upstream": upstream,
        "paper_upstream": paper,
        "accuracy": accuracy,
        "std": std,
        "per_fold": [accuracy],
        "per_seed": None,
        "num_train": 120,
        "num_test": 30,
        "settings": {"semantics": "paper"},
        "store": "/stores/x",
        "store_header": {},
        "versions": {"vqpool": "0.1.0"},
        "seconds": 1.5,
        "timestamp": stamp,
    }


# 1-NN on wav2vec2-base over the paper's four tasks (KWS, SID, IC, ER).
BASE_1NN = {
    "ap": [60.1, 14.0, 27.0, 53.0],  # AVG 38.65 with the re-run SID below
    "vq-lp": [76.0, 15.0, 47.0, 56.0],  # AVG 48.5; best KWS, IC, ER, AVG
    "sp": [68.0, 16.0, 33.0, 52.0],  # AVG 42.25; best SID
}


@pytest.fixture
def results_files(tmp_path: Path) -> list[Path]:
    rows = [
        result("1nn", BASE, task, method, value)
        for method, values in BASE_1NN.items()
        for task, value in zip(["kws", "sid", "ic", "er"], values, strict=True)
    ]
    # A stale run of vq-lp/kws written *after* the newer one: the timestamp decides, not the order.
    rows.append(result("1nn", BASE, "kws", "vq-lp", 11.0, stamp="2026-01-01T00:00:00Z"))
    rows += [  # probe on a local large copy, declared as the paper's "large"
        result("probe", LARGE_DIR, "kws", "ap", 95.5, std=0.25, paper="large"),
        result("probe", LARGE_DIR, "kws", "vap", 97.0, std=0.5, paper="large"),
    ]
    rows += [  # a non-paper upstream on two corpora of our own; sap has only one of them
        result("1nn", "logmel", "fsdd", "ap", 40.0),
        result("1nn", "logmel", "synth", "ap", 30.0),
        result("1nn", "logmel", "fsdd", "vq-lp", 50.0),
        result("1nn", "logmel", "synth", "vq-lp", 20.0),
        result("probe", "logmel", "fsdd", "sap", 90.0, std=1.0),
    ]
    first = tmp_path / "bench.jsonl"
    first.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    # A second file re-runs ap/sid: naive timestamps are UTC, and this one is newer.
    second = tmp_path / "rerun.jsonl"
    second.write_text(
        json.dumps(result("1nn", BASE, "sid", "ap", 14.5, stamp="2026-11-21T09:00:00")) + "\n"
    )
    return [first, second]


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The Markdown tables of a report as lists of rows of stripped cells (header first)."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            if not set(cells[0]) <= {"-"}:
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def test_report_files_match_the_input(results_files: list[Path], tmp_path: Path) -> None:
    files = write_report(results_files, tmp_path / "out")
    assert [(t.protocol, t.upstream) for t in files.tables] == [
        ("1nn", BASE),
        ("1nn", "logmel"),
        ("probe", LARGE_DIR),
        ("probe", "logmel"),
    ]

    base, logmel, large, logmel_probe = markdown_tables(files.markdown.read_text())
    # Paper layout: methods in the paper's order, tasks KWS SID IC ER, then AVG.
    assert base[0] == ["Method", "KWS", "SID", "IC", "ER", "AVG"]
    assert [row[0] for row in base[1:]] == ["AP", "SP", "VQ-LP"]
    # Ours / paper (ours - paper); paper figures of Table 1, base. The newest rows won (14.5, 76.0).
    assert base[1] == [
        "AP",
        "60.10 / 58.44 (+1.66)",
        "14.50 / 13.85 (+0.65)",
        "27.00 / 26.71 (+0.29)",
        "53.00 / 53.44 (-0.44)",
        "38.65 / 38.11 (+0.54)",
    ]
    assert base[3][1] == "**76.00** / 74.48 (+1.52)"
    # Best per column in bold, exactly once per column: SP has the best SID, VQ-LP the rest.
    bold = {
        (row[0], base[0][i])
        for row in base[1:]
        for i, cell in enumerate(row)
        if cell.startswith("**")
    }
    assert bold == {
        ("SP", "SID"),
        ("VQ-LP", "KWS"),
        ("VQ-LP", "IC"),
        ("VQ-LP", "ER"),
        ("VQ-LP", "AVG"),
    }
    assert (
        base[3][5] == "**48.50** / 48.40 (+0.10)"
    )  # AVG: mean of 76, 15, 47, 56; paper's printed AVG

    # Not a paper upstream: no paper figures; AVG over two tasks is marked.
    assert logmel[0] == ["Method", "fsdd", "synth", "AVG*"]
    assert logmel[1:] == [
        ["AP", "40.00", "**30.00**", "**35.00**"],
        ["VQ-LP", "**50.00**", "20.00", "**35.00**"],
    ]

    # The paper's Table 2 (large) beside ours, with ± std; one task: no AVG column.
    assert large == [
        ["Method", "KWS"],
        ["AP", "95.50 ± 0.25 / 96.05 (-0.55)"],
        ["VAP", "**97.00** ± 0.50 / 97.14 (-0.14)"],
    ]
    assert logmel_probe == [["Method", "fsdd"], ["SAP", "**90.00** ± 1.00"]]

    report = files.markdown.read_text()
    assert "2 older row(s) were superseded" in report and "newest timestamp wins" in report
    assert "AVG* is the mean over 2 task(s) (fsdd, synth)" in report
    for bar in files.bars:
        assert f"]({bar.name})" in report

    # tables.csv, long format, full precision; results.json: the merged (winning) rows.
    rows = {
        (r["protocol"], r["upstream"], r["task"], r["method"]): r
        for r in csv.DictReader(files.csv.open())
    }
    assert list(next(iter(rows.values()))) == [
        "protocol",
        "upstream",
        "task",
        "method",
        "ours",
        "std",
        "paper",
    ]
    assert rows["1nn", BASE, "kws", "vq-lp"] == {
        "protocol": "1nn",
        "upstream": BASE,
        "task": "kws",
        "method": "vq-lp",
        "ours": "76.0",
        "std": "",
        "paper": "74.48",
    }
    assert float(rows["1nn", BASE, "avg", "ap"]["ours"]) == pytest.approx(38.65)
    assert float(rows["1nn", BASE, "avg", "ap"]["paper"]) == 38.11
    assert rows["probe", LARGE_DIR, "kws", "vap"]["std"] == "0.5"
    assert rows["1nn", "logmel", "fsdd", "ap"]["paper"] == ""
    merged = json.loads(files.json.read_text())
    assert len(merged) == 3 * 4 + 2 + 5
    assert {
        (r["task"], r["method"], r["accuracy"])
        for r in merged
        if r["method"] in ("ap", "vq-lp") and r["upstream"] == BASE
    } >= {("kws", "vq-lp", 76.0), ("sid", "ap", 14.5)}

    for png in files.bars:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_partial_avg_is_marked_and_left_out_of_the_best(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    rows = [
        result("1nn", "logmel", "fsdd", "ap", 40.0),
        result("1nn", "logmel", "synth", "ap", 30.0),
        result("1nn", "logmel", "fsdd", "vq-lp", 90.0),
    ]
    path.write_text("\n".join(map(json.dumps, rows)))
    (table,) = build_tables(load_results([path]).rows)
    text = to_text(table)
    lines = text.splitlines()
    assert lines[1].split() == ["Method", "fsdd", "synth", "AVG*"]
    assert lines[3].split() == ["AP", "40.00", "30.00", "35.00"]
    assert lines[4].split() == ["VQ-LP", "90.00", "-", "90.00", "†"]
    assert len({len(line) for line in lines[1:5]}) == 1  # aligned
    assert table.best("avg") == {"ap"}  # 90 covers one task of two: not comparable
    assert "† mean over only the tasks" in text


def test_paper_misprint_and_semantics_are_noted(tmp_path: Path) -> None:
    rows = [result("probe", BASE, "kws", "sp", 95.0), result("probe", BASE, "kws", "ap", 94.0)]
    rows[1]["settings"]["semantics"] = "reference"
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(map(json.dumps, rows)))
    report = write_report([path], tmp_path / "out").markdown.read_text()
    assert "**95.00** / 95.15 (-0.15)" in report  # Table 2, base, SP, KWS
    assert "Note: the paper's base SP row (Table 2) looks mis-printed" in report
    assert "Semantics: paper (sp); reference (ap)." in report


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            json.dumps(result("1nn", "u", "t", "ap", 1.0, stamp="yesterday")),
            "1nn/u/t/ap: timestamp 'yesterday' is not ISO-8601",
        ),
        (
            json.dumps({**result("1nn", "u", "t", "ap", 1.0), "accuracy": None}),
            "r.jsonl: line 2: .*accuracy",
        ),
    ],
)
def test_bad_results_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(result("1nn", "u", "t", "sp", 1.0)) + "\n" + line + "\n")
    with pytest.raises(VqpoolError, match=message):
        load_results([path])


def test_cli_prints_tables_and_paths(
    results_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "cli"
    assert main(["report", *map(str, results_files), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "Unsupervised, 1-nearest-neighbour (paper Table 1): facebook/wav2vec2-base (paper: wav2vec 2.0 base)"
        in printed
    )
    assert "76.00 / 74.48 (+1.52)" in printed and "**" not in printed
    assert "2 older result row(s) superseded" in printed
    assert f"report: {out / 'report.md'}" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "bars-1nn-facebook-wav2vec2-base.png",
        "bars-1nn-logmel.png",
        "bars-probe-logmel.png",
        "bars-probe-models-my-wav2vec2-large.png",
        "report.md",
        "results.json",
        "tables.csv",
    ]

    assert main(["report", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 1
    assert "missing.jsonl: no such results file" in capsys.readouterr().err
    assert main(["report"]) == 1
    assert "nothing to report" in capsys.readouterr().err
