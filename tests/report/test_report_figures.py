"""The report's figures: Figure 3 (frame weights) and Figure 2 (t-SNE) from arrays, an FSDD file and a store."""

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from vqpool.cli import main
from vqpool.errors import VqpoolError
from vqpool.report import plot_frame_weights, plot_tsne

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(path: Path) -> np.ndarray:
    """The image as [H, W, channels] after checking it is a real, non-trivial PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    image = imread(path)
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def test_frame_weights_one_panel_per_method(tmp_path: Path) -> None:
    rate, frame_rate = 16000, 50.0
    waveform = np.sin(2 * np.pi * 220 * np.arange(rate) / rate).astype(np.float32) * np.linspace(
        0, 1, rate
    )
    rng = np.random.default_rng(0)
    weights = {
        "ap": np.full(50, 1 / 50),
        "vq-lp": rng.dirichlet(np.ones(50)),
        "vq-squash-and": np.repeat(rng.dirichlet(np.ones(10)) / 5, 5),
    }
    one = read_png(
        plot_frame_weights(waveform, rate, {"ap": weights["ap"]}, frame_rate, tmp_path / "one.png")
    )
    three = read_png(
        plot_frame_weights(
            waveform, rate, weights, frame_rate, tmp_path / "three.png", title="synthetic"
        )
    )
    assert three.shape[1] == one.shape[1] and three.shape[0] > one.shape[0] + 200  # two more panels
    with pytest.raises(ValueError, match="'vq-lp' must be a non-empty 1-D array"):
        plot_frame_weights(
            waveform, rate, {"vq-lp": np.ones((2, 5))}, frame_rate, tmp_path / "bad.png"
        )


def test_tsne_panels_classes_and_subset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 20)
    centres = rng.normal(size=(3, 8)) * 5
    vectors = {
        method: centres[np.repeat(np.arange(3), 20)] + rng.normal(size=(60, 8))
        for method in ("ap", "vq-lp")
    }
    two = read_png(
        plot_tsne(vectors, labels, tmp_path / "two.png", classes=["a", "c"], max_points=30)
    )
    one = read_png(
        plot_tsne({"ap": vectors["ap"]}, list(labels), tmp_path / "one.png", max_points=20)
    )
    assert two.shape[1] > one.shape[1] * 1.5  # two panels side by side
    with pytest.raises(VqpoolError, match="classes not found among the labels: z"):
        plot_tsne(vectors, labels, tmp_path / "bad.png", classes=["a", "z"])
    with pytest.raises(ValueError, match=r"must be \[60, D\]"):
        plot_tsne({"ap": vectors["ap"][:10]}, labels, tmp_path / "bad.png")


def fsdd_files(root: Path, digits: str, per_digit: int) -> list[Path]:
    return [root / f"{digit}_jackson_{k}.wav" for digit in digits for k in range(per_digit)]


@pytest.fixture(scope="module")
def logmel_codebook_and_stats(
    fsdd_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A small k-means codebook for log-mel frames and corpus statistics of a few FSDD files."""
    from vqpool.audio import load_audio
    from vqpool.pooling import CorpusStats
    from vqpool.upstream import load_upstream
    from vqpool.upstream.codebook import fit_codebook

    folder = tmp_path_factory.mktemp("logmel")
    files = fsdd_files(fsdd_root, "0123", 3)
    codebook = fit_codebook(load_upstream("logmel"), files, codebook_size=16, progress=False).save(
        folder / "codebook.pt"
    )
    upstream = load_upstream("logmel", codebook=codebook)

    def batches():
        for path in files:
            waveform = torch.from_numpy(load_audio(path, upstream.sample_rate))
            yield upstream(waveform[None], torch.tensor([waveform.numel()]))

    stats = CorpusStats.fit(batches(), codebook_size=16, progress=False)
    stats.save(folder / "stats.pt")
    return codebook, folder / "stats.pt"


