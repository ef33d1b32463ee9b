"""`vqpool.Encoder`: every kind of input gives the vectors of the same audio read from files,
which are exactly what `extract` + the benchmark's pooler give; fit, save and load; long
recordings in windows; and the HEAR module against the real `hearvalidator` checks."""

import csv
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vqpool
from vqpool.batching import windows
from vqpool.encode import Encoder
from vqpool.errors import VqpoolError
from vqpool.extract import extract
from vqpool.upstream.codebook import KMeansCodebook
from vqpool.vectors import Fold, FoldPooler


@pytest.fixture(scope="module")
def files(fsdd_root: Path) -> list[str]:
    return [str(fsdd_root / f"{digit}_{speaker}_{k}.wav")
            for speaker in ("george", "jackson") for digit in range(4) for k in range(3)]


@pytest.fixture(scope="module")
def codebook() -> KMeansCodebook:
    """Random centroids quantize log-mel frames well enough here, without k-means' time."""
    generator = torch.Generator().manual_seed(0)
    return KMeansCodebook([torch.randn(8, 40, generator=generator) for _ in range(2)],
                          {"upstream": "logmel", "layer": "mean"})


@pytest.fixture(scope="module")
def encoder(codebook: KMeansCodebook) -> Encoder:
    return Encoder("logmel", "vq-lp", codebook=codebook)


@pytest.fixture(scope="module")
def expected(encoder: Encoder, files: list[str]) -> np.ndarray:
    return encoder.encode(files)


def test_encode_equals_extract_and_the_benchmarks_pooler(encoder: Encoder, files: list[str],
                                                         expected: np.ndarray, tmp_path: Path) -> None:
    rows = [{"id": Path(f).stem, "path": f, "label": "x", "split": "train"} for f in files]
    store = extract(rows, encoder.upstream, tmp_path / "store", progress=False)
    everything = list(range(len(store)))
    pooled = FoldPooler(store, ["vq-lp"], progress=False).vectors(Fold(1, everything, [], everything), everything)
    by_id = {meta["id"]: pooled["vq-lp"][i].numpy() for i, meta in enumerate(store.meta)}
    stored = np.stack([by_id[Path(f).stem] for f in files])
    assert expected.shape == (len(files), 80) and expected.dtype == np.float32
    np.testing.assert_array_equal(expected, stored)  # bit for bit


