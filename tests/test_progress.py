"""Long work shows progress: a bar on a terminal, a log line now and then in a log file."""

import io
import logging
import subprocess
import sys

import pytest
from tqdm import tqdm

from vqpool import progress
from vqpool.cli import main
from vqpool.manifest import write_manifest
from vqpool.progress import LoggedProgress, NoProgress, amount, duration, progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_a_line_every_interval_then_a_closing_one(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="vqpool.progress")
    with LoggedProgress(120, "extracting", "utt", every=30, clock=clock) as bar:
        for _ in range(12):  # 10 utterances every 10 s: lines at 30, 60, 90 and 120 s
            clock.now += 10
            bar.update(10)
        bar.set_postfix_str("RTF 0.0100")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "extracting: 30/120 utt (25%), 30 s elapsed, about 1 min 30 s left",
        "extracting: 60/120 utt (50%), 1 min 00 s elapsed, about 1 min 00 s left",
        "extracting: 90/120 utt (75%), 1 min 30 s elapsed, about 30 s left",
        "extracting: 120/120 utt (100%), 2 min 00 s elapsed, about 0 s left",
        "extracting: 120/120 utt (100%), 2 min 00 s elapsed, done, RTF 0.0100",
    ]


def test_work_shorter_than_the_interval_leaves_the_log_alone(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="vqpool.progress")
    with LoggedProgress(None, "pooling", "utt", every=30, clock=clock) as bar:
        clock.now += 29
        bar.update(7)
    assert caplog.records == []


def test_an_error_leaves_no_closing_line(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="vqpool.progress")
    with pytest.raises(RuntimeError), LoggedProgress(5_000_000, "verifying", "B", every=1,
                                                     clock=clock) as bar:
        clock.now += 1
        bar.update(2_500_000)
        raise RuntimeError("damaged")
    assert [r.getMessage() for r in caplog.records] == [
        "verifying: 2.50MB of 5.00MB (50%), 1 s elapsed, about 1 s left"]


def test_amounts_and_durations():
    assert amount(1200, 3000, "utt") == "1200/3000 utt"
    assert amount(7, None, "epoch") == "7 epoch"
    assert amount(1_234_567, 4_800_000_000, "B") == "1.23MB of 4.80GB"
    assert [duration(s) for s in (0.4, 42.4, 60, 125.6, 3725)] == [
        "0 s", "42 s", "1 min 00 s", "2 min 06 s", "1 h 02 min"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_form_follows_stderr(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert isinstance(progress_bar(total=3, desc="x"), LoggedProgress)
    assert isinstance(progress_bar(False, total=3, desc="x"), NoProgress)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress_bar(total=3, desc="encoding", unit="utt") as bar:
        assert isinstance(bar, tqdm)
        bar.update(3)
    assert terminal.getvalue().startswith("\rencoding:   0%")  # a bar, redrawn in place


def test_an_extraction_into_a_log_shows_progress_lines_not_a_bar(fsdd_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)  # every update is due
    files = sorted(fsdd_root.glob("*.wav"))[:3]
    write_manifest([{"id": f.stem, "path": str(f), "label": f.stem[0], "split": "train"}
                    for f in files], tmp_path / "m.csv")
    assert main(["extract", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "s"),
                 "--upstream", "logmel", "--no-codes"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert any(line.startswith("extracting: 3/3 utt (100%)") and ", done, RTF " in line
               for line in lines), err
    assert any(line.startswith("reading audio headers: ") for line in lines), err


def test_a_logged_cli_run_has_no_carriage_returns(fsdd_root, tmp_path):
    """Run as a user's job would, stderr to a file: transformers' weight-loading bar and
    vqpool's own progress both stay out of the way of a readable log."""
    from tiny_models import make_hubert

    model = make_hubert(tmp_path / "hubert")
    files = sorted(fsdd_root.glob("*.wav"))[:2]
    write_manifest([{"id": f.stem, "path": str(f), "label": f.stem[0], "split": "train"}
                    for f in files], tmp_path / "m.csv")
    log_file = tmp_path / "extract.log"
    with open(log_file, "w") as stderr:
        subprocess.run([sys.executable, "-m", "vqpool", "extract", "--upstream", str(model),
                        "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "s"),
                        "--no-codes"], stderr=stderr, check=True)
    text = log_file.read_text()
    assert "\r" not in text and "Loading weights" not in text, text
