"""`vqpool report` from a hand-written results file: numbers, paper figures, newest-wins, bold, AVG, PNGs.

The expected numbers are typed in by hand (ours from the rows below, the paper's from its
Tables 1 and 2), not recomputed with the code under test.
"""

import csv
import json
import re
import shutil
import warnings
from pathlib import Path
from urllib.parse import unquote

import pytest

from vqpool.cli import main
from vqpool.errors import VqpoolError
from vqpool.report import build_tables, load_results, to_text, write_report

BASE = "facebook/wav2vec2-base"
LARGE_DIR = "/models/my-wav2vec2-large"  # a local copy: the paper name comes from paper_upstream
# The paper's corpus of each task (its README); other tasks run on a corpus of the same name.
CORPORA = {"kws": "speechcommands", "sid": "voxceleb1", "ic": "fluent", "er": "iemocap"}


def header(dim: int, num_layers: int) -> dict:
    """A store header as extract writes it: ``upstream`` is ``Upstream.describe()`` (abridged)."""
    return {"upstream": {"kind": "transformers", "dim": dim, "num_layers": num_layers}}


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
    corpus=None,
    store_header=None,
):
    return {
        "protocol": protocol,
        "method": method,
        "task": task,
        "corpus": corpus or CORPORA.get(task, task),
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
        "store_header": store_header or {},
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
    rows += [  # probe on a local large copy, declared as the paper's "large", of its size
        result(
            "probe",
            LARGE_DIR,
            "kws",
            method,
            value,
            std=std,
            paper="large",
            store_header=header(1024, 25),
        )
        for method, value, std in [("ap", 95.5, 0.25), ("vap", 97.0, 0.5)]
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
        "codes",
        "task",
        "variant",
        "method",
        "ours",
        "std",
        "ci95_low",
        "ci95_high",
        "paper",
        "store",
    ]
    assert rows["1nn", BASE, "kws", "vq-lp"] == {
        "protocol": "1nn",
        "upstream": BASE,
        "codes": "",  # these rows' store headers name no codes
        "task": "kws",
        "variant": "",
        "method": "vq-lp",
        "ours": "76.0",
        "std": "",
        "ci95_low": "",  # rows written before vqpool kept an interval still report
        "ci95_high": "",
        "paper": "74.48",
        "store": "/stores/x",
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


def test_unreadable_lines_are_skipped_one_clean_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    lines = [
        json.dumps(result("1nn", "u", "t", "sp", 1.0)).encode(),
        b'{"protocol": "1nn", "meth',  # an append cut short
        b"\xff\xfe binary",
        b"[1, 2]",
        json.dumps({**result("1nn", "u", "t", "ap", 1.0), "accuracy": None}).encode(),
        json.dumps(result("1nn", "u", "t", "ap", 1.0, stamp="yesterday")).encode(),
        b"",  # blank lines are not reported
        b"garbage",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Python warning reaches the user
        assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"vqpool report: skipped line 2 of {path}: not JSON (a write cut short?)"
    assert err[1] == f"vqpool report: skipped line 3 of {path}: not UTF-8 text"
    assert err[2] == f"vqpool report: skipped line 4 of {path}: not a result row (a JSON list)"
    assert err[3].startswith(f"vqpool report: skipped line 5 of {path}: result row: 'accuracy'")
    assert err[4] == (
        f"vqpool report: skipped line 6 of {path}: "
        "result 1nn/u/t/ap: timestamp 'yesterday' is not ISO-8601"
    )
    assert err[5:] == [f"vqpool report: skipped 1 more line(s) of {path}"]  # line 8
    report = (tmp_path / "out" / "report.md").read_text()
    assert "6 line(s) that are not result rows were skipped" in report


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "the file is empty"),
        (b"garbage\n\nmore garbage\n", "line 1: not JSON (a write cut short?) and 1 more line(s)"),
    ],
)
def test_a_file_without_rows_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes, why: str
) -> None:
    good, bad = tmp_path / "good.jsonl", tmp_path / "garbage.jsonl"
    good.write_text(json.dumps(result("1nn", "u", "t", "sp", 1.0)) + "\n")
    bad.write_bytes(content)
    assert main(["report", str(good), str(bad), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        f"vqpool report: error: {bad}: no result rows in it ({why})\n"
    )
    with pytest.raises(VqpoolError, match="no such results file"):
        load_results([tmp_path / "missing.jsonl"])


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


def one_table(tmp_path: Path, rows: list[dict]):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(map(json.dumps, rows)) + "\n")
    (table,) = build_tables(load_results([path]).rows)
    return table, to_text(table)


