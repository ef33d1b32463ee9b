"""CorpusStats: counts against brute force, streaming, the fitted transforms, files, errors."""

from collections import Counter

import numpy as np
import pytest
import torch

from vqpool.errors import VqpoolError
from vqpool.pooling.stats import CorpusStats, _SortedDirectory, code_tuple_ids

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


def random_batches(seed=0, count=4, dim=6, groups=2, device="cpu"):
    """Padded batches with heavy code repetition, codes in [0, 4) (fitted with V = 5, so code 4
    is never seen) and garbage on the padding."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        b, length = (
            int(torch.randint(1, 7, (1,), generator=generator)),
            int(torch.randint(1, 9, (1,), generator=generator)),
        )
        lengths = torch.randint(1, length + 1, (b,), generator=generator)
        frames = torch.randn(b, length, dim, generator=generator) + 3.0
        codes = torch.randint(0, 4, (b, length, groups), generator=generator)
        padding = torch.arange(length)[None, :] >= lengths[:, None]
        codes[padding] = -1
        frames[padding] = 1e6
        batches.append((frames.to(device), lengths.to(device), codes.to(device)))
    return batches


def true_frames(batches):
    for frames, lengths, codes in batches:
        for i, n in enumerate(lengths.tolist()):
            yield frames[i, :n].double().cpu(), codes[i, :n].cpu()


@pytest.mark.parametrize("device", DEVICES)
def test_counts_match_brute_force(device):
    batches = random_batches(device=device)
    stats = CorpusStats.fit(iter(batches), codebook_size=5)
    per_codebook = [Counter(), Counter()]
    tuples = Counter()
    utterances = list(true_frames(batches))
    for _, codes in utterances:
        for row in codes.tolist():
            tuples[tuple(row)] += 1
            for g, code in enumerate(row):
                per_codebook[g][code] += 1
    expected = torch.tensor([[per_codebook[g][c] for c in range(5)] for g in range(2)])
    assert stats.code_counts.dtype == torch.long
    assert torch.equal(stats.code_counts, expected)
    assert stats.total_frames == sum(tuples.values())
    assert stats.num_utterances == len(utterances)
    assert (stats.num_codebooks, stats.codebook_size, stats.dim) == (2, 5, 6)

    probe = torch.randint(0, 5, (3, 7, 2)).to(device)  # code 4 is never seen: frequency 0
    frequency = stats.tuple_frequency(probe)
    assert frequency.dtype == torch.float32 and frequency.device == probe.device
    expected_frequency = [
        [tuples[tuple(row)] / stats.total_frames for row in utterance]
        for utterance in probe.tolist()
    ]
    torch.testing.assert_close(frequency.cpu(), torch.tensor(expected_frequency))


@pytest.mark.parametrize("dtype", [torch.int16, torch.long])
@pytest.mark.parametrize("groups", [1, 2, 3])
def test_code_tuple_ids_formula(groups, dtype):
    codes = torch.randint(0, 7, (3, 4, groups), dtype=dtype)
    ids = code_tuple_ids(codes, 7)
    assert ids.dtype == torch.long and ids.shape == (3, 4)
    expected = [
        [sum(q * 7**g for g, q in enumerate(row)) for row in rows] for rows in codes.tolist()
    ]
    assert ids.tolist() == expected


# V^G = 50^2 = 2500: 2 x 9 frames take the binary search over seen tuple ids, 20 x 9 the table
@pytest.mark.parametrize("batch", [2, 20])
def test_tuple_frequency_search_and_table_match_brute_force(batch):
    batches = random_batches(seed=7)
    stats = CorpusStats.fit(batches, codebook_size=50)
    tuples = Counter(tuple(row) for _, codes in true_frames(batches) for row in codes.tolist())
    probe = torch.randint(0, 6, (batch, 9, 2))  # codes 4 and 5 are never seen
    probe[:, -2:] = torch.tensor([-1, 60])[:, None]  # padding garbage: ids outside [0, V^G)
    expected = [
        [tuples[tuple(row)] / stats.total_frames for row in utterance]
        for utterance in probe.tolist()
    ]
    torch.testing.assert_close(stats.tuple_frequency(probe), torch.tensor(expected))
    assert (stats.tuple_frequency(probe)[:, -2:] == 0).all()


def test_streaming_equals_one_batch():
    batches = random_batches(seed=1, count=5)
    length = max(frames.shape[1] for frames, _, _ in batches)

    def padded(x, value):
        return torch.nn.functional.pad(x, (0, 0, 0, length - x.shape[1]), value=value)

    whole = (
        torch.cat([padded(f, 0.0) for f, _, _ in batches]),
        torch.cat([n for _, n, _ in batches]),
        torch.cat([padded(c, 0) for _, _, c in batches]),
    )
    streamed = CorpusStats.fit((batch for batch in batches), codebook_size=5)
    single = CorpusStats.fit([whole], codebook_size=5)
    for name in ("code_counts", "tuple_ids", "tuple_counts"):
        assert torch.equal(getattr(streamed, name), getattr(single, name))
    torch.testing.assert_close(streamed.whitening_mean, single.whitening_mean)
    for stats in (streamed, single):  # products free of the SVD's sign choices
        stats.whitening_product = stats.whitening_matrix @ stats.whitening_matrix.T
        stats.softdecay_product = (
            stats.softdecay_basis * stats.softdecay_scale @ stats.softdecay_basis.T
        )
    torch.testing.assert_close(streamed.whitening_product, single.whitening_product)
    torch.testing.assert_close(streamed.softdecay_product, single.softdecay_product)
    assert (streamed.total_frames, streamed.num_utterances) == (
        single.total_frames,
        single.num_utterances,
    )


def ap_matrix(batches):
    return torch.stack([frames.mean(0) for frames, _ in true_frames(batches)])


def test_whitening_gives_identity_covariance():
    batches = random_batches(seed=2, count=12, dim=5)
    x = ap_matrix(batches)
    torch.testing.assert_close(CorpusStats.fit(batches, 5).whitening_mean, x.mean(0))  # fp32 AP
    stats = CorpusStats.fit([(x, torch.ones(len(x), dtype=torch.long), None)])
    whitened = (x - stats.whitening_mean) @ stats.whitening_matrix
    # W whitens the unnormalised scatter, so the whitened scatter is exactly the identity
    torch.testing.assert_close(whitened.T @ whitened, torch.eye(5, dtype=torch.float64))


def fit_vectors(rows):
    vectors = torch.tensor(rows, dtype=torch.float64)
    return CorpusStats.fit([(vectors, torch.ones(len(rows), dtype=torch.long), None)])


def test_whitening_hand_examples():
    # (1, 0), (-1, 0), (0, 2), (0, -2): mean 0, scatter diag(2, 8); the SVD puts s = 8 first,
    # so W = [[0, 1/sqrt(2)], [1/sqrt(8), 0]] up to the sign of each column.
    stats = fit_vectors([[1, 0], [-1, 0], [0, 2], [0, -2]])
    torch.testing.assert_close(stats.whitening_mean, torch.zeros(2, dtype=torch.float64))
    expected = torch.tensor([[0, 2**-0.5], [8**-0.5, 0]], dtype=torch.float64)
    torch.testing.assert_close(stats.whitening_matrix.abs(), expected)
    # (2, 1), (0, 0), (-2, -1): scatter [[8, 4], [4, 2]] has eigenvalues 10 and 0; the null
    # direction gets weight 0 instead of 1 / sqrt(0), so W = [u / sqrt(10), 0], u = (2, 1) / sqrt(5).
    stats = fit_vectors([[2, 1], [0, 0], [-2, -1]])
    expected = torch.tensor([[2 / 50**0.5, 0], [1 / 50**0.5, 0]], dtype=torch.float64)
    torch.testing.assert_close(stats.whitening_matrix.abs(), expected)


def test_softdecay_matches_numpy_formula():
    x = ap_matrix(random_batches(seed=3, count=10, dim=4))
    stats = CorpusStats.fit(
        [(x, torch.ones(len(x), dtype=torch.long), None)], include=["softdecay"]
    )
    assert stats.include == ("softdecay",) and stats.whitening_matrix is None
    x = x.numpy()
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    alpha = -0.6
    f = -np.log(1 - alpha * (s + alpha) + 1e-7) / alpha
    f = f * s.max() / f.max()
    transform = vt.T @ np.diag(f / s) @ vt
    probe = np.random.default_rng(0).normal(size=(3, 4))
    ours = (
        torch.from_numpy(probe) @ stats.softdecay_basis * stats.softdecay_scale
    ) @ stats.softdecay_basis.T
    np.testing.assert_allclose(ours.numpy(), probe @ transform, rtol=1e-9, atol=1e-12)
    # the training vectors themselves map to U diag(f(s)) V^T
    np.testing.assert_allclose(
        np.linalg.svd(x @ transform, compute_uv=False), np.sort(f)[::-1], rtol=1e-9
    )


def test_fit_from_ap_vectors_or_codes_alone_and_include():
    batches = random_batches(seed=4)
    full = CorpusStats.fit(batches, codebook_size=5)
    ap_only = CorpusStats.fit([(ap_matrix([batch]).float(), batch[1], None) for batch in batches])
    assert ap_only.include == ("whitening", "softdecay") and ap_only.code_counts is None
    torch.testing.assert_close(ap_only.whitening_mean, full.whitening_mean)
    assert ap_only.total_frames == full.total_frames
    codes_only = CorpusStats.fit([(None, n, c) for _, n, c in batches], codebook_size=5)
    assert codes_only.include == ("counts",) and codes_only.dim is None
    assert torch.equal(codes_only.code_counts, full.code_counts)
    counts = CorpusStats.fit(batches, codebook_size=5, include="counts")
    assert counts.include == ("counts",) and counts.whitening_matrix is None
    with pytest.raises(VqpoolError, match="frames"):
        CorpusStats.fit([(None, n, c) for _, n, c in batches], 5, include=["whitening"])
    with pytest.raises(VqpoolError, match="unknown"):
        CorpusStats.fit(batches, 5, include=["pca"])
    with pytest.raises(VqpoolError, match="codebook_size"):
        CorpusStats.fit(batches)
    one = (torch.randn(1, 6), torch.ones(1, dtype=torch.long), None)
    with pytest.raises(VqpoolError, match="at least 2 utterances"):
        CorpusStats.fit([one], include=["whitening"])  # asked for: an error
    assert CorpusStats.fit([one]).include == ("softdecay",)  # by default: left out, not failed
    assert CorpusStats.fit([one], include=["softdecay"]).softdecay_basis.shape == (6, 1)
    with pytest.raises(VqpoolError, match="empty"):
        CorpusStats.fit([], 5)
    with pytest.raises(VqpoolError, match="batch 1"):
        CorpusStats.fit([batches[0], (None, *batches[1][1:])], 5)
    with pytest.raises(VqpoolError, match=r"batch \d.*\[0, codebook_size=3\)"):
        CorpusStats.fit(batches, 3)


def test_save_load_round_trip_and_bad_files(tmp_path):
    stats = CorpusStats.fit(random_batches(seed=5), codebook_size=5)
    path = tmp_path / "stats" / "train.pt"
    stats.save(path)
    loaded = CorpusStats.load(path)
    assert repr(loaded) == repr(stats)
    for name in (
        "code_counts",
        "tuple_ids",
        "tuple_counts",
        "whitening_mean",
        "whitening_matrix",
        "softdecay_basis",
        "softdecay_scale",
    ):
        assert torch.equal(getattr(loaded, name), getattr(stats, name))
    assert [p.name for p in path.parent.iterdir()] == ["train.pt"]  # no temporary file left

    with pytest.raises(VqpoolError, match="not found"):
        CorpusStats.load(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:100])
    with pytest.raises(VqpoolError, match="corrupt.pt: cannot read"):
        CorpusStats.load(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(VqpoolError, match="not a vqpool corpus statistics file"):
        CorpusStats.load(foreign)


def test_check_codes():
    stats = CorpusStats.fit(random_batches(seed=6), codebook_size=5)
    stats.check_codes(torch.randint(0, 5, (2, 3, 2)))
    with pytest.raises(VqpoolError, match="G=3.*G=2"):
        stats.check_codes(torch.zeros(2, 3, 3, dtype=torch.long))
    with pytest.raises(VqpoolError, match="V=5"):
        stats.check_codes(torch.full((2, 3, 2), 5))
    with pytest.raises(VqpoolError, match="integer"):
        stats.check_codes(torch.zeros(2, 3, 2))
    padded = torch.tensor([[[1, 2], [-1, -1]]])
    stats.check_codes(padded, torch.tensor([1]))  # padding is not checked when lengths are given
    with pytest.raises(VqpoolError, match="V=5"):
        stats.check_codes(padded)
    frames_only = CorpusStats.fit([(torch.randn(3, 4), torch.ones(3, dtype=torch.long), None)])
    with pytest.raises(VqpoolError, match="'counts'"):
        frames_only.check_codes(padded)
    with pytest.raises(VqpoolError, match="vq-sif"):
        frames_only.tuple_frequency(padded)


@pytest.mark.parametrize("count", [0, 1, 2, 1000, 5000])
def test_bucket_directory_finds_what_a_binary_search_finds(count):
    """Hash-like keys are found by their bucket directory exactly where searchsorted says,
    misses are -1; crowded exact ids are left to the binary search."""
    generator = torch.Generator().manual_seed(count)
    keys = torch.randint(-(2**63), 2**63 - 1, (count,), generator=generator).unique()
    queries = torch.cat([keys, torch.randint(-(2**63), 2**63 - 1, (3000,), generator=generator),
                         torch.tensor([-(2**63), 2**63 - 1, 0])])
    directory = _SortedDirectory(keys)
    assert directory.useful
    expected = torch.full_like(queries, -1)
    if count:
        position = torch.searchsorted(keys, queries).clamp_max(keys.numel() - 1)
        expected = torch.where(keys[position] == queries, position, -1)
    assert torch.equal(directory.find(queries), expected)
    assert not _SortedDirectory(torch.arange(1000)).useful  # small exact ids share one bucket


def test_sif_frequencies_of_hashed_tuples_match_brute_force():
    """32 codebooks of 2048 codes: tuple ids are hashes, looked up through the directory."""
    generator = torch.Generator().manual_seed(5)
    codes = torch.randint(0, 3, (6, 40, 32), generator=generator)  # few tuples, many repeats
    lengths = torch.randint(1, 41, (6,), generator=generator)
    frames = torch.zeros(6, 40, 2)
    stats = CorpusStats.fit([(frames, lengths, codes)], codebook_size=2048, include=["counts"], progress=False)
    seen = Counter(tuple(codes[b, t].tolist()) for b in range(6) for t in range(int(lengths[b])))
    probe = torch.randint(0, 3, (4, 40, 32), generator=generator)
    probe[:2] = codes[:2]
    expected = torch.tensor([[seen[tuple(q)] / stats.total_frames for q in row] for row in probe.tolist()])
    torch.testing.assert_close(stats.tuple_frequency(probe), expected)
    assert expected.count_nonzero() > 0
