"""`CorpusStats.from_store` and `vqpool stats fit` on real stores: FSDD, log-mel + k-means codes."""

from dataclasses import fields
from pathlib import Path

import pytest
import torch

from vqpool.cli import main
from vqpool.data import write_manifest
from vqpool.errors import VqpoolError
from vqpool.extract import extract
from vqpool.pooling import CorpusStats, pool
from vqpool.store import FeatureStore
from vqpool.upstream import load_upstream
from vqpool.upstream.codebook import KMeansCodebook


@pytest.fixture(scope="module")
def made(fsdd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Six recordings of one speaker (four train, two test), extracted with frames and codes and
    pooled-only, plus the manifest and codebook a second extraction needs."""
    folder = tmp_path_factory.mktemp("stats")
    rows = [{"id": f"{digit}_george_{k}", "path": str(fsdd_root / f"{digit}_george_{k}.wav"),
             "label": str(digit), "split": "train" if k < 2 else "test"}
            for digit in range(2) for k in range(3)]
    write_manifest(rows, folder / "m.csv")
    # Random centroids quantize as well as fitted ones for this test, without k-means' time.
    generator = torch.Generator().manual_seed(0)
    centroids = [torch.randn(8, 40, generator=generator) for _ in range(2)]
    KMeansCodebook(centroids, {"upstream": "logmel", "layer": "mean"}).save(folder / "cb.pt")
    upstream = load_upstream("logmel", codebook=folder / "cb.pt")
    extract(rows, upstream, folder / "frames", progress=False)
    extract(rows, upstream, folder / "pooled", pooled_only=["ap"], progress=False)
    return {"folder": folder, "manifest": folder / "m.csv", "codebook": folder / "cb.pt",
            "frames": folder / "frames", "pooled": folder / "pooled"}


def assert_same(a: CorpusStats, b: CorpusStats) -> None:
    for field in fields(CorpusStats):
        x, y = getattr(a, field.name), getattr(b, field.name)
        assert (torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y), field.name


def test_stats_fit_equals_fit_over_the_training_batches(made: dict[str, Path], capsys) -> None:
    out = made["folder"] / "frames-stats.pt"
    assert main(["stats", "fit", "--store", str(made["frames"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    store = FeatureStore(made["frames"])
    train = store.indices("train")
    expected = CorpusStats.fit(((f, n, c) for f, n, c, _ in store.batches(train)),
                               codebook_size=store.codebook_size, progress=False)
    saved = CorpusStats.load(out)
    assert_same(saved, expected)
    assert saved.include == ("counts", "whitening", "softdecay") and saved.num_utterances == 4
    assert (f"({', '.join(saved.include)}) of 4 utterances, {saved.total_frames} frames "
            "(split 'train'") in printed
    # The API, on another split and on chosen rows; a split without rows is refused.
    assert_same(CorpusStats.from_store(store, "test", progress=False), CorpusStats.fit(
        ((f, n, c) for f, n, c, _ in store.batches(store.indices("test"))),
        codebook_size=store.codebook_size, progress=False))
    counts = CorpusStats.from_store(store, indices=train[:3], include=["counts"], progress=False)
    assert counts.include == ("counts",) and counts.num_utterances == 3
    with pytest.raises(VqpoolError, match="split 'validation' selects no rows"):
        CorpusStats.from_store(store, "validation")

    # extract --pooled-only takes the file for the methods that need corpus statistics.
    gp = made["folder"] / "gp"
    assert main(["extract", "--upstream", "logmel", "--codebook", str(made["codebook"]),
                 "--manifest", str(made["manifest"]), "--out", str(gp),
                 "--pooled-only", "vq-gp", "--stats", str(out)]) == 0
    pooled, everything = FeatureStore(gp).pooled("vq-gp"), store.indices()
    assert [m["id"] for m in FeatureStore(gp).meta] == [m["id"] for m in store.meta]  # same order
    (f, n, c, rows), = store.batches(everything)
    expected = torch.zeros_like(pooled)
    expected[rows] = pool(f, n, c, "vq-gp", saved)
    torch.testing.assert_close(pooled, expected, atol=1e-2, rtol=1e-2)  # fp16 frames in store


def test_stats_fit_on_a_pooled_only_store(made: dict[str, Path], capsys) -> None:
    out = made["folder"] / "pooled-stats.pt"
    assert main(["stats", "fit", "--store", str(made["pooled"]), "--out", str(out)]) == 0
    assert "of 4 utterances" in capsys.readouterr().out
    store = FeatureStore(made["pooled"])
    ap = store.pooled("ap")  # the stored AP vectors stand in for frames
    batches = ((ap[i], n, c) for _, n, c, i in store.batches(store.indices("train")))
    expected = CorpusStats.fit(batches, codebook_size=store.codebook_size, progress=False)
    saved = CorpusStats.load(out)
    assert_same(saved, expected)
    assert saved.include == ("counts", "whitening", "softdecay")
    # The codes are the frames store's; the AP vectors agree up to its fp16 frames.
    frames = CorpusStats.from_store(FeatureStore(made["frames"]), progress=False)
    assert torch.equal(saved.code_counts, frames.code_counts)
    assert saved.total_frames == frames.total_frames
    torch.testing.assert_close(saved.whitening_mean, frames.whitening_mean, atol=1e-2, rtol=1e-3)


def test_stats_fit_errors_are_one_line(made: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert main(["stats", "fit", "--store", str(tmp_path), "--out", str(tmp_path / "s.pt")]) == 1
    assert "not a feature store" in capsys.readouterr().err
    assert main(["stats", "fit", "--store", str(made["frames"]), "--split", "validation",
                 "--out", str(tmp_path / "s.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vqpool stats: error:") and "selects no rows" in err
    assert not (tmp_path / "s.pt").exists()
