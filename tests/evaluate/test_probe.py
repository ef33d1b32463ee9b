import pytest
import torch
from memstore import toy_store
from torch import Tensor, nn

from vqpool.errors import VqpoolError
from vqpool.evaluate.probe import (
    PROBE_DEFAULTS,
    Frames,
    Vectors,
    evaluate,
    probe_settings,
    run_probe,
    train_probe,
)
from vqpool.evaluate.results import read_results
from vqpool.pooling.masking import length_mask


def blobs(n: int, seed: int, dim: int = 8, classes: int = 3) -> tuple[Tensor, Tensor]:
    """Well separated Gaussian blobs: a linearly separable toy problem."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.eye(classes, dim) * 6
    y = torch.arange(n) % classes
    return centres[y] + torch.randn(n, dim, generator=generator), y


def test_defaults_are_those_of_the_paper() -> None:
    assert PROBE_DEFAULTS == {"kws": (1e-2, 4096, 200), "sid": (1e-3, 128, 50),
                              "ic": (1e-3, 512, 200), "er": (1e-3, 512, 200)}
    assert probe_settings("sid") == ({"lr": 1e-3, "batch_size": 128, "epochs": 50}, True)
    assert probe_settings("digits", epochs=3) == ({"lr": 1e-3, "batch_size": 512, "epochs": 3}, False)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_learns_a_separable_toy_problem(device: str) -> None:
    train, valid, test = (Vectors(*blobs(n, seed)) for n, seed in ((240, 0), (60, 1), (90, 2)))
    result = train_probe(train, valid, test, dim=8, num_classes=3, lr=1e-2, batch_size=32,
                         epochs=15, seed=0, device=device, progress=False)
    assert result.test_accuracy > 95
    assert len(result.valid_curve) == 15


def test_keeps_the_best_validation_epoch() -> None:
    train, test = Vectors(*blobs(240, 0)), Vectors(*blobs(90, 2))
    x, y = blobs(60, 1)
    # Validation labels are rotated: the better the probe fits, the worse it scores on them,
    # so the last epoch is worse than an earlier one.
    valid = Vectors(x, (y + 1) % 3)
    result = train_probe(train, valid, test, dim=8, num_classes=3, lr=3e-3, batch_size=32,
                         epochs=12, seed=0, progress=False)
    curve = result.valid_curve
    assert curve[-1] < max(curve)  # the construction works
    assert result.best_epoch == curve.index(max(curve))
    assert result.valid_accuracy == max(curve)
    # The returned model is that epoch's, and its test accuracy is the one reported.
    assert evaluate(result.model, valid) == max(curve)
    assert evaluate(result.model, test) == result.test_accuracy


def test_patience_stops_early() -> None:
    train, test = Vectors(*blobs(240, 0)), Vectors(*blobs(90, 2))
    x, y = blobs(60, 1)
    result = train_probe(train, Vectors(x, (y + 1) % 3), test, dim=8, num_classes=3, lr=3e-3,
                         batch_size=32, epochs=50, seed=0, patience=2, progress=False)
    assert len(result.valid_curve) == result.best_epoch + 3


def test_same_seed_same_result_and_seeds_differ() -> None:
    data = [Vectors(*blobs(n, seed)) for n, seed in ((60, 0), (30, 1), (30, 2))]
    first, again, other = (train_probe(*data, dim=8, num_classes=3, epochs=3, seed=s, progress=False)
                           for s in (0, 0, 1))
    assert first.valid_curve == again.valid_curve
    assert not torch.equal(first.model.linear.weight, other.model.linear.weight)


class MeanHead(nn.Module):
    """A parameter-free stand-in head: the masked mean, so the test checks batching only."""

    output_dim = 8

    def forward(self, frames: Tensor, lengths: Tensor) -> Tensor:
        mask = length_mask(lengths, frames.shape[1]).float()
        return (frames * mask[..., None]).sum(1) / lengths[:, None]


def frame_split(n: int, seed: int, max_frames: int) -> Frames:
    """Utterances of 1-9 frames scattered around their class blob."""
    x, y = blobs(n, seed)
    generator = torch.Generator().manual_seed(seed + 10)
    items = [c + 0.5 * torch.randn(int(torch.randint(1, 10, (1,), generator=generator)), 8,
                                   generator=generator) for c in x]
    return Frames(items, y, max_frames)


@pytest.mark.parametrize("max_frames", [12, 10_000])
def test_heads_train_on_padded_frame_batches(max_frames: int) -> None:
    splits = [frame_split(n, seed, max_frames) for n, seed in ((120, 0), (30, 1), (45, 2))]
    result = train_probe(*splits, dim=8, num_classes=3, head=MeanHead(), lr=1e-2, batch_size=16,
                         epochs=5, seed=0, progress=False)
    assert result.test_accuracy > 95
    # The same probe trained on vectors pooled beforehand learns the same weights: the padding
    # and micro-batches (max_frames=12 splits every batch) change nothing.
    pooled = [Vectors(torch.stack([u.mean(0) for u in s.items]), s.y) for s in splits]
    reference = train_probe(*pooled, dim=8, num_classes=3, lr=1e-2, batch_size=16, epochs=5,
                            seed=0, progress=False)
    assert torch.allclose(result.model.linear.weight, reference.model.linear.weight, atol=1e-4)
    assert result.valid_curve == reference.valid_curve


def test_run_probe_on_a_store(tmp_path) -> None:
    store, _ = toy_store(36, seed=0, path=str(tmp_path))
    names = ["train"] * 20 + ["validation"] * 6 + ["test"] * 10
    splits = [names, names[10:] + names[:10]]  # two folds, as leave-one-session-out gives
    rows = run_probe(store, ["ap", "vq-lp", "sap"], splits=splits, seeds=2, epochs=4, lr=1e-2,
                     progress=False)
    assert [r["method"] for r in read_results(tmp_path / "results.jsonl")] == ["ap", "vq-lp", "sap"]
    for row in rows:
        assert row["protocol"] == "probe" and len(row["per_fold"]) == 2 and len(row["per_seed"]) == 2
        assert row["accuracy"] == pytest.approx(sum(row["per_seed"]) / 2)
        assert row["accuracy"] == pytest.approx(sum(row["per_fold"]) / 2)
        spread = abs(row["per_seed"][0] - row["per_seed"][1]) / 2**0.5  # sample std of two
        assert row["std"] == pytest.approx(spread)
        settings = row["settings"]
        assert settings["generic_defaults"] and settings["epochs"] == 4 and settings["lr"] == 1e-2
        assert settings["batch_size"] == 512 and settings["seeds"] == [0, 1]
        assert all(1 <= e <= 4 for fold in settings["best_epochs"] for e in fold)
        assert row["num_test"] == 20
    with pytest.raises(VqpoolError, match="no validation"):
        run_probe(store, ["ap"], splits=[["train"] * 26 + ["test"] * 10], epochs=1, write=False,
                  progress=False)


def test_sessions_give_folds_with_held_out_validation() -> None:
    store, _ = toy_store(45, seed=3)
    for i, row in enumerate(store.meta):
        row["session"] = f"Ses0{i % 3 + 1}"
    (row,) = run_probe(store, ["ap"], seeds=1, epochs=1, write=False, progress=False)
    # vqpool.data.folds holds every fifth row of each (session, label) group of 5 out of
    # training: one per label in each of the two training sessions.
    assert [sizes[1] for sizes in row["settings"]["fold_sizes"]] == [6, 6, 6]
    assert len(row["per_fold"]) == 3 and row["num_test"] == 45
