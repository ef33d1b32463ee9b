"""Results never vanish silently: only a rerun of the same store and settings supersedes a row;
other stores of one upstream and task are shown side by side, named; a figure drawn into a
report's folder updates its report.md; a report's own results.json is refused with the reason."""

import csv
import json
from pathlib import Path

from vqpool.cli import main
from vqpool.report import build_tables, load_results, to_text


def row(method, accuracy, *, store, settings=None, stamp="2026-11-20T10:00:00Z", task="fsdd"):
    return {
        "protocol": "1nn", "method": method, "task": task, "corpus": task, "upstream": "ge2e",
        "paper_upstream": None, "accuracy": accuracy, "std": None, "per_fold": [accuracy],
        "per_seed": None, "num_train": 100, "num_test": 40,
        "settings": {"semantics": "paper", "device": "cpu", **(settings or {})}, "store": store,
        "store_header": {}, "versions": {}, "seconds": 1.0, "timestamp": stamp,
        "ci95": [accuracy - 5, min(100.0, accuracy + 4)],
    }


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_two_stores_of_one_upstream_and_task_are_both_shown_named(tmp_path, capsys):
    a = write(tmp_path / "a.jsonl", [row(m, 80.0 + i, store="stores/fsdd-cb64")
                                     for i, m in enumerate(["ap", "vq-lp", "sp", "vq-gp", "vq-bp"])])
    b = write(tmp_path / "b.jsonl", [row(m, 60.0 + i, store="stores/fsdd-cb128",
                                         stamp="2026-11-21T10:00:00Z")
                                     for i, m in enumerate(["ap", "vq-lp", "sp", "vq-gp", "vq-bp"])])
    results = load_results([a, b])
    assert len(results.rows) == 10 and not results.superseded
    (table,) = build_tables(results.rows)
    text = to_text(table)
    assert "fsdd · fsdd-cb64" in text and "fsdd · fsdd-cb128" in text
    assert "80.00" in text and "60.00" in text and "AVG" not in text  # no mean of one task twice

    assert main(["report", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "superseded" not in printed and "fsdd · fsdd-cb128" in printed
    report = (tmp_path / "out" / "report.md").read_text()
    assert "store stores/fsdd-cb64" in report and "store stores/fsdd-cb128" in report
    columns = {(r["variant"], r["method"]): r for r in csv.DictReader(
        (tmp_path / "out" / "tables.csv").open())}
    assert columns["fsdd-cb128", "ap"]["store"] == "stores/fsdd-cb128"
    assert float(columns["fsdd-cb64", "ap"]["ci95_low"]) == 75.0


def test_only_a_rerun_of_the_same_store_and_settings_supersedes(tmp_path, capsys):
    first = [row("ap", 50.0, store="s"), row("vq-lp", 55.0, store="s")]
    rerun = [row("ap", 52.0, store="s", stamp="2026-11-22T00:00:00Z",
                 settings={"device": "cuda"})]  # where it ran is no setting
    other = [row("vq-lp", 65.0, store="s", settings={"semantics": "reference"})]
    path = write(tmp_path / "r.jsonl", first + rerun + other)
    results = load_results([path])
    assert [r["accuracy"] for r in results.superseded] == [50.0]
    (table,) = build_tables(results.rows)
    text = to_text(table)
    # vq-lp ran with two semantics on one store: a column for each, named by the setting
    assert "fsdd · semantics=paper" in text and "fsdd · semantics=reference" in text
    assert "52.00" in text and "65.00" in text and "55.00" in text
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    assert ("1 older result row(s) superseded by newer runs of the same store and settings"
            in capsys.readouterr().out)


def test_methods_run_with_different_settings_share_one_column(tmp_path):
    # The demo trains the heads for fewer epochs than the fixed methods: one run per method.
    rows = [row("ap", 90.0, store="s", settings={"epochs": 20}),
            row("sap", 85.0, store="s", settings={"epochs": 6})]
    (table,) = build_tables(load_results([write(tmp_path / "r.jsonl", rows)]).rows)
    assert table.columns() == ["fsdd"] and not table.has_variants


def test_a_figure_drawn_into_a_report_folder_updates_report_md(fsdd_root, tmp_path, capsys):
    path = write(tmp_path / "r.jsonl", [row("ap", 50.0, store="s")])
    out = tmp_path / "out"
    assert main(["report", str(path), "--out", str(out)]) == 0
    assert "weights-" not in (out / "report.md").read_text()
    audio = fsdd_root / "3_jackson_0.wav"
    assert main(["report", "--weights", str(audio), "--upstream", "logmel", "--methods", "ap",
                 "--out", str(out)]) == 0
    assert f"report: {out / 'report.md'} (updated" in capsys.readouterr().out
    markdown = (out / "report.md").read_text()
    assert "(weights-3_jackson_0.png)" in markdown and "50.00" in markdown


def test_report_on_its_own_results_json_says_what_it_reads(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", str(write(tmp_path / "r.jsonl", [row("ap", 50.0, store="s")])),
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out / "results.json"), "--out", str(tmp_path / "again")]) == 1
    error = capsys.readouterr().err
    assert "a JSON array (a report's own results.json?), not a results file" in error
    assert "STORE/results.jsonl" in error
