"""k-means product-quantization codebooks: encoding, saving, use by upstreams, and the CLI."""

import csv

import pytest
import torch

from tiny_models import make_hubert, make_wav2vec2_pretraining
from vqpool.cli import main
from vqpool.errors import VqpoolError
from vqpool.upstream import KMeansCodebook, load_upstream


def brute_force(frames, centroids):
    """Nearest centroid per contiguous chunk, by explicit float64 squared distances."""
    codes, start = [], 0
    for chunk_centroids in centroids:
        stop = start + chunk_centroids.shape[1]
        difference = frames[:, None, start:stop].double() - chunk_centroids[None].double()
        codes.append(difference.square().sum(-1).argmin(1))
        start = stop
    return torch.stack(codes, dim=1)


@pytest.fixture(scope="module")
def clustered():
    generator = torch.Generator().manual_seed(0)
    centres = 4 * torch.randn(12, 7, generator=generator)
    return centres[torch.randint(0, 12, (3000,), generator=generator)] + torch.randn(
        3000, 7, generator=generator
    )


def test_encode_is_the_nearest_centroid_per_chunk(clustered, tmp_path):
    codebook = KMeansCodebook.fit(
        clustered, num_codebooks=2, codebook_size=16, seed=0, upstream="x", layer="mean"
    )
    assert (codebook.num_codebooks, codebook.codebook_size, codebook.dim) == (2, 16, 7)
    assert [c.shape for c in codebook.centroids] == [(16, 4), (16, 3)]  # uneven split of D = 7
    queries = torch.randn(5, 40, 7) * 4
    codes = codebook.encode(queries, rows_per_chunk=17)
    assert codes.shape == (5, 40, 2) and codes.dtype == torch.int64
    assert torch.equal(
        codes.reshape(-1, 2), brute_force(queries.reshape(-1, 7), codebook.centroids)
    )
    assert codes.unique().numel() > 8

    loaded = KMeansCodebook.load(codebook.save(tmp_path / "cb.pt"))
    assert loaded.settings == codebook.settings and loaded.path == tmp_path / "cb.pt"
    assert torch.equal(loaded.encode(queries), codes)
    assert loaded.settings["seed"] == 0 and loaded.settings["num_frames"] == 3000
    assert not list(tmp_path.glob(".*tmp*"))


def test_fit_is_seeded(clustered):
    first, second = (
        KMeansCodebook.fit(clustered, codebook_size=8, seed=3, upstream="x", layer="mean")
        for _ in range(2)
    )
    assert all(torch.equal(a, b) for a, b in zip(first.centroids, second.centroids, strict=True))


def test_clear_errors(clustered, tmp_path):
    with pytest.raises(VqpoolError, match="only 20 frames"):
        KMeansCodebook.fit(clustered[:20], codebook_size=32, upstream="x", layer="mean")
    with pytest.raises(VqpoolError, match="not found"):
        KMeansCodebook.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a codebook")
    with pytest.raises(VqpoolError, match="not a vqpool codebook"):
        KMeansCodebook.load(tmp_path / "junk.pt")
    for_ge2e = KMeansCodebook([torch.zeros(8, 40)] * 2, {"upstream": "ge2e", "layer": "mean"})
    with pytest.raises(VqpoolError, match="fitted on 'ge2e'"):
        load_upstream("logmel", codebook=for_ge2e)
    wrong_dim = KMeansCodebook([torch.zeros(8, 30)] * 2, {"upstream": "logmel", "layer": "mean"})
    with pytest.raises(VqpoolError, match="dimension 60"):
        load_upstream("logmel", codebook=wrong_dim)


def test_upstreams_encode_their_codebook_layer(tmp_path):
    hubert = str(make_hubert(tmp_path / "hubert"))
    generator = torch.Generator().manual_seed(1)
    audio = 0.1 * torch.randn(2, 5000, generator=generator)
    lengths = torch.tensor([5000, 3000])
    plain = load_upstream(hubert)
    cnn = plain(audio, lengths, layers="cnn")
    frames = cnn.frames[0, : cnn.frame_lengths[0]]
    codebook = KMeansCodebook.fit(frames, codebook_size=4, upstream=hubert, layer="cnn")
    upstream = load_upstream(hubert, layers="last", codebook=codebook)
    assert (upstream.num_codebooks, upstream.codebook_size) == (2, 4)
    out = upstream(audio, lengths)
    assert torch.equal(out.frames, plain(audio, lengths, layers="last").frames)
    for i, n in enumerate(out.frame_lengths.tolist()):
        expected = brute_force(cnn.frames[i, :n], codebook.centroids)
        assert torch.equal(out.codes[i, :n], expected)
        assert not out.codes[i, n:].any()
    assert upstream.describe()["codebook"]["layer"] == "cnn"


def test_a_codebook_replaces_the_wav2vec2_quantizer(tmp_path):
    model = str(make_wav2vec2_pretraining(tmp_path / "w2v", norm="layer"))
    audio, lengths = 0.1 * torch.randn(1, 8000), torch.tensor([8000])
    frames = load_upstream(model, layers="last")(audio, lengths).frames[0]
    codebook = KMeansCodebook.fit(
        frames, num_codebooks=3, codebook_size=5, upstream=model, layer="last"
    )
    upstream = load_upstream(model, codebook=codebook)
    assert (upstream.num_codebooks, upstream.codebook_size) == (3, 5)
    assert upstream.describe()["codes"] == "codebook"
    assert torch.equal(upstream(audio, lengths).codes[0], brute_force(frames, codebook.centroids))


def test_cli_fits_a_logmel_codebook_on_the_train_split(fsdd_root, tmp_path, capsys):
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "split"])
        for i in range(6):
            writer.writerow([fsdd_root / f"{i}_jackson_0.wav", "train" if i < 4 else "test"])
    out = tmp_path / "logmel.codebook"
    argv = [
        "codebook",
        "fit",
        "--upstream",
        "logmel",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--size",
        "16",
        "--max-frames",
        "100000",
        "--seed",
        "1",
    ]
    assert main(argv) == 0
    assert "16 centroids" in capsys.readouterr().out
    codebook = KMeansCodebook.load(out)
    assert codebook.settings["num_utterances"] == 4 and codebook.upstream == "logmel"
    assert codebook.settings["num_frames"] == sum(
        load_upstream("logmel").num_frames(len(load_audio_16k(fsdd_root / f"{i}_jackson_0.wav")))
        for i in range(4)
    )
    upstream = load_upstream("logmel", codebook=out)
    assert upstream.describe()["codebook"]["path"] == str(out)

    capped = tmp_path / "capped.codebook"
    assert main([*argv[:7], str(capped), "--size", "16", "--max-frames", "50"]) == 0
    assert KMeansCodebook.load(capped).settings["num_frames"] == 50
    assert main([*argv[:7], str(capped), "--split", "validation"]) == 1
    assert "no rows with split 'validation'" in capsys.readouterr().err


def load_audio_16k(path):
    from vqpool.audio import load_audio

    return load_audio(path, 16000)
