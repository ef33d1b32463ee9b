"""What `vqpool demo` runs, without running it: the default is sized to a few minutes on two
busy cores, --full is the larger run, and flags override either."""

import pytest

from vqpool.cli import main
from vqpool.demo import DemoResult, DemoSettings


@pytest.fixture
def settings_of(monkeypatch, tmp_path):
    """Run the CLI with ``run_demo`` replaced: returns the settings it was given."""
    import vqpool.demo

    given = []

    def fake(out, *, corpus, root, settings):
        given.append(settings)
        return DemoResult(tmp_path / "r.jsonl", tmp_path / "report", 125.4)

    monkeypatch.setattr(vqpool.demo, "run_demo", fake)

    def run(*flags):
        assert main(["demo", "--out", str(tmp_path), *flags]) == 0
        return given[-1]

    return run


def test_default_and_full_runs(settings_of, capsys):
    default = settings_of()
    assert default == DemoSettings()
    assert (default.head_epochs, default.probe_batch_size, default.threads) == (6, 32, 1)
    assert "finished in 2 min 05 s (wall time)" in capsys.readouterr().out
    full = settings_of("--full")
    assert (full.head_epochs, full.probe_epochs, full.probe_batch_size) == (20, 20, 128)
    assert full.threads == default.threads  # the same tables on every machine
    assert settings_of("--full", "--head-epochs", "3", "--threads", "0") == DemoSettings.full(
        head_epochs=3, threads=0)

