"""Statistics pooling, whitening and soft-decay against loop and numpy references."""

from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vqpool.errors import VqpoolError
from vqpool.pooling import masking
from vqpool.pooling.baselines import soft_decay, statistics_pooling, whiten
from vqpool.pooling.stats import CorpusStats

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


def padded_batch(lengths, dim=5, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    frames = torch.randn(len(lengths), int(lengths.max()) + 2, dim, generator=generator) * 2 + 1
    padding = torch.arange(frames.shape[1])[None, :] >= lengths[:, None]
    frames[padding] = float("nan")  # garbage that must not leak
    return frames.to(dtype), lengths


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_statistics_pooling_matches_loop(device, dtype):
    frames, lengths = padded_batch([1, 4, 9, 2], dtype=dtype)
    pooled = statistics_pooling(frames.to(device), lengths.to(device))
    assert pooled.shape == (4, 10) and pooled.dtype == torch.float32
    expected = loop_statistics(frames, lengths).float()
    torch.testing.assert_close(pooled.cpu(), expected, rtol=1e-5, atol=1e-6)
    assert torch.all(pooled[0, 5:] == torch.tensor(1e-5))  # T = 1: std is exactly 1e-5


def loop_statistics(frames, lengths):
    """``[mean; std + 1e-5]`` in float64, one utterance at a time."""
    rows = []
    for h, n in zip(frames.double(), lengths.tolist(), strict=True):
        std = h[:n].std(0) if n > 1 else torch.zeros(h.shape[1], dtype=torch.float64)
        rows.append(torch.cat([h[:n].mean(0), std + 1e-5]))
    return torch.stack(rows)


def test_statistics_pooling_std_is_accurate_far_from_zero():
    # in fp32, E[x^2] - E[x]^2 loses every digit of a std 1e5 times smaller than the mean, and
    # E[(x - m)^2] without taking out the rounding error of m is off by up to ~1e-3
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([2, 7, 50, 400])
    frames = 1000 + 0.01 * torch.randn(4, 400, 8, generator=generator)
    pooled = statistics_pooling(frames, lengths).double()
    expected = loop_statistics(frames, lengths)
    torch.testing.assert_close(pooled[:, :8], expected[:, :8], rtol=1e-6, atol=0)
    torch.testing.assert_close(pooled[:, 8:], expected[:, 8:], rtol=1e-5, atol=0)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    extra=st.integers(0, 2),
    garbage=st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e30, 0.0]),
    chunk_rows=st.integers(1, 7),
)
def test_statistics_pooling_any_chunks_ignore_any_padding(lengths, extra, garbage, chunk_rows):
    frames, lengths = padded_batch(lengths, dim=3)
    frames = torch.nn.functional.pad(frames, (0, 0, 0, extra), value=garbage)
    padding = torch.arange(frames.shape[1])[None, :] >= lengths[:, None]
    frames[padding] = garbage  # 1e30 is finite but its square is not
    with mock.patch.object(masking, "CHUNK_VALUES", chunk_rows * frames[0].numel()):
        pooled = statistics_pooling(frames, lengths)
    torch.testing.assert_close(
        pooled.double(), loop_statistics(frames, lengths), rtol=1e-5, atol=1e-6
    )


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6), chunk_rows=st.integers(1, 7),
       dtype=st.sampled_from([torch.float16, torch.bfloat16]))
def test_half_precision_frames_are_averaged_in_fp32_chunk_by_chunk(lengths, chunk_rows, dtype):
    frames, lengths = padded_batch(lengths, dim=3)
    half = frames.nan_to_num(0.0).to(dtype)  # the weighted average multiplies padding by 0
    weights = torch.rand(frames.shape[:2], generator=torch.Generator().manual_seed(len(lengths)))
    expected = torch.einsum("bl,bld->bd", weights, half.float())  # one whole fp32 copy
    with mock.patch.object(masking, "CHUNK_VALUES", chunk_rows * frames[0].numel()):
        pooled = masking.weighted_average(half, weights)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)


def fit(x):
    return CorpusStats.fit([(x, torch.ones(len(x), dtype=torch.long), None)])


def corpus(seed=1, n=40, dim=5):
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=generator)
    return (torch.randn(n, dim, generator=generator) @ mixing + 3).double()


@pytest.mark.parametrize("device", DEVICES)
def test_whiten_matches_numpy_whiteningbert(device):
    x = corpus()
    stats = fit(x)
    probe = corpus(seed=2, n=6)
    ours = whiten(probe.float().to(device), stats).cpu().double()
    mu = x.numpy().mean(0)
    u, s, _ = np.linalg.svd((x.numpy() - mu).T @ (x.numpy() - mu))
    theirs = (probe.numpy() - mu) @ u @ np.diag(1 / np.sqrt(s))
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(6, dtype=torch.float64))
    # SVD column signs are arbitrary; cosine similarities between outputs are not
    np.testing.assert_allclose((ours @ ours.T).numpy(), theirs @ theirs.T, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_soft_decay_paper_matches_numpy(device):
    x = corpus(seed=3)
    probe = corpus(seed=4, n=6)
    ours = soft_decay(probe.float().to(device), fit(x))
    assert ours.dtype == torch.float32 and ours.device.type == device
    _, s, vt = np.linalg.svd(x.numpy(), full_matrices=False)
    f = -np.log(1 + 0.6 * (s - 0.6) + 1e-7) / -0.6
    f *= s.max() / f.max()
    theirs = probe.numpy() @ vt.T @ np.diag(f / s) @ vt
    np.testing.assert_allclose(ours.cpu().numpy(), theirs, rtol=1e-4, atol=1e-4)


def reference_soft_decay(embeddings):
    """The reference implementation's per-batch transform, run here on one vector at a time."""
    u, s, v = torch.svd(embeddings)
    alpha = -0.6
    new_s = -torch.log(1 - alpha * (s + alpha) + 1e-7) / alpha
    new_s = new_s / (new_s.max() / s.max())
    return u @ torch.diag(new_s) @ v.T


def test_soft_decay_reference_is_per_vector_identity():
    vectors = torch.cat([corpus(seed=5, n=5).float(), torch.full((1, 5), 0.1)])
    ours = soft_decay(vectors, None, "reference")
    loop = torch.cat([reference_soft_decay(v[None].double()) for v in vectors]).float()
    torch.testing.assert_close(ours, loop)
    torch.testing.assert_close(torch.nn.functional.cosine_similarity(ours, vectors), torch.ones(6))
    torch.testing.assert_close(ours, vectors)
    assert torch.equal(soft_decay(torch.zeros(2, 5), None, "reference"), torch.zeros(2, 5))


def test_errors_without_fitted_transforms():
    x = corpus()
    codes_only = CorpusStats.fit(
        [(None, torch.ones(2, dtype=torch.long), torch.zeros(2, 1, 2, dtype=torch.long))], 4
    )
    for transform in (whiten, soft_decay):
        with pytest.raises(VqpoolError, match="frames"):
            transform(x.float(), None)
        with pytest.raises(VqpoolError, match="frames"):
            transform(x.float(), codes_only)
        with pytest.raises(VqpoolError, match="D=5"):
            transform(torch.zeros(2, 7), fit(x))
    with pytest.raises(VqpoolError, match="semantics"):
        soft_decay(x.float(), fit(x), "papers")
