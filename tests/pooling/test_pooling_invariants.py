"""The invariants of docs/methods.md section 8, as property tests over random padded batches."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pooling_batches import code_batches, fit_stats, frames_for

from vqpool.pooling import METHODS, SEMANTICS, frame_weights, get_method, pool

# each test runs with the compiled CPU loops and with the PyTorch ops a GPU runs (conftest.py)
pytestmark = pytest.mark.usefixtures("code_loops")

WEIGHTED_METHODS = [m for m in METHODS if get_method(m).weights is not None]

PERMUTATION_INVARIANT = ("vq-allsquash-and", "vq-allsquash-or", "vq-lp", "vq-gp", "vq-bp", "vq-sif")
PARTITION_METHODS = ("vq-squash-and", "vq-squash-or", "vq-allsquash-and", "vq-allsquash-or")
EXAMPLES = settings(max_examples=50, deadline=None)


def all_weights(codes, lengths, stats, semantics):
    return {
        method: frame_weights(lengths, codes, method, stats, semantics=semantics)
        for method in WEIGHTED_METHODS
    }


@pytest.mark.parametrize("semantics", SEMANTICS)
@EXAMPLES
@given(batch=code_batches())
def test_weights_are_a_distribution_over_true_frames(semantics, batch):
    codes, lengths, values = batch
    mask = torch.arange(codes.shape[1]) < lengths[:, None]
    for method, w in all_weights(
        codes, lengths, fit_stats(codes, lengths, values), semantics
    ).items():
        assert w.dtype == torch.float32 and w.shape == mask.shape
        assert (w >= 0).all() and (w[~mask] == 0).all() and (w[mask] > 0).all(), method
        if (method, semantics) != ("vq-allsquash-or", "reference"):  # per-tuple, unnormalised
            torch.testing.assert_close(w.sum(1), torch.ones(len(lengths)), msg=method)


@pytest.mark.parametrize("semantics", SEMANTICS)
@EXAMPLES
@given(batch=code_batches())
def test_an_utterance_pools_alike_alone_and_in_a_padded_batch(semantics, batch):
    codes, lengths, values = batch
    stats = fit_stats(codes, lengths, values)
    frames = frames_for(codes)
    for method in WEIGHTED_METHODS:
        together = pool(frames, lengths, codes, method, stats, semantics=semantics)
        for b, n in enumerate(lengths.tolist()):
            alone = pool(
                frames[b : b + 1, :n],
                lengths[b : b + 1],
                codes[b : b + 1, :n],
                method,
                stats,
                semantics=semantics,
            )
            torch.testing.assert_close(together[b], alone[0], atol=1e-6, rtol=1e-5, msg=method)


@EXAMPLES
@given(batch=code_batches(), data=st.data())
def test_unordered_methods_ignore_frame_order_under_paper_semantics(batch, data):
    codes, lengths, values = batch
    stats = fit_stats(codes, lengths, values)
    frames = frames_for(codes)
    shuffled_codes, shuffled_frames = codes.clone(), frames.clone()
    for b, n in enumerate(lengths.tolist()):
        order = torch.tensor(data.draw(st.permutations(range(n)), label=f"order {b}"))
        shuffled_codes[b, :n], shuffled_frames[b, :n] = codes[b, order], frames[b, order]
    for method in PERMUTATION_INVARIANT:
        expected = pool(frames, lengths, codes, method, stats)
        got = pool(shuffled_frames, lengths, shuffled_codes, method, stats)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5, msg=method)


def test_order_matters_for_squash_and_reference_allsquash_or():
    # docs/methods.md section 8: the squash methods and the greedy chaining read frames in time order
    lengths = torch.tensor([4])
    codes = torch.tensor([[(1, 1), (1, 1), (2, 2), (3, 3)]])
    shuffled = codes[:, [0, 2, 1, 3]]
    for method in ("vq-squash-and", "vq-squash-or"):
        assert not torch.equal(
            frame_weights(lengths, codes, method).sort().values,
            frame_weights(lengths, shuffled, method).sort().values,
        )
    codes = torch.tensor([[(1, 3), (2, 4), (2, 3)]])  # greedy: {q1} {q2, q3}
    shuffled = codes[:, [0, 2, 1]]  # (2,3) now opens its run, whose scan meets 3: one part
    weights = [
        frame_weights(torch.tensor([3]), c, "vq-allsquash-or", semantics="reference")
        for c in (codes, shuffled)
    ]
    assert not torch.allclose(weights[0][0, [0, 1, 2]], weights[1][0, [0, 2, 1]])


@pytest.mark.parametrize("semantics", SEMANTICS)
@EXAMPLES
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    groups=st.integers(1, 3),
    data=st.data(),
)
def test_distinct_codes_reduce_partitions_and_lp_to_ap(semantics, lengths, groups, data):
    # every frame gets codes nobody else in its utterance has, in any codebook
    length = max(lengths)
    codes = torch.stack(
        [
            torch.stack(
                [torch.tensor(data.draw(st.permutations(range(length)))) for _ in range(groups)], -1
            )
            for _ in lengths
        ]
    )
    lengths = torch.tensor(lengths)
    ap = frame_weights(lengths, codes, "ap")
    for method in (*PARTITION_METHODS, "vq-lp"):
        torch.testing.assert_close(
            frame_weights(lengths, codes, method, semantics=semantics), ap, msg=method
        )


@pytest.mark.parametrize("semantics", SEMANTICS)
@EXAMPLES
@given(batch=code_batches())
def test_one_repeated_tuple_reduces_and_methods_to_ap(semantics, batch):
    codes, lengths, _ = batch
    codes = codes[:, :1].expand_as(codes).clone()  # every frame carries the utterance's first tuple
    ap = frame_weights(lengths, codes, "ap")
    for method in ("vq-squash-and", "vq-allsquash-and"):
        torch.testing.assert_close(
            frame_weights(lengths, codes, method, semantics=semantics), ap, msg=method
        )
