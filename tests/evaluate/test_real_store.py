"""Both protocols on a real FeatureStore (FSDD digits through the log-mel upstream, written to a
temp folder by ``extract``), checked against expectations computed here from what the store
gives back, not against the evaluation code's own helpers.

Only public names are used: ``extract``, ``vqpool.FeatureStore``, ``run_bench``, ``run_probe``
and ``vqpool.pool``. The in-memory stand-in (memstore.py) covers the evaluation logic in detail; these
tests cover what it cannot: store order (longest first, not manifest order), fp16 frames,
int16 codes, the index's metadata and a pooled-only store's vectors.
"""

from pathlib import Path

import pytest
import torch

import vqpool
from vqpool import FeatureStore
from vqpool.evaluate import run_bench, run_probe
from vqpool.extract import extract
from vqpool.upstream import load_upstream
from vqpool.upstream.codebook import KMeansCodebook

DIGITS = "0123"
SPEAKERS = ("george", "jackson", "lucas")
SPLIT_OF_TAKE = ["train"] * 5 + ["validation"] + ["test"] * 2  # takes 0-7 of each digit


@pytest.fixture(scope="module")
def stores(fsdd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, FeatureStore]:
    """4 digits x 3 speakers x 8 takes (60 train, 12 validation, 24 test), with frames and codes,
    and pooled-only (ap, vq-lp)."""
    rows = [
        {"id": f"{digit}_{speaker}_{take}", "path": str(fsdd_root / f"{digit}_{speaker}_{take}.wav"),
         "label": digit, "split": split, "speaker": speaker}
        for digit in DIGITS for speaker in SPEAKERS for take, split in enumerate(SPLIT_OF_TAKE)
    ]
    # Random centroids (two codebooks of 8, each on 40 of the 80 bands) quantize as well as
    # fitted ones here, without k-means' time.
    generator = torch.Generator().manual_seed(0)
    centroids = [torch.randn(8, 40, generator=generator) for _ in range(2)]
    upstream = load_upstream(
        "logmel", codebook=KMeansCodebook(centroids, {"upstream": "logmel", "layer": "mean"})
    )
    folder = tmp_path_factory.mktemp("real-store")
    frames = extract(rows, upstream, folder / "frames", corpus="fsdd", progress=False)
    pooled = extract(rows, upstream, folder / "pooled", corpus="fsdd", pooled_only=["ap", "vq-lp"],
                     progress=False)
    return {"frames": FeatureStore(frames.path), "pooled": FeatureStore(pooled.path)}


def split_rows(store: FeatureStore) -> dict[str, list[int]]:
    return {split: store.indices(split) for split in ("train", "validation", "test")}


def one_nn(vectors: torch.Tensor, labels: list[str], train: list[int], test: list[int]) -> float:
    """Cosine 1-NN accuracy (percent) of ``test`` against ``train``, written out plainly."""
    unit = torch.nn.functional.normalize(vectors.double(), dim=1)
    nearest = (unit[test] @ unit[train].T).argmax(dim=1)
    hits = sum(labels[test[k]] == labels[train[int(j)]] for k, j in enumerate(nearest))
    return 100.0 * hits / len(test)


def test_store_order_is_not_the_manifest_order(stores: dict[str, FeatureStore]) -> None:
    """Otherwise the tests below could not tell a store position from a manifest row."""
    store = stores["frames"]
    ids = [meta["id"] for meta in store.meta]
    assert len(ids) == 96 and ids != sorted(ids) and ids != [
        f"{d}_{s}_{t}" for d in DIGITS for s in SPEAKERS for t in range(8)]
    assert stores["pooled"].pooled_methods == ("ap", "vq-lp")


def test_bench_on_a_real_store_matches_1nn_on_its_frames(stores: dict[str, FeatureStore]) -> None:
    store = stores["frames"]
    split = split_rows(store)
    labels = [meta["label"] for meta in store.meta]
    items = [store[i] for i in range(len(store))]
    lengths = [len(frames) for frames, _, _ in items]
    assert lengths == sorted(lengths, reverse=True)
    # Each utterance pooled alone from what the store gives back: AP is the frame mean, and
    # vq-lp needs only the utterance's own frames and codes.
    expected_vectors = {
        "ap": torch.stack([frames.mean(0) for frames, _, _ in items]),
        "vq-lp": torch.cat([vqpool.pool(frames[None], torch.tensor([len(frames)]), codes[None],
                                        method="vq-lp") for frames, codes, _ in items]),
    }
    rows = run_bench(store, ["ap", "vq-lp"], write=False, progress=False)
    assert [row["method"] for row in rows] == ["ap", "vq-lp"]
    for row in rows:
        expected = one_nn(expected_vectors[row["method"]], labels, split["train"], split["test"])
        assert 0 < expected < 100  # neither trivial nor hopeless, so a wrong row would show
        assert row["accuracy"] == pytest.approx(expected), row["method"]
        # Validation rows sit out of the 1-NN reference set.
        assert row["num_train"] == 60 and row["num_test"] == 24
        assert row["settings"]["fold_sizes"] == [[60, 24]]
        assert row["store"] == str(store.path) and row["upstream"] == "logmel"
    # With the validation rows in the reference set the accuracy would be another one.
    leaky = one_nn(expected_vectors["ap"], labels, split["train"] + split["validation"],
                   split["test"])
    assert leaky != pytest.approx(rows[0]["accuracy"])


def test_bench_on_a_pooled_only_store_uses_its_stored_vectors(
    stores: dict[str, FeatureStore],
) -> None:
    store = stores["pooled"]
    split = split_rows(store)
    labels = [meta["label"] for meta in store.meta]
    rows = run_bench(store, ["ap", "vq-lp"], write=False, progress=False)
    for row in rows:
        expected = one_nn(store.pooled(row["method"]), labels, split["train"], split["test"])
        assert row["accuracy"] == pytest.approx(expected), row["method"]


def test_probe_on_a_real_store(stores: dict[str, FeatureStore]) -> None:
    store = stores["frames"]
    settings = {"seeds": 2, "epochs": 30, "lr": 1e-2, "write": False, "progress": False}
    rows = run_probe(store, ["ap", "vq-lp", "sap"], **settings)
    assert [row["method"] for row in rows] == ["ap", "vq-lp", "sap"]
    for row in rows:
        # The splits are the store's own, read from its index.
        assert row["settings"]["fold_sizes"] == [[60, 12, 24]]
        assert row["num_train"] == 60 and row["num_test"] == 24
        # Four digits: 25% is chance. These probes reach 64-83%; with the labels shuffled
        # across the rows they score 17-35%, as frames out of step with their labels would.
        assert row["accuracy"] > 50, (row["method"], row["per_seed"])
    # The same utterances from the pooled-only store (vectors pooled from fp32 frames at
    # extraction, not from the stored fp16 frames) train probes that score alike: identical
    # here, and never more than one test utterance apart.
    pooled = run_probe(stores["pooled"], ["ap", "vq-lp"], **settings)
    for frames_row, pooled_row in zip(rows, pooled, strict=False):
        assert pooled_row["method"] == frames_row["method"]
        for a, b in zip(frames_row["per_seed"], pooled_row["per_seed"], strict=True):
            assert abs(a - b) <= 100 / 24 + 1e-9, (frames_row["method"], a, b)
