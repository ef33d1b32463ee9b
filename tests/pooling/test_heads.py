"""The supervised attention heads: masking, shapes, gradients, dtypes, hand formulas."""

import pytest
import torch

from vqpool.errors import VqpoolError
from vqpool.pooling import HEADS
from vqpool.pooling.heads import (
    AttentiveStatisticsPooling,
    SelfAttentivePooling,
    VectorAttentivePooling,
    build_head,
)

DIM = 6
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


def head(name, seed=0):
    torch.manual_seed(seed)
    return build_head(name, DIM)


def utterances(lengths, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, DIM, generator=generator) for n in lengths]


def pad(frames, garbage=float("nan")):
    length = max(len(f) for f in frames) + 3
    batch = torch.full((len(frames), length, DIM), garbage)
    for i, f in enumerate(frames):
        batch[i, : len(f)] = f
    return batch, torch.tensor([len(f) for f in frames])


@pytest.mark.parametrize("name", HEADS)
@pytest.mark.parametrize("device", DEVICES)
def test_padding_never_reaches_the_output(name, device):
    module = head(name).to(device)
    frames = utterances([1, 5, 3])
    for garbage in (float("nan"), 1e4):
        batch, lengths = pad(frames, garbage)
        pooled = module(batch.to(device), lengths.to(device))
        assert pooled.shape == (3, module.output_dim)
        for i, f in enumerate(frames):
            alone = module(f[None].to(device), torch.tensor([len(f)], device=device))[0]
            torch.testing.assert_close(pooled[i], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", HEADS)
def test_weights_sum_to_one_over_true_frames(name):
    module = head(name)
    batch, lengths = pad(utterances([2, 7, 4]))
    weights = module.attention_weights(batch, lengths)
    assert weights.shape == (3, batch.shape[1], DIM if name == "vap" else 1)
    padding = torch.arange(batch.shape[1])[None, :] >= lengths[:, None]
    assert torch.all(weights[padding] == 0) and torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(1), torch.ones_like(weights.sum(1)))


def test_fully_masked_rows_are_safe():
    for name in HEADS:
        pooled = head(name)(torch.randn(2, 4, DIM), torch.tensor([0, 4]))
        assert torch.isfinite(pooled).all()


@pytest.mark.parametrize("name", HEADS)
def test_output_dims_and_gradients(name):
    module = head(name)
    assert module.output_dim == (DIM if name == "sap" else 2 * DIM)
    batch, lengths = pad(utterances([3, 6]), garbage=0.0)
    batch.requires_grad_(True)
    module(batch, lengths).square().sum().backward()
    for parameter in module.parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    assert batch.grad[0, 3:].abs().sum() == 0  # padding gets no gradient
    assert batch.grad[0, :3].abs().sum() > 0


@pytest.mark.parametrize("name", HEADS)
def test_invariant_to_permuting_frames(name):
    module = head(name)
    (frames,) = utterances([8])
    lengths = torch.tensor([8])
    permuted = frames[torch.randperm(8, generator=torch.Generator().manual_seed(0))]
    torch.testing.assert_close(module(frames[None], lengths), module(permuted[None], lengths))


@pytest.mark.parametrize("name", HEADS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input(name, dtype):
    module = head(name)
    batch, lengths = pad(utterances([3, 5]), garbage=0.0)
    pooled = module(batch.to(dtype), lengths)
    assert pooled.dtype == torch.float32  # computed in the head's own dtype
    expected = module(batch.to(dtype).float(), lengths)
    torch.testing.assert_close(pooled, expected)
    half = head(name).to(dtype)
    assert half(batch, lengths).dtype == dtype


def test_heads_follow_the_formulas():
    (frames,) = utterances([5])
    lengths = torch.tensor([5])
    sap, asp, vap = head("sap"), head("asp"), head("vap")
    linear, _, v = sap.scorer
    w = torch.softmax(torch.tanh(frames @ linear.weight.T + linear.bias) @ v.weight[0], dim=0)
    torch.testing.assert_close(sap(frames[None], lengths)[0], w @ frames)

    linear, _, v = asp.scorer
    w = torch.softmax(torch.tanh(frames @ linear.weight.T + linear.bias) @ v.weight[0], dim=0)
    mu = w @ frames
    sigma = (w @ frames.square() - mu.square()).clamp_min(1e-5).sqrt()
    torch.testing.assert_close(asp(frames[None], lengths)[0], torch.cat([mu, sigma]))

    w1, _, w2 = vap.scorer
    a = torch.softmax(torch.tanh(frames @ w1.weight.T) @ w2.weight.T, dim=0)  # [T, D]
    assert w1.out_features == 128
    mu = (a * frames).sum(0)
    sigma = ((a * frames.square()).sum(0) - mu.square()).clamp_min(1e-5).sqrt()
    torch.testing.assert_close(vap(frames[None], lengths)[0], torch.cat([mu, sigma]))


def test_build_head():
    assert isinstance(build_head("sap", 4), SelfAttentivePooling)
    assert isinstance(build_head("asp", 4), AttentiveStatisticsPooling)
    assert isinstance(build_head("vap", 4), VectorAttentivePooling)
    with pytest.raises(VqpoolError, match="'xap' is not a pooling head; choose from sap, asp, vap"):
        build_head("xap", 4)
