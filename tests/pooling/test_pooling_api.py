"""The public pooling API: exports, dtypes, dispatch to the baselines, and errors users can cause."""

import pytest
import torch

import vqpool
from vqpool.errors import ParameterError, VqpoolError
from vqpool.pooling import (
    HEADS,
    METHODS,
    SEMANTICS,
    CorpusStats,
    baselines,
    frame_weights,
    get_method,
    output_dim,
    pool,
)

CODE_METHODS = [m for m in METHODS if get_method(m).needs_codes]

B, L, D, G, V = 3, 7, 5, 2, 4


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(B, L, D, generator=generator)
    lengths = torch.tensor([7, 3, 1])
    codes = torch.randint(0, V, (B, L, G), generator=generator)
    return frames, lengths, codes


@pytest.fixture
def stats(batch):
    frames, lengths, codes = batch
    return CorpusStats.fit([(frames, lengths, codes)], codebook_size=V)


def test_exports():
    assert METHODS == (
        "ap", "sp", "whitening", "softdecay", "vq-squash-and", "vq-squash-or", "vq-allsquash-and",
        "vq-allsquash-or", "vq-sif", "vq-lp", "vq-gp", "vq-bp",
    )  # fmt: skip
    weighted = {m for m in METHODS if get_method(m).weights is not None}
    assert weighted == {"ap", *CODE_METHODS} and set(CODE_METHODS) == {
        m for m in METHODS if m.startswith("vq-")
    }
    assert {m for m in METHODS if get_method(m).needs_stats} == {
        "whitening", "softdecay", "vq-sif", "vq-gp", "vq-bp"
    }
    assert HEADS == ("sap", "asp", "vap") and SEMANTICS == ("paper", "reference")
    assert vqpool.METHODS is METHODS and vqpool.pool is pool and vqpool.CorpusStats is CorpusStats


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("semantics", SEMANTICS)
def test_every_method_pools_to_its_output_dim(batch, stats, method, semantics):
    frames, lengths, codes = batch
    pooled = pool(frames, lengths, codes, method, stats, semantics=semantics)
    assert pooled.shape == (B, output_dim(method, D)) and pooled.dtype == torch.float32
    assert torch.isfinite(pooled).all()


def test_output_dim_of_heads():
    assert [output_dim(head, 10) for head in HEADS] == [10, 20, 20]
    with pytest.raises(VqpoolError, match="choose from"):
        output_dim("max", 10)


def test_ap_is_the_mean_of_true_frames(batch):
    frames, lengths, _ = batch
    expected = torch.stack([frames[b, :n].mean(0) for b, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(pool(frames, lengths, method="ap"), expected)
    assert frame_weights(lengths, None, "ap").shape == (B, 7)


def test_baselines_are_dispatched(batch, stats):
    frames, lengths, codes = batch
    ap = pool(frames, lengths, method="ap")
    torch.testing.assert_close(
        pool(frames, lengths, method="sp"), baselines.statistics_pooling(frames, lengths)
    )
    torch.testing.assert_close(
        pool(frames, lengths, None, "whitening", stats), baselines.whiten(ap, stats)
    )
    for semantics in SEMANTICS:
        expected = baselines.soft_decay(ap, stats, semantics)
        torch.testing.assert_close(
            pool(frames, lengths, None, "softdecay", stats, semantics=semantics), expected
        )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_frames_accumulate_in_fp32(batch, dtype):
    frames, lengths, codes = batch
    half = frames.to(dtype)
    pooled = pool(half, lengths, codes, "vq-lp")
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, pool(half.float(), lengths, codes, "vq-lp"))


@pytest.mark.parametrize("method", CODE_METHODS)
def test_every_integer_dtype_of_codes_pools_alike(batch, stats, method):
    """The methods work in int32 whatever integer codes they get (stores give int32): uint8,
    int16, int32 and int64 codes give identical vectors, and the caller's codes stay as they were."""
    frames, lengths, codes = batch
    expected = pool(frames, lengths, codes.long(), method, stats)
    for dtype in (torch.uint8, torch.int16, torch.int32):
        narrow = codes.to(dtype)
        kept = narrow.clone()
        torch.testing.assert_close(pool(frames, lengths.int(), narrow, method, stats), expected, rtol=0, atol=0)
        assert torch.equal(narrow, kept)


def test_codes_beyond_int32_are_refused(batch):
    frames, lengths, codes = batch
    huge = codes.long().clone()
    huge[0, 0, 0] = 2**32 + 1  # would wrap to 1 in int32
    with pytest.raises(ParameterError, match="below 2\\^31"):
        pool(frames, lengths, huge, "vq-lp")


def test_smoothing_zero_with_unseen_codes_is_an_error(batch):
    frames, lengths, codes = batch
    stats = CorpusStats.fit(
        [(None, lengths, torch.zeros_like(codes))], codebook_size=V, include=["counts"]
    )
    with pytest.raises(VqpoolError, match="smoothing"):
        pool(frames, lengths, codes.clamp_min(1), "vq-gp", stats, smoothing=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(method="max"), "'max' is not a pooling method; choose from ap, sp"),
        (dict(semantics="figure"), "semantics must be one of paper, reference; got 'figure'"),
        (dict(frames=torch.zeros(B, L)), "frames must be a float tensor"),
        (dict(frames=torch.zeros(B, L, D, dtype=torch.long)), "frames must be a float tensor"),
        (dict(lengths=torch.tensor([7.0, 3.0, 1.0])), "lengths must be an integer tensor"),
        (dict(lengths=torch.tensor([[7, 3, 1]])), "lengths must be an integer tensor"),
        (dict(lengths=torch.tensor([7, 3])), "2 entries for a batch of 3"),
        (dict(lengths=torch.tensor([7, 0, 1])), r"lengths must lie in \[1, L=7\]"),
        (dict(lengths=torch.tensor([8, 3, 1])), r"lengths must lie in \[1, L=7\]"),
        (dict(codes=None), "codes are needed by method 'vq-lp'"),
        (dict(codes=torch.zeros(B, L, G)), "codes must be an integer tensor"),
        (dict(codes=torch.zeros(B, L, G, dtype=torch.bool)), "codes must be an integer tensor"),
        (
            dict(
                codes=torch.zeros(B, L),
            ),
            "codes must be an integer tensor",
        ),
        (dict(codes=torch.zeros(B, L + 1, G, dtype=torch.long)), "codes have shape"),
        (dict(codes=torch.full((B, L, G), -1)), "non-negative"),
        (dict(method="vq-gp", stats=None), "stats is needed by method 'vq-gp'"),
        (dict(method="vq-sif", a=0.0), "a must be a positive number"),
        (dict(method="vq-gp", smoothing=-1.0), "smoothing must be a finite number >= 0"),
        (dict(method="ap", smoothing=float("inf")), "smoothing must be a finite number >= 0"),
        (dict(method="ap", beta=1.0), "beta is not a pooling option"),
        (dict(method="vq-gp", codes=torch.full((B, L, G), V)), "V=4"),
        (dict(method="vq-bp", codes=torch.zeros(B, L, G + 1, dtype=torch.long)), "G=3"),
    ],
)
def test_errors(batch, stats, change, message):
    frames, lengths, codes = batch
    arguments = dict(frames=frames, lengths=lengths, codes=codes, method="vq-lp", stats=stats)
    options = {key: change.pop(key) for key in ("semantics", "a", "smoothing") if key in change}
    arguments.update(change)
    with pytest.raises(VqpoolError, match=message):
        pool(**arguments, **options)