@pytest.mark.parametrize("norm", ["group"])
def test_a_model_that_must_not_be_padded_gives_the_same_vectors_batched_or_alone(
        norm: str, files: list[str], tmp_path: Path) -> None:
    from tiny_models import make_wav2vec2_pretraining

    model = make_wav2vec2_pretraining(tmp_path / "w2v", norm=norm)
    encoder = Encoder(str(model), "vq-squash-and")
    assert not encoder.upstream.pads_safely
    together = encoder.encode(files[:6] + files[:2], return_tensors="pt")
    alone = torch.cat([encoder.encode([f], return_tensors="pt") for f in files[:6] + files[:2]])
    # Batched matrix products round differently; the frames are kept in fp16.
    torch.testing.assert_close(together, alone, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(together[6:], together[:2], atol=0, rtol=0)


def test_waveforms_in_memory_equal_their_files(encoder: Encoder, files: list[str],
                                               expected: np.ndarray) -> None:
    waves = [soundfile.read(f, dtype="float32")[0] for f in files]
    np.testing.assert_array_equal(encoder.encode(waves, sample_rate=8000), expected)
    tensors = encoder.encode([torch.from_numpy(w) for w in waves], sample_rate=8000, return_tensors="pt")
    assert isinstance(tensors, torch.Tensor) and torch.equal(tensors, torch.from_numpy(expected))
    same_length = np.stack([w[:2000] for w in waves[:3]])  # a [n, samples] batch
    np.testing.assert_array_equal(encoder.encode(same_length, sample_rate=8000),
                                  encoder.encode(list(same_length), sample_rate=8000))
    with pytest.raises(VqpoolError, match="sample_rate is needed"):
        encoder.encode(waves)


def test_a_manifest_and_its_rows(encoder: Encoder, files: list[str], expected: np.ndarray,
                                 tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path", "label"])
        writer.writerows([Path(f).stem, f, "x"] for f in files)
    np.testing.assert_array_equal(encoder.encode(manifest), expected)
    np.testing.assert_array_equal(encoder.encode([{"path": f} for f in files]), expected)


def test_hugging_face_datasets_in_every_form(encoder: Encoder, files: list[str],
                                             expected: np.ndarray) -> None:
    from datasets import Audio, Dataset

    by_path = Dataset.from_dict({"audio": files}).cast_column("audio", Audio(decode=False))
    np.testing.assert_array_equal(encoder.encode(by_path), expected)
    np.testing.assert_array_equal(encoder.encode(by_path["audio"]), expected)  # a column
    blobs = [{"bytes": Path(f).read_bytes(), "path": None} for f in files]
    by_bytes = Dataset.from_dict({"sound": blobs}).cast_column("sound", Audio(decode=False))
    np.testing.assert_array_equal(encoder.encode(by_bytes, audio_column="sound"), expected)
    decoded = [{"array": soundfile.read(f, dtype="float32")[0], "sampling_rate": 8000} for f in files]
    np.testing.assert_array_equal(encoder.encode(decoded), expected)  # datasets < 4

    class Decoder:  # what datasets 4+ returns: a torchcodec AudioDecoder
        def __init__(self, path: str) -> None:
            self.path = path

        def get_all_samples(self) -> types.SimpleNamespace:
            samples, rate = soundfile.read(self.path, dtype="float32", always_2d=True)
            return types.SimpleNamespace(data=torch.from_numpy(samples.T.copy()), sample_rate=rate)

    np.testing.assert_array_equal(encoder.encode([Decoder(f) for f in files]), expected)
    with pytest.raises(VqpoolError, match="audio_column 'wave' is not a column"):
        encoder.encode(by_path, audio_column="wave")


def test_lhotse_cuts_with_a_slice_of_a_longer_recording(encoder: Encoder, files: list[str],
                                                        expected: np.ndarray, tmp_path: Path) -> None:
    from lhotse import CutSet, MonoCut, Recording

    cuts = CutSet.from_cuts(Recording.from_file(f, recording_id=Path(f).stem).to_cut() for f in files)
    np.testing.assert_array_equal(encoder.encode(cuts), expected)
    first, second = (soundfile.read(f, dtype="float32")[0] for f in files[:2])
    joined = tmp_path / "joined.wav"
    soundfile.write(joined, np.concatenate([first, second]), 8000, subtype="FLOAT")
    recording = Recording.from_file(joined)
    sliced = MonoCut("second", start=len(first) / 8000, duration=len(second) / 8000, channel=0,
                     recording=recording)
    np.testing.assert_array_equal(encoder.encode(CutSet.from_cuts([sliced])), expected[1:2])


def test_fit_save_and_load(files: list[str], tmp_path: Path) -> None:
    encoder = vqpool.Encoder("logmel", "vq-gp")
    assert encoder.missing == ["codes", "stats"]
    with pytest.raises(VqpoolError, match=r"needs a k-means codebook .* and corpus statistics: call encoder.fit"):
        encoder.encode(files[:2])
    assert encoder.fit(files, codebook_size=16, num_codebooks=2) is encoder
    assert encoder.missing == [] and encoder.upstream.num_codebooks == 2 and encoder.stats.num_utterances == len(files)
    vectors = encoder.encode(files)
    bundle = encoder.save(tmp_path / "enc.vqpool")
    loaded = vqpool.Encoder.load(bundle)
    assert (loaded.method, loaded.upstream.name, loaded.dim) == ("vq-gp", "logmel", 80)
    np.testing.assert_array_equal(loaded.encode(files), vectors)
    weights = loaded.frame_weights(files[:3])
    frames = loaded.frames(files[:3])
    for w, (f, c) in zip(weights, frames, strict=True):
        assert w.shape == (f.shape[0],) and c.shape == (f.shape[0], 2)
        torch.testing.assert_close(w.sum(), torch.tensor(1.0))
        expected_w = vqpool.frame_weights(torch.tensor([f.shape[0]]), c[None], "vq-gp", loaded.stats)[0]
        torch.testing.assert_close(w, expected_w)
    with pytest.raises(VqpoolError, match="not a vqpool encoder bundle file"):
        vqpool.Encoder.load(files[0])  # a WAV file
    with pytest.raises(VqpoolError, match="'sap' is a supervised head"):
        vqpool.Encoder("logmel", "sap")


def test_a_missing_file_is_named(encoder: Encoder, tmp_path: Path) -> None:
    with pytest.raises(VqpoolError, match=r"nothing\.wav: no such file"):
        encoder.encode([str(tmp_path / "nothing.wav")])


@settings(max_examples=200, deadline=None)
@given(num_samples=st.integers(1, 200_000), hop=st.sampled_from([160, 320]),
       chunk_hops=st.integers(4, 400), overlap_hops=st.integers(1, 40))
def test_windows_tile_the_frames_exactly(num_samples: int, hop: int, chunk_hops: int,
                                         overlap_hops: int) -> None:
    chunk, overlap = chunk_hops * hop, min(overlap_hops * hop, (chunk_hops * hop) // 2 - hop)
    overlap = max(overlap, 0)
    num_frames = num_samples // hop + 1
    cut = windows(num_samples, num_frames, hop, chunk, overlap)
    assert cut[0].first == 0 and cut[-1].last == num_frames
    for before, after in zip(cut, cut[1:], strict=False):
        assert before.last == after.first  # no gap, no repeat
    for window in cut:
        assert window.start % hop == 0 and 0 <= window.start < window.stop <= num_samples
        assert window.stop - window.start <= chunk or len(cut) == 1
        # The kept frames start inside the window.
        assert window.start // hop <= window.first < window.last


def test_a_long_recording_is_encoded_in_windows(encoder: Encoder, files: list[str], tmp_path: Path) -> None:
    audio = np.concatenate([soundfile.read(f, dtype="float32")[0] for f in files])  # ~10 s
    whole = Encoder(encoder.upstream, "vq-lp", chunk_seconds=60)
    windowed = Encoder(encoder.upstream, "vq-lp", chunk_seconds=2.0, overlap_seconds=0.5)
    (frames_whole, _), = whole.frames([audio], sample_rate=8000)
    (frames_windowed, codes), = windowed.frames([audio], sample_rate=8000)
    assert frames_windowed.shape == frames_whole.shape and codes.shape[0] == frames_whole.shape[0]
    a = whole.encode([audio], sample_rate=8000)[0]
    b = windowed.encode([audio], sample_rate=8000)[0]
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.99


@pytest.fixture
def hear_validator(monkeypatch: pytest.MonkeyPatch):
    """The real validator; its module imports tensorflow but checks PyTorch models without it."""
    monkeypatch.setitem(sys.modules, "tensorflow", types.SimpleNamespace(Module=type("Module", (), {})))
    monkeypatch.delitem(sys.modules, "hearvalidator.validate", raising=False)
    from hearvalidator.validate import ValidateModel

    return ValidateModel


def test_hear_module_passes_the_validator(hear_validator, files: list[str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    hear_validator("vqpool.hear", "", "cpu")()  # the offline default
    bundle = Encoder("logmel", "vq-lp").fit(files, codebook_size=16).save(tmp_path / "lp.vqpool")
    hear_validator("vqpool.hear", str(bundle), "cpu")()
    assert "Checking get_scene_embeddings" in capsys.readouterr().out


def test_hear_scene_embeddings_ignore_trailing_zero_padding(files: list[str], tmp_path: Path) -> None:
    from vqpool import hear

    bundle = Encoder("logmel", "vq-lp").fit(files, codebook_size=16).save(tmp_path / "lp.vqpool")
    model = hear.load_model(str(bundle))
    waves = [soundfile.read(f, dtype="float32")[0] for f in files[:3]]
    import soxr

    waves = [soxr.resample(w, 8000, 16000, quality="HQ").astype(np.float32) for w in waves]
    padded = torch.zeros(3, max(len(w) for w in waves) + 4000)
    for row, w in enumerate(waves):
        padded[row, : len(w)] = torch.from_numpy(w)
    scene = hear.get_scene_embeddings(padded, model)
    alone = model.encoder.encode(waves, sample_rate=16000, return_tensors="pt")
    torch.testing.assert_close(scene, alone, atol=0, rtol=0)
    embeddings, stamps = hear.get_timestamp_embeddings(padded, model)
    assert embeddings.shape[:2] == stamps.shape and embeddings.shape[2] == model.timestamp_embedding_size
    torch.testing.assert_close(stamps[0, 1] - stamps[0, 0], torch.tensor(10.0))  # 100 frames/s
    with pytest.raises(VqpoolError, match="needs a k-means codebook"):
        hear.load_model("", method="vq-lp")  # the default upstreams have no quantizer


def test_extract_takes_a_dataset_and_cuts_like_a_manifest(files: list[str], codebook: KMeansCodebook,
                                                          tmp_path: Path) -> None:
    from datasets import Audio, Dataset
    from lhotse import CutSet, Recording, SupervisionSegment

    from vqpool.cli import main

    codebook_file = codebook.save(tmp_path / "cb.codebook")
    manifest = tmp_path / "digits.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path", "label", "split"])
        writer.writerows([Path(f).stem, f, Path(f).name[0], "train" if k % 3 else "test"]
                         for k, f in enumerate(files))
    dataset = Dataset.from_dict({
        "id": [Path(f).stem for f in files], "audio": files, "digit": [Path(f).name[0] for f in files],
        "part": ["train" if k % 3 else "test" for k in range(len(files))],
    }).cast_column("audio", Audio(decode=False))
    dataset.save_to_disk(tmp_path / "digits-hf")
    cuts = []
    for k, f in enumerate(files):
        cut = Recording.from_file(f, recording_id=Path(f).stem).to_cut()
        cut.supervisions = [SupervisionSegment(Path(f).stem, Path(f).stem, 0, cut.duration,
                                               custom={"digit": Path(f).name[0]})]
        cut.custom = {"part": "train" if k % 3 else "test"}
        cuts.append(cut)
    CutSet.from_cuts(cuts).to_file(tmp_path / "digits.jsonl.gz")
    common = ["extract", "--upstream", "logmel", "--codebook", str(codebook_file)]
    assert main([*common, "--manifest", str(manifest), "--out", str(tmp_path / "m")]) == 0
    assert main([*common, "--hf-dataset", str(tmp_path / "digits-hf"), "--label-column", "digit",
                 "--split-column", "part", "--out", str(tmp_path / "h")]) == 0
    assert main([*common, "--cuts", str(tmp_path / "digits.jsonl.gz"), "--label-column", "digit",
                 "--split-column", "part", "--out", str(tmp_path / "c")]) == 0
    reference = vqpool.FeatureStore(tmp_path / "m")
    for name in ("h", "c"):
        store = vqpool.FeatureStore(tmp_path / name)
        assert [(m["id"], m["label"], m["split"]) for m in store.meta] == \
            [(m["id"], m["label"], m["split"]) for m in reference.meta]
        for i in range(len(store)):
            assert torch.equal(store[i][0], reference[i][0]) and torch.equal(store[i][1], reference[i][1])


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    from vqpool.cli import main

    monkeypatch.setitem(sys.modules, "lhotse", None)  # import lhotse now fails
    assert main(["extract", "--upstream", "logmel", "--cuts", str(tmp_path / "c.jsonl.gz"),
                 "--out", str(tmp_path / "s")]) == 1
    assert "lhotse is not installed: pip install 'vqpool[lhotse]'" in capsys.readouterr().err
