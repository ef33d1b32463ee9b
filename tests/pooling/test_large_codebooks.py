"""Codec-sized codes (issue 11): up to 32 codebooks of up to 2048 entries, where V^G overflows
int64. Every weighted method must still match the per-utterance loop of reference_impl.py."""

from unittest import mock

import numpy as np
import pytest
import reference_impl
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pooling_batches import fit_stats, utterance

from vqpool.pooling import METHODS, SEMANTICS, frame_weights, get_method, masking, partitions
from vqpool.pooling.stats import (
    _hash_table,
    code_tuple_ids,
    exact_tuple_ids,
    summed_tuple_hash,
    tuple_hash,
)

# each test runs with the compiled CPU loops and with the PyTorch ops a GPU runs (conftest.py)
pytestmark = pytest.mark.usefixtures("code_loops")

WEIGHTED_METHODS = [m for m in METHODS if get_method(m).weights is not None]


@st.composite
def codec_batches(draw: st.DrawFn, groups: int, values: int, max_batch: int = 3, max_length: int = 30):
    """``(codes [B, L, G], lengths)``: runs of codes drawn from a small palette that includes
    V - 1, so frames share codes often and the data's V is the full V (ids hashed)."""
    palette = [0, 1, 2, values - 1]
    lengths = draw(st.lists(st.integers(1, max_length), min_size=1, max_size=max_batch))
    codes = torch.zeros(len(lengths), max(lengths), groups, dtype=torch.long)
    for b, n in enumerate(lengths):
        for g in range(groups):
            column: list[int] = []
            while len(column) < n:
                column += [draw(st.sampled_from(palette))] * draw(st.integers(1, 5))
            codes[b, :n, g] = torch.tensor(column[:n])
    codes[0, 0] = values - 1  # the data spans [0, V)
    return codes, torch.tensor(lengths)


@pytest.mark.parametrize("groups", [8, 9, 32])
@pytest.mark.parametrize("semantics", SEMANTICS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_codec_sized_codes_match_the_loop(groups, semantics, data):
    values = 2048
    codes, lengths = data.draw(codec_batches(groups, values), label="batch")
    train_codes, train_lengths = data.draw(codec_batches(groups, values), label="corpus")
    stats = fit_stats(train_codes, train_lengths, values)
    assert not exact_tuple_ids(values, groups)  # the hashed tuple ids are what is tested
    corpus = reference_impl.Corpus(
        [q for b in range(len(train_lengths)) for q in utterance(train_codes, train_lengths, b)]
    )
    for method in WEIGHTED_METHODS:
        fast = frame_weights(lengths, codes, method, stats, semantics=semantics)
        for b, n in enumerate(lengths.tolist()):
            slow = reference_impl.weights(method, utterance(codes, lengths, b), semantics, corpus)
            torch.testing.assert_close(
                fast[b, :n], torch.tensor(slow), atol=1e-6, rtol=1e-5, msg=f"{method} utterance {b}"
            )


def test_tuple_ids_are_exact_while_they_fit_int64_and_hashed_beyond():
    codes = torch.tensor([[3, 1, 4], [1, 5, 9]])
    assert code_tuple_ids(codes, 10).tolist() == [3 + 10 + 400, 1 + 50 + 900]
    assert exact_tuple_ids(2**21 - 1, 3) and not exact_tuple_ids(2**21, 3)  # 2^63 > int64
    wide = torch.arange(32).repeat(2, 1) * 60
    wide[1, 31] += 1
    ids = code_tuple_ids(wide, 2048)
    assert ids.dtype == torch.int64 and ids[0] != ids[1]
    # the hash is part of the saved statistics' format: it must never change
    assert tuple_hash(torch.arange(32)[None] * 60, 2048).tolist() == [927518325147495927]
    # folding halves gives the XOR of the table words, one codebook at a time
    table = _hash_table(9, 2048)
    codes = torch.randint(0, 2048, (5, 9), generator=torch.Generator().manual_seed(0))
    for row in codes:
        expected = torch.zeros((), dtype=torch.long)
        for g, q in enumerate(row.tolist()):
            expected ^= table[g, q]
        assert tuple_hash(row[None], 2048)[0] == expected


def test_summed_tuple_hash_adds_the_table_words_wrapping_like_uint64():
    table = _hash_table(9, 2048).numpy().view(np.uint64)
    codes = torch.randint(0, 2048, (5, 9), dtype=torch.int32, generator=torch.Generator().manual_seed(1))
    ids = summed_tuple_hash(codes, 2048)
    for row, got in zip(codes.tolist(), ids.tolist(), strict=True):
        expected = sum(int(table[g, q]) for g, q in enumerate(row)) % 2**64
        assert got % 2**64 == expected
    # one code changed anywhere changes the key
    changed = codes.clone()
    changed[:, 4] = (changed[:, 4] + 1) % 2048
    assert (summed_tuple_hash(changed, 2048) != ids).all()


@pytest.mark.parametrize("entries", [1, 64, 1 << 18])
@pytest.mark.parametrize("dense_reset", [0, 1 << 30])  # every chunk read before adding / zeroed after
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_per_code_tables_in_chunks(monkeypatch, entries, dense_reset, dtype):
    """However few table entries a chunk may use, and however the table is reset between
    chunks, the counts and first positions are exact."""
    monkeypatch.setattr(partitions, "TABLE_ENTRIES", entries)
    monkeypatch.setattr(partitions, "DENSE_RESET", dense_reset)
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 5, (7, 13, 3), generator=generator)
    lengths = torch.tensor([13, 1, 5, 13, 7, 2, 9])
    mask = torch.arange(13)[None] < lengths[:, None]
    codes = codes.masked_fill(~mask[..., None], 0).to(dtype)  # as pool gives them
    count = partitions.per_code(codes, mask, 5)
    first = partitions.per_code(codes, mask, 5, torch.arange(13).expand(7, -1))
    total = partitions.per_code(codes, mask, 5, total=True)
    for b, n in enumerate(lengths.tolist()):
        for t in range(n):
            for g in range(3):
                same = (codes[b, :n, g] == codes[b, t, g]).nonzero().squeeze(1)
                assert count[b, t, g] == len(same) and first[b, t, g] == same[0]
            assert total[b, t] == count[b, t].sum()


@pytest.mark.parametrize("semantics", SEMANTICS)
@settings(max_examples=15, deadline=None)
@given(data=st.data(), chunk_codes=st.integers(1, 200))
def test_chunks_of_utterances_change_nothing(semantics, data, chunk_codes):
    """On a CPU the codes are worked a few utterances (or tuples) at a time; however small
    the chunks, every weighted method still matches the per-utterance loop."""
    values = 2048
    codes, lengths = data.draw(codec_batches(9, values, max_batch=5, max_length=12), label="batch")
    stats = fit_stats(codes, lengths, values)
    corpus = reference_impl.Corpus(
        [q for b in range(len(lengths)) for q in utterance(codes, lengths, b)]
    )
    for method in WEIGHTED_METHODS:
        with (mock.patch.object(masking, "CHUNK_CODES", chunk_codes),
              mock.patch.object(partitions, "SHIFT_CHUNK_CODES", chunk_codes)):
            fast = frame_weights(lengths, codes, method, stats, semantics=semantics)
        for b, n in enumerate(lengths.tolist()):
            slow = reference_impl.weights(method, utterance(codes, lengths, b), semantics, corpus)
            torch.testing.assert_close(
                fast[b, :n], torch.tensor(slow), atol=1e-6, rtol=1e-5, msg=f"{method} utterance {b}"
            )