def test_padding_codes_are_never_read(batch):
    frames, lengths, codes = batch
    garbage = codes.clone()
    garbage[1, 3:] = -7
    garbage[2, 1:] = 10**6
    for method in CODE_METHODS:
        stats = CorpusStats.fit([(None, lengths, codes)], codebook_size=V, include=["counts"])
        torch.testing.assert_close(
            pool(frames, lengths, garbage, method, stats),
            pool(frames, lengths, codes, method, stats),
        )


def test_frame_weights_rejects_methods_without_weights(batch, stats):
    _, lengths, codes = batch
    with pytest.raises(VqpoolError, match="not a weighted average of frames"):
        frame_weights(lengths, codes, "sp")


def test_mismatched_devices_are_an_error(batch):
    frames, lengths, codes = batch
    with pytest.raises(VqpoolError, match="meta"):
        pool(frames, lengths.to("meta"), codes)
    with pytest.raises(VqpoolError, match="meta"):
        pool(frames, lengths, codes.to("meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("semantics", SEMANTICS)
def test_cuda_matches_cpu(batch, stats, semantics):
    frames, lengths, codes = batch
    for method in METHODS:
        cpu = pool(frames, lengths, codes, method, stats, semantics=semantics)
        cuda = pool(frames.cuda(), lengths.cuda(), codes.cuda(), method, stats, semantics=semantics)
        assert cuda.device.type == "cuda"
        torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=1e-4, msg=method)


def test_codes_a_method_does_not_read_are_checked_for_shape_only():
    """AP and SP read no codes: any integer values give the result of no codes at all (no pass
    over them), but codes of the wrong shape are still refused."""
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(3, 7, 4, generator=generator)
    lengths = torch.tensor([7, 5, 2])
    odd = torch.randint(0, 10**6, (3, 7, 2), generator=generator)  # beyond any V
    odd[:, 0, 1] = -3  # and negative on true frames
    for method in ("ap", "sp"):
        assert torch.equal(pool(frames, lengths, odd, method), pool(frames, lengths, None, method))
        with pytest.raises(ParameterError, match="codes"):
            pool(frames, lengths, odd[:, :6], method)
    assert torch.equal(frame_weights(lengths, odd, "ap"), frame_weights(lengths, None, "ap")[:, :7])
    with pytest.raises(ParameterError, match="non-negative"):
        pool(frames, lengths, odd, "vq-lp")


@pytest.mark.parametrize("check_from", [0, None])  # zero padding checked (used uncopied), or copied
@pytest.mark.parametrize("method", CODE_METHODS)
def test_padding_is_ignored_whatever_it_holds_and_codes_are_not_written(method, check_from, monkeypatch):
    """Zero padding may be used as it is (no copy); any other padding gives the same vectors,
    and the caller's codes are never changed."""
    if check_from is not None:
        monkeypatch.setattr("vqpool.pooling.api.ZERO_CHECK_ELEMENTS", check_from)
    generator = torch.Generator().manual_seed(3)
    frames = torch.randn(4, 9, 5, generator=generator)
    lengths = torch.tensor([9, 6, 3, 1])
    codes = torch.randint(0, 4, (4, 9, 2), generator=generator)
    mask = torch.arange(9)[None] < lengths[:, None]
    zero_padded = codes.masked_fill(~mask[..., None], 0)
    junk_padded = torch.where(mask[..., None], codes, 3)
    stats = CorpusStats.fit([(frames, lengths, zero_padded)], codebook_size=4, progress=False)
    kept = zero_padded.clone(), junk_padded.clone()
    expected = pool(frames, lengths, zero_padded, method, stats)
    torch.testing.assert_close(pool(frames, lengths, junk_padded, method, stats), expected,
                               rtol=0, atol=0)
    assert torch.equal(zero_padded, kept[0]) and torch.equal(junk_padded, kept[1])