@pytest.mark.parametrize(
    ("upstream", "store_header", "corpus", "why"),
    [
        # QA's case: a random 32-dim model in a folder named like the paper's, on FSDD digits.
        (
            "/tmp/qa/wav2vec2-base",
            header(32, 3),
            "fsdd",
            "No paper figures: /tmp/qa/wav2vec2-base is named like the paper's base model, but its "
            "store header shows 32-dim frames from 3 hidden states, not 768-dim from 13.",
        ),
        (  # the right corpus does not make a small model comparable
            "/tmp/qa/wav2vec2-base",
            header(32, 3),
            "speechcommands",
            "store header shows 32-dim frames from 3 hidden states, not 768-dim from 13.",
        ),
        (  # a folder name without any header to back it
            "/tmp/qa/wav2vec2-large",
            {},
            "speechcommands",
            "the paper's large model, but its store header shows no model size, not 1024-dim",
        ),
        (  # the paper's model, but the task name on another corpus
            BASE,
            header(768, 13),
            "fsdd",
            "No paper figures: KWS ran on fsdd, not the paper's speechcommands.",
        ),
        (
            "logmel",
            {},
            "speechcommands",
            "No paper figures: logmel is not one of the paper's upstreams (facebook/wav2vec2-base,",
        ),
    ],
)
def test_no_paper_figures_unless_comparable(
    tmp_path: Path, upstream: str, store_header: dict, corpus: str, why: str
) -> None:
    rows = [
        result("1nn", upstream, "kws", "ap", 100.0, corpus=corpus, store_header=store_header),
        result("1nn", upstream, "kws", "vq-lp", 90.0, corpus=corpus, store_header=store_header),
    ]
    table, text = one_table(tmp_path, rows)
    assert not table.has_paper and all(cell.paper is None for cell in table.cells.values())
    assert text.splitlines()[3].split() == ["AP", "100.00"]  # ours alone, no "/ 58.44 (+41.56)"
    # The title names the paper's model only when it is that model, whatever the corpus.
    assert ("(paper: wav2vec 2.0 base)" in table.title) == (upstream == BASE)
    assert why in text


def test_paper_figures_for_comparable_cells_only(tmp_path: Path) -> None:
    # A local copy of the base model (its size in the header) on KWS, and on FSDD digits.
    local = "/models/wav2vec2-base"
    rows = [
        result("1nn", local, "kws", "ap", 60.0, store_header=header(768, 13)),
        result("1nn", local, "fsdd", "ap", 80.0, store_header=header(768, 13)),
    ]
    table, text = one_table(tmp_path, rows)
    assert table.title.endswith("/models/wav2vec2-base (paper: wav2vec 2.0 base)")
    lines = text.splitlines()
    assert lines[1].split() == ["Method", "KWS", "fsdd", "AVG*"]
    # KWS beside Table 1's 58.44; no paper figure for fsdd, so none for the AVG either.
    assert lines[3].split() == ["AP", "60.00", "/", "58.44", "(+1.56)", "80.00", "/", "-"] + [
        "70.00",
        "/",
        "-",
    ]
    assert "Paper figures left out: fsdd is not one of the paper's tasks." in text


def test_report_md_embeds_every_figure_by_relative_links(
    results_files: list[Path], tmp_path: Path
) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (out / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    for path in [
        out / "weights-a b.png",  # drawn before the report (a space: the link must be quoted)
        out / "tsne-test.png",
        out / "bars-1nn-gone.png",  # a bar chart of an earlier report: not shown
        out / "sub" / "x.png",
        elsewhere / "extra.png",
    ]:
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + path.name.encode())
    files = write_report(results_files, out, figures=[elsewhere / "extra.png", out / "sub/x.png"])
    assert files.figures == [
        out / "extra.png",  # copied in, so the folder is self-contained
        out / "sub" / "x.png",
        out / "tsne-test.png",
        out / "weights-a b.png",
    ]
    assert (out / "extra.png").read_bytes() == (elsewhere / "extra.png").read_bytes()
    report = files.markdown.read_text()
    assert "![Frame weights (paper Figure 3): weights-a b.png](weights-a%20b.png)" in report
    assert "![t-SNE of pooled vectors (paper Figure 2): tsne-test.png](tsne-test.png)" in report
    assert "bars-1nn-gone" not in report

    moved = tmp_path / "moved"
    shutil.move(out, moved)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (moved / "report.md").read_text())
    assert len(links) == len(files.bars) + 4
    assert all((moved / unquote(link)).is_file() for link in links)
