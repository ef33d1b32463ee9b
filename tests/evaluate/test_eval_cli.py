"""`vqpool bench` and `vqpool probe` end to end on a real store: FSDD digits, log-mel + k-means."""

from pathlib import Path

import pytest
import torch

from vqpool.cli import main
from vqpool.evaluate.results import SCHEMA, read_results
from vqpool.extract import extract
from vqpool.pooling import METHODS
from vqpool.upstream import load_upstream
from vqpool.upstream.codebook import KMeansCodebook


@pytest.fixture(scope="module")
def stores(fsdd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Digits 0-2 of one speaker (8 train, 1 validation, 2 test recordings each), extracted with
    frames and codes, and pooled-only."""
    rows = [
        {"id": f"{digit}_george_{k}", "path": str(fsdd_root / f"{digit}_george_{k}.wav"),
         "label": str(digit), "split": "train" if k < 8 else "validation" if k < 9 else "test"}
        for digit in range(3) for k in range(11)
    ]
    # Random centroids quantize as well as fitted ones for this test, without k-means' time.
    generator = torch.Generator().manual_seed(0)
    centroids = [torch.randn(8, 40, generator=generator) for _ in range(2)]
    upstream = load_upstream("logmel", codebook=KMeansCodebook(centroids, {"upstream": "logmel",
                                                                           "layer": "mean"}))
    folder = tmp_path_factory.mktemp("eval")
    extract(rows, upstream, folder / "frames", corpus="fsdd", progress=False)
    extract(rows, upstream, folder / "pooled", corpus="fsdd", pooled_only=["ap", "vq-lp"],
            progress=False)
    return {"frames": folder / "frames", "pooled": folder / "pooled"}


@pytest.fixture(scope="module")
def store(stores: dict[str, Path]) -> Path:
    return stores["frames"]


def test_bench_every_method(store: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--store", str(store), "--semantics", "reference", "--a", "0.01"]) == 0
    table = capsys.readouterr().out
    rows = read_results(store / "results.jsonl")
    assert [row["method"] for row in rows] == list(METHODS)
    for row in rows:
        assert set(SCHEMA) <= set(row) and row["protocol"] == "1nn"
        assert row["upstream"] == "logmel" and row["corpus"] == "fsdd"
        assert row["num_train"] == 24 and row["num_test"] == 6
        assert row["settings"]["semantics"] == "reference" and row["settings"]["a"] == 0.01
        assert row["store"] == str(store) and row["store_header"]["upstream"] == "logmel"
        assert 0 <= row["accuracy"] <= 100
        assert f"{row['accuracy']:.2f}" in table


def test_probe_with_heads(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "probe.jsonl"
    argv = ["probe", "--store", str(store), "--methods", "ap,vq-lp,sap,vap", "--seeds", "2",
            "--epochs", "3", "--lr", "0.01", "--results", str(results)]
    assert main(argv) == 0
    assert "no defaults" in capsys.readouterr().err  # the FSDD task is not one of the paper's: generic settings
    rows = read_results(results)
    assert [row["method"] for row in rows] == ["ap", "vq-lp", "sap", "vap"]
    for row in rows:
        assert row["protocol"] == "probe" and len(row["per_seed"]) == 2 and row["std"] is not None
        assert row["settings"]["epochs"] == 3 and row["settings"]["batch_size"] == 512


def test_user_errors_are_one_line(store: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--store", str(store), "--methods", "ap", "--fold", "2",
                 "--results", "/dev/null"]) == 1
    assert "folds 1..1" in capsys.readouterr().err
    assert main(["probe", "--store", str(store), "--methods", "mean"]) == 1
    assert "--methods 'mean' is not a pooling method" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--a", "0"], "error: --a must be a positive number; got 0.0"),
    (["--smoothing", "-1"], "error: --smoothing must be a finite number >= 0"),
    (["--semantics", "papers"], "error: --semantics must be one of paper, reference; got 'papers'"),
    (["--chunk", "0"], "error: --chunk must be at least 1"),
    (["--search", "annoy"], "error: --search must be one of auto, faiss, matmul; got 'annoy'"),
    (["--device", "bogus"], "error: --device 'bogus' is not a torch device"),
    (["--option", "beta=1"], "error: beta is not a pooling option"),
    (["--option", "beta"], "error: --option 'beta': write NAME=VALUE"),
])
def test_library_errors_reach_the_cli_with_its_flags(store: Path, capsys: pytest.CaptureFixture,
                                                    argv: list[str], message: str) -> None:
    assert main(["bench", "--store", str(store), "--methods", "ap", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bench_a_pooled_only_store(stores: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    pooled = stores["pooled"]
    assert main(["bench", "--store", str(pooled), "--methods", "ap,vq-lp,whitening,softdecay"]) == 0
    rows = read_results(pooled / "results.jsonl")
    assert [row["method"] for row in rows] == ["ap", "vq-lp", "whitening", "softdecay"]
    assert main(["bench", "--store", str(pooled), "--methods", "vq-sif"]) == 1
    assert "vq-sif needs frames" in capsys.readouterr().err


def test_bench_all_on_a_pooled_only_store(stores: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "all.jsonl"
    assert main(["bench", "--store", str(stores["pooled"]), "--results", str(results)]) == 0
    assert [row["method"] for row in read_results(results)] == ["ap", "whitening", "softdecay", "vq-lp"]
    note = capsys.readouterr().err
    assert "leaving out sp, vq-squash-and" in note and "keeps pooled vectors only" in note


@pytest.mark.parametrize("argv", [
    ["bench", "--methods", ""],
    ["bench", "--device", "bogus"],
    ["bench", "--chunk", "0"],
    ["bench", "--a", "0"],
    ["probe", "--seeds", "0"],
    ["probe", "--epochs", "0"],
    ["probe", "--lr", "-1"],
    ["probe", "--batch-size", "0"],
])
def test_bad_options_are_one_line(store: Path, argv: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main([*argv[:1], "--store", str(store), *argv[1:], "--results", "/dev/null"]) == 1
    err = capsys.readouterr().err
    assert argv[1] in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
