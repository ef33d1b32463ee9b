"""The compiled CPU loops against hand-worked examples and against the batched PyTorch ops that
compute the same tables on a GPU."""

from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pooling_batches import code_batches

from vqpool.pooling import api, frame_weights, kernels, partitions, stats, weights
from vqpool.pooling.masking import length_mask

pytestmark = pytest.mark.skipif(not kernels.serves(torch.zeros(1)), reason="numba is not installed")


def pytorch_ops():
    return mock.patch.object(kernels, "serves", lambda codes: False)


def test_components_and_tuples_by_hand():
    # frames 0 and 2 share code 2 in codebook 1, frames 1 and 3 code 3 in codebook 0, and frame 3
    # links frame 4 (code 6 in codebook 1); frames 0 and 5 hold one tuple
    codes = torch.tensor([[[1, 2], [3, 4], [5, 2], [3, 6], [7, 6], [1, 2], [0, 0]]], dtype=torch.int32)
    lengths = torch.tensor([6])
    assert kernels.linked_components(codes, lengths, 8).tolist() == [[0, 1, 0, 1, 1, 0, -1]]
    assert kernels.first_equal_tuples(codes, lengths).tolist() == [[0, 1, 2, 3, 4, 0, -1]]
    # every frame is a run of equal first code; 0 seeds (second code 2), 1 seeds (4), 2 joins 0,
    # 3 seeds (6), 4 joins 3, 5 joins 0. A run goes on from frame 3 to 4 (code 6).
    assert kernels.greedy_chaining(codes, lengths, 8).tolist() == [[0, 1, 0, 3, 3, 0, -1]]
    assert kernels.runs_sharing_with_first(codes, lengths).tolist() == [[0, 1, 2, 3, 3, 5, -1]]
    assert kernels.code_counts(codes, lengths, 8, total=True).tolist() == [[5, 3, 4, 4, 3, 5, 0]]
    assert kernels.code_counts(codes, lengths, 8, total=False)[0, :3].tolist() == [[2, 3], [2, 1], [1, 3]]
    corpus = torch.arange(16).view(2, 8)  # codebook g's code q was seen 8 g + q times
    assert kernels.corpus_totals(codes, lengths, corpus)[0, :2].tolist() == [1 + 10, 3 + 12]


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
@settings(max_examples=60, deadline=None)
@given(batch=code_batches(max_batch=5, max_length=40), groups=st.sampled_from([1, 2, 9, 32]),
       data=st.data())
def test_loops_match_the_pytorch_ops(dtype, batch, groups, data):
    codes, lengths, values = batch
    if codes.shape[-1] != groups:  # widen to G codebooks by mixing the drawn ones
        codes = torch.stack([codes[..., g % codes.shape[-1]] * (1 + g // codes.shape[-1]) % values
                             for g in range(groups)], -1)
    mask = length_mask(lengths, codes.shape[1])
    codes = codes.masked_fill(~mask[..., None], 0).to(dtype)
    corpus = torch.tensor(data.draw(st.lists(st.integers(0, 10**12), min_size=groups * values,
                                             max_size=groups * values))).view(groups, values)
    compiled = {
        "counts": kernels.code_counts(codes, lengths, values, total=False),
        "totals": kernels.code_counts(codes, lengths, values, total=True),
        "components": kernels.linked_components(codes, lengths, values),
        "tuples": kernels.first_equal_tuples(codes, lengths),
        "corpus": kernels.corpus_totals(codes, lengths, corpus),
        "first-frame runs": kernels.runs_sharing_with_first(codes, lengths),
        "greedy": kernels.greedy_chaining(codes, lengths, values),
        "tuple hash": kernels.xor_of_words(codes, stats._hash_table(groups, values)),
    }
    with pytorch_ops():
        expected = {
            "counts": partitions.per_code(codes, mask, values),
            "totals": partitions.per_code(codes, mask, values, total=True),
            "components": partitions.allsquash_or(codes, mask),
            "tuples": partitions.allsquash_and(codes, mask),
            "corpus": torch.stack([corpus[g][codes[..., g].long()] for g in range(groups)], -1).sum(-1),
            "first-frame runs": partitions.squash_or_first(codes, mask),
            "greedy": partitions.allsquash_or_greedy(codes, mask),
            "tuple hash": stats.tuple_hash(codes, values),
        }
    for name, found in compiled.items():
        if name == "tuple hash":  # every tuple, padding's too
            assert torch.equal(found, expected[name]), name
            continue
        true = mask if found.ndim == 2 else mask[..., None].expand(found.shape)
        assert torch.equal(found[true], expected[name][true].to(found.dtype)), name
        assert not found[~true].any() if name in ("counts", "totals", "corpus") else (found[~mask] == -1).all()


def test_global_probability_is_the_same_either_way():
    codes = torch.randint(0, 50, (3, 20, 4), generator=torch.Generator().manual_seed(0)).int()
    lengths = torch.tensor([20, 7, 1])
    mask = length_mask(lengths, 20)
    codes = codes.masked_fill(~mask[..., None], 0)
    stats = mock.Mock(code_counts=torch.randint(0, 99, (4, 50), generator=torch.Generator().manual_seed(1)))
    compiled = weights.global_probability(codes, mask, stats, 1.0)
    with pytorch_ops():
        assert torch.equal(compiled, weights.global_probability(codes, mask, stats, 1.0))



@pytest.mark.parametrize("garbage_at", [None, "first row", "last code"])
def test_large_batches_with_garbage_padding_pool_as_zeroed(garbage_at):
    # above api.ZERO_CHECK_ELEMENTS codes, pool checks the padding instead of copying the codes
    generator = torch.Generator().manual_seed(3)
    lengths = torch.randint(100, 201, (64,), generator=generator)
    lengths[0], lengths[1], lengths[-1] = 200, 150, 120
    mask = length_mask(lengths, 200)
    codes = torch.randint(0, 40, (64, 200, 82), generator=generator).int().masked_fill(~mask[..., None], 0)
    assert codes.numel() >= api.ZERO_CHECK_ELEMENTS
    dirty = codes.clone()
    if garbage_at == "first row":
        dirty[1, 150, 0] = 7
    elif garbage_at == "last code":
        dirty[-1, -1, -1] = 7
    assert kernels.zero_padded(dirty, lengths) == (garbage_at is None)
    with pytorch_ops():
        assert api._zero_padded(dirty, lengths) == (garbage_at is None)
    clean = frame_weights(lengths, codes, "vq-lp")
    assert torch.equal(frame_weights(lengths, dirty, "vq-lp"), clean)