def test_cli_weights_of_an_fsdd_file(
    fsdd_root: Path,
    logmel_codebook_and_stats: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    from vqpool.evaluate.results import append_result, make_row

    codebook, stats = logmel_codebook_and_stats
    audio = fsdd_root / "7_theo_3.wav"
    args = ["report", "--weights", str(audio), "--upstream", "logmel", "--out", str(tmp_path)]
    results = tmp_path / "results.jsonl"
    append_result(
        results,
        make_row(
            protocol="1nn",
            method="ap",
            task="fsdd",
            header={"upstream": "logmel", "corpus": "fsdd"},
            store=None,
            per_fold=[50.0],
            per_seed=None,
            num_train=10,
            num_test=5,
            settings={},
            seconds=0.1,
        ),
    )
    # Results and a figure in one run: report.md is written last, so it shows the figure.
    assert main([*args, "--codebook", str(codebook), "--stats", str(stats), str(results)]) == 0
    out = capsys.readouterr().out
    png = tmp_path / "weights-7_theo_3.png"
    assert f"frame weights (vq-squash-and, vq-allsquash-or, vq-lp, vq-gp, vq-bp): {png}" in out
    assert "(weights-7_theo_3.png)" in (tmp_path / "report.md").read_text()
    five = read_png(png)

    # Without a codebook, log-mel has no codes: the vq methods are skipped with the reason.
    assert main([*args, "--methods", "ap,vq-lp,sp"]) == 0
    captured = capsys.readouterr()
    assert (
        "skipped vq-lp: needs codes" in captured.err
        and "skipped sp: needs frame weights (it is not a weighted average" in captured.err
    )
    assert "frame weights (ap)" in captured.out
    assert read_png(png).shape[0] < five.shape[0]
    assert main([*args, "--methods", "vq-lp"]) == 1
    assert "none of the methods can be drawn (vq-lp: needs codes" in capsys.readouterr().err


def test_cli_options_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", "--tsne", str(tmp_path), "--max-points", "0"]) == 1
    assert capsys.readouterr().err == (
        "vqpool report: error: --max-points is 0: t-SNE needs at least 4 points\n"
    )
    assert main(["report", "--tsne", str(tmp_path), "--semantics", "papers"]) == 1
    assert capsys.readouterr().err == (
        "vqpool report: error: --semantics must be one of paper, reference; got 'papers'\n"
    )
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "paper or reference, the reference implementation's" in capsys.readouterr().out


@pytest.mark.slow
def test_tsne_from_a_store(
    fsdd_root: Path,
    logmel_codebook_and_stats: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    from vqpool.extract import extract
    from vqpool.report import store_vectors
    from vqpool.upstream import load_upstream

    codebook, _ = logmel_codebook_and_stats
    upstream = load_upstream("logmel", codebook=codebook)
    rows = [
        {
            "id": path.stem,
            "path": str(path),
            "label": path.name[0],
            "split": "train" if k % 3 else "test",
            "speaker": "jackson",
        }
        for k, path in enumerate(fsdd_files(fsdd_root, "0123", 6))
    ]
    store = extract(rows, upstream, tmp_path / "store", corpus="fsdd", progress=False)

    # The vectors drawn are the store's test utterances of the chosen classes, AP = the frame mean.
    pooled = store_vectors(store.path, ["ap", "vq-lp"], classes=["0", "3"])
    expected = sorted(
        i
        for i, meta in enumerate(store.meta)
        if meta["split"] == "test" and meta["label"] in ("0", "3")
    )
    assert sorted(pooled.indices) == expected and len(expected) == 4
    assert pooled.labels == [store.meta[i]["label"] for i in pooled.indices]
    for row, index in enumerate(pooled.indices):
        np.testing.assert_allclose(
            pooled.vectors["ap"][row], store[index][0].mean(dim=0).numpy(), atol=1e-5
        )

    args = [
        "report",
        "--tsne",
        str(store.path),
        "--methods",
        "vq-lp,vq-gp,sap",
        "--classes",
        "0,1,3",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"t-SNE (vq-lp, vq-gp): {tmp_path / 'tsne-store-test.png'}" in captured.out
    assert "skipped sap: needs training (a supervised head" in captured.err
    read_png(tmp_path / "tsne-store-test.png")
    assert main([*args[:-4], "--classes", "0,9"]) == 1
    assert "class(es) 9 not in the test split" in capsys.readouterr().err

    # A pooled-only store: its own methods and whitening (fitted on its train split), not vq-gp.
    pooled_store = extract(
        rows,
        upstream,
        tmp_path / "pooled",
        corpus="fsdd",
        pooled_only=["ap", "vq-lp"],
        progress=False,
    )
    pooled = store_vectors(pooled_store.path, ["ap", "whitening", "vq-gp"])
    assert list(pooled.vectors) == ["ap", "whitening"] and "vq-gp" in pooled.skipped
    np.testing.assert_allclose(np.linalg.norm(pooled.vectors["whitening"], axis=1), 1.0, atol=1e-4)
