"""How sure a number is: bootstrap intervals in every bench and probe row, a warning for a probe
that stopped while still improving, and benchmarks that leave out what a tiny split cannot fit."""

import logging

import pytest
import torch
from memstore import toy_store

from vqpool.evaluate.bench import run_bench
from vqpool.evaluate.bootstrap import bootstrap_ci
from vqpool.evaluate.knn import one_nn_accuracy, one_nn_hits
from vqpool.evaluate.probe import run_probe


def test_the_interval_holds_the_accuracy_shrinks_with_more_utterances_and_is_seeded():
    generator = torch.Generator().manual_seed(0)
    few = torch.rand(40, generator=generator) < 0.8
    many = torch.rand(4000, generator=generator) < 0.8
    low, high = bootstrap_ci([[few]])
    accuracy = 100 * few.double().mean().item()
    assert low < accuracy < high and 0 <= low and high <= 100
    low_many, high_many = bootstrap_ci([[many]])
    assert high_many - low_many < (high - low) / 5  # ~ 1 / sqrt(n): 10x the width at 100x n
    assert bootstrap_ci([[few]]) == [low, high]  # seeded: the same on every run
    assert bootstrap_ci([[many]], seed=1) != [low_many, high_many]
    # All right: no spread at all.
    assert bootstrap_ci([[torch.ones(10, dtype=torch.bool)]]) == [100.0, 100.0]


def test_seeds_share_their_draws_and_folds_are_averaged():
    generator = torch.Generator().manual_seed(1)
    hits = torch.rand(200, generator=generator) < 0.7
    # Two seeds that agree on every utterance add no spread: the same interval as one seed.
    assert bootstrap_ci([[hits, hits]]) == bootstrap_ci([[hits]])
    # Two folds of opposite skill: the interval lies around their mean.
    good, bad = torch.ones(100, dtype=torch.bool), torch.rand(100, generator=generator) < 0.2
    low, high = bootstrap_ci([[good], [bad]])
    assert low < (100 + 100 * bad.double().mean().item()) / 2 < high
    with pytest.raises(ValueError, match="at least one fold"):
        bootstrap_ci([])


def test_one_nn_hits_are_what_the_accuracy_counts():
    store, vectors = toy_store(36, seed=0)
    labels = torch.arange(36) % 3
    hits = one_nn_hits(vectors[:24], labels[:24], vectors[24:], labels[24:])
    assert hits.dtype == torch.bool and hits.shape == (12,)
    assert 100 * hits.double().mean().item() == one_nn_accuracy(
        vectors[:24], labels[:24], vectors[24:], labels[24:])


def test_bench_and_probe_rows_carry_a_95_interval():
    store, _ = toy_store(60, seed=3)
    names = ["train"] * 36 + ["validation"] * 8 + ["test"] * 16
    bench = run_bench(store, ["ap", "vq-lp"], splits=[names], write=False, progress=False)
    probe = run_probe(store, ["ap", "sap"], splits=[names], seeds=2, epochs=3, lr=1e-2,
                      write=False, progress=False)
    for row in bench + probe:
        low, high = row["ci95"]
        assert 0 <= low <= row["accuracy"] <= high <= 100
    assert bench[0]["ci95"] == run_bench(store, ["ap"], splits=[names], write=False,
                                         progress=False)[0]["ci95"]  # the same on a rerun


def test_a_probe_whose_last_epoch_is_best_warns_that_it_may_be_under_trained(caplog):
    store, _ = toy_store(60, seed=3)
    names = ["train"] * 36 + ["validation"] * 8 + ["test"] * 16
    with caplog.at_level(logging.INFO, logger="vqpool"):
        rows = run_probe(store, ["ap", "vq-lp"], splits=[names], seeds=1, epochs=1, lr=1e-2,
                         write=False, progress=False)
    assert [row["settings"]["best_epochs"] for row in rows] == [[[1]], [[1]]]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ap, vq-lp was the last of 1" in warnings[0].getMessage()
    assert "under-trained" in warnings[0].getMessage()
    # one progress line per method, as logs (a terminal's bar is not all a user gets)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("probe ")]
    assert len(lines) == 2 and lines[0].startswith("probe 1/2 ap: test ")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vqpool"):
        rows = run_probe(store, ["ap"], splits=[names], seeds=1, epochs=40, lr=1e-1,
                         patience=2, write=False, progress=False)
    assert rows[0]["settings"]["best_epochs"][0][0] < 40  # patience stopped it: no warning
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_training_split_too_small_for_whitening_leaves_it_out_with_a_note(caplog):
    store, _ = toy_store(12, seed=1)
    names = ["train"] + ["test"] * 11  # one training utterance: no scatter to whiten with
    with caplog.at_level(logging.INFO, logger="vqpool"):
        rows = run_bench(store, ["ap", "whitening", "softdecay", "vq-gp"], splits=[names],
                         write=False, progress=False)
    assert [row["method"] for row in rows] == ["ap", "softdecay", "vq-gp"]
    notes = [r.getMessage() for r in caplog.records if "leaving out whitening" in r.getMessage()]
    assert notes == ["note: leaving out whitening: fold 1 has 1 training utterance(s), too few "
                     "to fit its corpus statistics (whitening)"]
