"""The fast batched path against the per-utterance loop of reference_impl.py, for every weighted
method under both semantics, on random padded batches with heavy code repetition."""

import pytest
import reference_impl
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pooling_batches import code_batches, fit_stats, frames_for, utterance

from vqpool.pooling import METHODS, SEMANTICS, frame_weights, get_method, partitions, pool

# each test runs with the compiled CPU loops and with the PyTorch ops a GPU runs (conftest.py)
pytestmark = pytest.mark.usefixtures("code_loops")

WEIGHTED_METHODS = [m for m in METHODS if get_method(m).weights is not None]


@pytest.mark.parametrize("semantics", SEMANTICS)
@settings(max_examples=60, deadline=None)
@given(
    batch=code_batches(max_length=16),
    data=st.data(),
    a=st.sampled_from([1e-5, 1e-3, 1e-1]),
    smoothing=st.sampled_from([1.0, 0.5]),
)
def test_fast_path_matches_the_loop(semantics, batch, data, a, smoothing):
    codes, lengths, values = batch
    # the training corpus: same G and V, and some codes of the batch likely unseen
    corpus = code_batches(max_batch=3, groups=codes.shape[-1], values=values)
    train_codes, train_lengths, _ = data.draw(corpus, label="corpus")
    stats = fit_stats(train_codes, train_lengths, values)
    corpus_tuples = [
        q for b in range(len(train_lengths)) for q in utterance(train_codes, train_lengths, b)
    ]
    counts = reference_impl.Corpus(corpus_tuples)
    frames = frames_for(codes)
    for method in WEIGHTED_METHODS:
        options = dict(semantics=semantics, a=a, smoothing=smoothing)
        fast = frame_weights(lengths, codes, method, stats, **options)
        pooled = pool(frames, lengths, codes, method, stats, **options)
        for b, n in enumerate(lengths.tolist()):
            slow = reference_impl.weights(
                method, utterance(codes, lengths, b), semantics, counts, a=a, smoothing=smoothing
            )
            expected = torch.tensor(slow + [0.0] * (codes.shape[1] - n))
            torch.testing.assert_close(
                fast[b], expected, atol=1e-6, rtol=1e-5, msg=f"{method} utterance {b}"
            )
            vector = (expected.double()[:, None] * frames[b].double()).sum(0).float()
            torch.testing.assert_close(
                pooled[b], vector, atol=1e-6, rtol=1e-5, msg=f"{method} utterance {b}"
            )


PARTITION_METHODS = ("vq-squash-and", "vq-squash-or", "vq-allsquash-and", "vq-allsquash-or")


@pytest.mark.parametrize("semantics", SEMANTICS)
@settings(max_examples=40, deadline=None)
@given(batch=code_batches(max_batch=6, max_length=60, groups=2))
def test_partitions_match_the_loop_on_long_utterances(semantics, batch):
    """Long utterances give long chains of rounds (label propagation, greedy chaining)."""
    codes, lengths, values = batch
    for method in PARTITION_METHODS:
        fast = frame_weights(lengths, codes, method, semantics=semantics)
        for b, n in enumerate(lengths.tolist()):
            slow = reference_impl.weights(method, utterance(codes, lengths, b), semantics)
            expected = torch.tensor(slow + [0.0] * (codes.shape[1] - n))
            torch.testing.assert_close(
                fast[b], expected, atol=1e-6, rtol=1e-5, msg=f"{method} utterance {b}"
            )


@settings(max_examples=30, deadline=None)
@given(batch=code_batches(max_batch=4, max_length=30, groups=2, values=2))
def test_squash_or_reference_chases_long_runs(batch):
    """Runs longer than partitions.SHIFTS take the one-offset-at-a-time search; force it."""
    codes, lengths, _ = batch
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(partitions, "SHIFTS", 1)
        fast = frame_weights(lengths, codes, "vq-squash-or", semantics="reference")
    for b, n in enumerate(lengths.tolist()):
        slow = reference_impl.weights("vq-squash-or", utterance(codes, lengths, b), "reference")
        torch.testing.assert_close(fast[b, :n], torch.tensor(slow), atol=1e-6, rtol=1e-5)
