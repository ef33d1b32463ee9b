"""Codes from elsewhere (issue 11): codecs, other upstreams' codebooks, km.bin and unit files,
aligned to the frames by the rule of vqpool.upstream.codes, checked against hand-worked
alignments and against each codec's own ``encode``."""

import json
import os
import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soxr
import torch
from transformers import DacModel, EncodecModel, MimiModel

from recordings import spread
from tiny_models import make_dac, make_encodec, make_hubert, make_mimi, make_wav2vec2_pretraining
from vqpool.audio import load_audio
from vqpool.cli import main
from vqpool.encode import Encoder
from vqpool.errors import VqpoolError
from vqpool.evaluate.results import read_results
from vqpool.manifest import read_manifest, write_manifest
from vqpool.report.tables import build_tables
from vqpool.store import FeatureStore
from vqpool.upstream import CodesFrom, load_upstream
from vqpool.upstream.codebook import fit_codebook
from vqpool.upstream.codes import align_codes

CODECS = {"encodec": (make_encodec, EncodecModel), "dac": (make_dac, DacModel), "mimi": (make_mimi, MimiModel)}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    made = {name: make(root / name) for name, (make, _) in CODECS.items()}
    made["w2v"] = make_wav2vec2_pretraining(root / "w2v")  # group norm: batched by length
    made["hubert"] = make_hubert(root / "hubert")
    return made


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, fsdd_root) -> Path:
    """Six FSDD recordings (8 kHz: resampled to 16 kHz, then to each codec's rate)."""
    files = spread(sorted(fsdd_root.glob("*.wav")), 6, 97)
    rows = [{"id": f.stem, "path": str(f), "label": f.stem[0], "split": ("train", "train", "test")[k % 3]}
            for k, f in enumerate(files)]
    manifest = tmp_path_factory.mktemp("corpus") / "digits.csv"
    write_manifest(rows, manifest)
    return manifest


def ids_and_paths(manifest: Path) -> list[tuple[str, str]]:
    return [(row["id"], row["path"]) for row in read_manifest(manifest)]


# --- the alignment rule, by hand ---

def test_alignment_by_hand():
    """50 Hz frames on 75 Hz codes: centres 10, 30, 50, 70, 90, 110 ms fall in codes 0, 2, 3, 5, 6, 8
    (spans of 13.3 ms); on 12.5 Hz codes four frames share one; past the last code, the last."""
    codes = torch.arange(20)[None, :, None]
    aligned = align_codes(codes, torch.tensor([20]), Fraction(75), torch.tensor([6]), 6, Fraction(50))
    assert aligned[0, :, 0].tolist() == [0, 2, 3, 5, 6, 8]
    aligned = align_codes(codes, torch.tensor([2]), Fraction(25, 2), torch.tensor([10]), 10, Fraction(50))
    assert aligned[0, :, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]  # codes 2, 2 clamp to the last
    # a centre on a boundary (frame t's centre (2t + 1) / 100 s starts code 2t + 1) takes the later code
    aligned = align_codes(codes, torch.tensor([20]), Fraction(100), torch.tensor([4]), 4, Fraction(50))
    assert aligned[0, :, 0].tolist() == [1, 3, 5, 7]
    # 100 Hz frames on 50 Hz codes take each code twice; frames beyond a row's length are 0
    two = torch.stack([codes[0] + 1, codes[0] + 100])
    aligned = align_codes(two, torch.tensor([20, 20]), Fraction(50), torch.tensor([5, 3]), 5, Fraction(100))
    assert aligned[..., 0].tolist() == [[1, 1, 2, 2, 3], [100, 100, 101, 0, 0]]
    # a window whose first frame is frame 4 of its utterance (whole-utterance codes)
    aligned = align_codes(codes, torch.tensor([20]), Fraction(75), torch.tensor([2]), 2,
                          Fraction(50), torch.tensor([4]))
    assert aligned[0, :, 0].tolist() == [6, 8]


def aligned_by_hand(codes: np.ndarray, code_rate: Fraction, num_frames: int, frame_rate: Fraction) -> np.ndarray:
    """``codes [C, G]`` -> ``[T, G]`` by the documented rule, one frame at a time."""
    rows = []
    for t in range(num_frames):
        centre = (t + Fraction(1, 2)) / frame_rate
        j = int(centre * code_rate)  # floor: the code whose span [j, j + 1) / rate holds it
        rows.append(codes[min(j, len(codes) - 1)])
    return np.stack(rows)


def codec_codes(model, kind: str, wave: np.ndarray, rate: int, levels: int) -> np.ndarray:
    """The codec's own ``encode`` of one waveform resampled to its rate: ``[C, levels]``."""
    wave = soxr.resample(wave, rate, model.config.sampling_rate, quality="HQ").astype(np.float32)
    inputs = torch.from_numpy(wave)[None, None]
    with torch.no_grad():
        if kind == "encodec":
            codes = model.encode(inputs, bandwidth=max(model.config.target_bandwidths)).audio_codes[0, 0]
        elif kind == "dac":
            codes = model.encode(inputs).audio_codes[0]
        else:
            codes = model.encode(inputs).audio_codes[0]
    return codes[:levels].T.numpy()


@pytest.mark.parametrize("kind", list(CODECS))
def test_codec_codes_are_its_own_encode_aligned(models, kind):
    """A batch of three lengths (the group-norm upstream runs them one length at a time, the
    codec too): each utterance's codes are the codec's encode of it, aligned by hand."""
    levels = 2
    upstream = load_upstream(str(models["w2v"]), codes_from=CodesFrom(str(models[kind]), levels=levels))
    source = upstream.code_source
    assert (source.kind, source.num_codebooks, source.codebook_size) == ("codec", levels, 16)
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([16000, 9001, 12345])
    waves = torch.randn(3, 16000, generator=generator) * 0.1
    output = upstream(waves, lengths)
    model = CODECS[kind][1].from_pretrained(models[kind]).eval()
    rate = Fraction(model.config.sampling_rate, model.config.frame_size if kind == "mimi" else model.config.hop_length)
    assert source.rate == rate and float(rate) == {"encodec": 75, "dac": 50, "mimi": 12.5}[kind]
    for b, n in enumerate(lengths.tolist()):
        frames = int(output.frame_lengths[b])
        expected = aligned_by_hand(codec_codes(model, kind, waves[b, :n].numpy(), 16000, levels),
                                   rate, frames, Fraction(50))
        assert np.array_equal(output.codes[b, :frames].numpy(), expected), kind
        assert not output.codes[b, frames:].any()
    assert len(np.unique(output.codes[..., 0])) > 2  # the tiny codec's codes vary


def test_codec_levels_and_refusals(models, tmp_path):
    spec = str(models["encodec"])
    with pytest.raises(VqpoolError, match="codes_from.levels is 11: .* has 10 quantizer levels"):
        load_upstream(str(models["w2v"]), codes_from=CodesFrom(spec, levels=11))
    with pytest.raises(VqpoolError, match="not an audio codec"):
        load_upstream(str(models["w2v"]), codes_from=str(models["hubert"]))
    with pytest.raises(VqpoolError, match="codes_from replaces the upstream's codes"):
        load_upstream("logmel", codebook=tmp_path / "cb", codes_from=spec)
    with pytest.raises(VqpoolError, match="neither a local directory nor in the Hugging Face cache"):
        load_upstream("logmel", codes_from="nobody/no-such-codec")
    upstream = load_upstream("logmel", codes_from=spec)
    assert upstream.code_source.num_codebooks == 10  # every level by default


# --- through vqpool extract: the store, its header, job identity ---

def test_extract_stores_codec_codes_and_records_the_source(models, corpus, tmp_path):
    store_dir = tmp_path / "store"
    args = ["extract", "--upstream", str(models["w2v"]), "--manifest", str(corpus), "--out", str(store_dir),
            "--codes-from", str(models["mimi"]), "--code-levels", "3"]
    assert main(args) == 0
    store = FeatureStore(store_dir)
    info = store.header.upstream
    assert (info.codes, info.num_codebooks, info.codebook_size) == ("codec", 3, 16)
    source = info.code_source
    assert source["kind"] == "codec" and source["label"] == "mimi x3" and source["code_rate"] == 12.5
    assert source["alignment"] == "centre" and source["request"] == {"spec": str(models["mimi"]), "levels": 3}
    model = MimiModel.from_pretrained(models["mimi"]).eval()
    paths = dict(ids_and_paths(corpus))
    for k in range(len(store)):
        _, codes, meta = store[k]
        wave = load_audio(paths[meta["id"]], 16000)
        expected = aligned_by_hand(codec_codes(model, "mimi", wave, 16000, 3), Fraction(25, 2),
                                   meta["num_frames"], Fraction(50))
        assert np.array_equal(codes.numpy(), expected)
    # the job identity compares headers: other codes never reuse this complete store
    for other in (["--codes-from", str(models["mimi"]), "--code-levels", "2"], []):
        assert main([*args[:-4], *other]) == 1
    assert main(args) == 0  # the same job: reported as done


def test_refusal_names_the_code_source(models, corpus, tmp_path, capsys):
    store_dir = tmp_path / "store"
    base = ["extract", "--upstream", str(models["w2v"]), "--manifest", str(corpus), "--out", str(store_dir)]
    assert main([*base, "--codes-from", str(models["dac"]), "--code-levels", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "--codes-from", str(models["dac"]), "--code-levels", "2"]) == 1
    error = capsys.readouterr().err
    assert "different settings" in error and "num_codebooks: 1 in the store, 2 now" in error
    assert main(base) == 1  # the upstream's own quantizer is another job too
    assert "code_source" in capsys.readouterr().err


# --- k-means codebooks of any upstream and layers, through bench ---

def test_per_layer_codebook_of_another_upstream_end_to_end(models, corpus, tmp_path, capsys):
    codebook = tmp_path / "hubert.codebook"
    assert main(["codebook", "fit", "--upstream", str(models["hubert"]), "--manifest", str(corpus),
                 "--split", "train", "--out", str(codebook), "--layers", "1,2", "--size", "4"]) == 0
    assert "2 x 4 centroids" in capsys.readouterr().out
    store_dir = tmp_path / "store"
    assert main(["extract", "--upstream", str(models["w2v"]), "--manifest", str(corpus), "--out", str(store_dir),
                 "--codes-from", str(codebook)]) == 0
    store = FeatureStore(store_dir)
    info = store.header.upstream
    assert (info.codes, info.num_codebooks, info.codebook_size) == ("kmeans", 2, 4)
    assert info.code_source["layers"] == ["1", "2"] and len(info.code_source["sha256"]) == 64
    # the codes are the codebook's on hubert's layers 1 and 2 (both 50 Hz: frame t, code t)
    hubert = load_upstream(str(models["hubert"]), codebook=codebook)
    paths = dict(ids_and_paths(corpus))
    for k in range(len(store)):
        _, codes, meta = store[k]
        wave = torch.from_numpy(load_audio(paths[meta["id"]], 16000))
        own = hubert(wave[None], torch.tensor([len(wave)])).codes[0]
        assert torch.equal(codes, own[: meta["num_frames"]])
    results = tmp_path / "results.jsonl"
    assert main(["bench", "--store", str(store_dir), "--methods", "ap,vq-lp,vq-allsquash-or",
                 "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert f"frames: {models['w2v']} mean; codes: kmeans(hubert L1,2) x2" in out
    rows = read_results(results)
    assert {row["store_header"]["code_source"] for row in rows} == {"kmeans(hubert L1,2) x2"}


def test_codebook_of_the_same_upstream_runs_it_once(models, corpus, tmp_path):
    """--codes-from with a codebook of the frames' own upstream gives what --codebook gives."""
    hubert = load_upstream(str(models["hubert"]))
    paths = [path for _, path in ids_and_paths(corpus)]
    codebook = fit_codebook(hubert, paths, layers=["1", "2"], codebook_size=4, progress=False)
    codebook.save(tmp_path / "cb")
    attached = load_upstream(str(models["hubert"]), codebook=tmp_path / "cb")
    sourced = load_upstream(str(models["hubert"]), codes_from=tmp_path / "cb")
    assert sourced.code_source.shared and sourced.code_source.upstream is sourced
    waves, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 6000])
    assert torch.equal(attached(waves, lengths).codes, sourced(waves, lengths).codes)
    assert attached.num_codebooks == 2 and codebook.settings["layers"] == ["1", "2"]


# --- fairseq km.bin ---

def test_km_bin_applied_to_a_named_layer(models, corpus, tmp_path):
    import joblib
    from sklearn.cluster import MiniBatchKMeans

    hubert = load_upstream(str(models["hubert"]), layers="1")
    wave = torch.from_numpy(load_audio(ids_and_paths(corpus)[0][1], 16000))
    frames = hubert(wave[None], torch.tensor([len(wave)])).frames[0].numpy()
    kmeans = MiniBatchKMeans(n_clusters=5, n_init=1, random_state=0).fit(frames)
    km = tmp_path / "km.bin"
    joblib.dump(kmeans, km)
    upstream = load_upstream(str(models["w2v"]), codes_from=CodesFrom(str(km), upstream=str(models["hubert"]), layer="1"))
    codes = upstream(wave[None], torch.tensor([len(wave)])).codes[0, :, 0].numpy()
    assert np.array_equal(codes, kmeans.predict(frames))
    described = upstream.describe()["code_source"]
    assert described["format"] == "fairseq km.bin" and described["layers"] == ["1"]
    with pytest.raises(VqpoolError, match="codes_from.layer is needed with a km.bin"):
        load_upstream(str(models["w2v"]), codes_from=str(km))


class _Hostile:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_hostile_km_bin_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "km.bin"
    bad.write_bytes(pickle.dumps(_Hostile()))
    with pytest.raises(VqpoolError) as caught:
        load_upstream("logmel", codes_from=CodesFrom(str(bad), layer="0"))
    message = str(caught.value)
    assert message.startswith(f"{bad}: refused as a km.bin (it names ") and "posix.system" in message
    assert "\n" not in message and not (tmp_path / "PWNED").exists()
    assert main(["extract", "--upstream", "logmel", "--codes-from", str(bad), "--code-layer", "0",
                 "--manifest", str(tmp_path / "none.csv"), "--out", str(tmp_path / "s")]) == 1


# --- precomputed units ---

def test_km_units_end_to_end(models, corpus, tmp_path, capsys):
    """A .km file of `id u1 u2 ...` lines at the frames' rate: the store holds the units."""
    w2v = load_upstream(str(models["w2v"]))
    generator = np.random.default_rng(0)
    units, lines = {}, []
    for key, path in ids_and_paths(corpus):
        count = int(w2v.num_frames(len(load_audio(path, 16000))))
        units[key] = np.repeat(generator.integers(0, 50, size=count), 1)[:count]
        lines.append(" ".join([key, *map(str, units[key])]))
    km = tmp_path / "units.km"
    km.write_text("\n".join(lines) + "\n")
    store_dir = tmp_path / "store"
    assert main(["extract", "--upstream", str(models["w2v"]), "--manifest", str(corpus), "--out", str(store_dir),
                 "--codes-from", str(km)]) == 0
    store = FeatureStore(store_dir)
    source = store.header.upstream.code_source
    assert source["kind"] == "units" and source["code_rate"] == 50.0 and len(source["sha256"]) == 64
    for k in range(len(store)):
        _, codes, meta = store[k]
        assert np.array_equal(codes[:, 0].numpy(), units[meta["id"]])
    results = tmp_path / "results.jsonl"
    assert main(["bench", "--store", str(store_dir), "--methods", "ap,vq-lp,vq-gp", "--results", str(results)]) == 0
    assert "codes: units.km x1" in capsys.readouterr().out
    # 25 Hz units said to be at 50 Hz: refused, naming the utterance
    half = tmp_path / "half.km"
    half.write_text("\n".join(" ".join([key, *map(str, u[::2])]) for key, u in units.items()) + "\n")
    assert main(["extract", "--upstream", str(models["w2v"]), "--manifest", str(corpus),
                 "--out", str(tmp_path / "half"), "--codes-from", str(half)]) == 1
    assert "give the units' rate" in capsys.readouterr().err
    assert main(["extract", "--upstream", str(models["w2v"]), "--manifest", str(corpus),
                 "--out", str(tmp_path / "half-rate"), "--codes-from", str(half), "--code-rate", "25"]) == 0


def fairseq_layout(corpus: Path, folder: Path, units_of) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """What fairseq's simple_kmeans leaves: ``train.tsv`` (root, then ``relative<TAB>samples``)
    and ``train.km`` (the units of each listed file, line for line, no ids), in reverse
    manifest order so that only the files, not the order, can match lines to utterances.
    The root is reached through a symbolic link, as a cluster's data folder often is."""
    pairs = ids_and_paths(corpus)[::-1]
    (folder / "data").symlink_to(Path(pairs[0][1]).parent)
    units = {path: units_of(path) for _, path in pairs}
    tsv, km = folder / "train.tsv", folder / "train.km"
    tsv.write_text(f"{folder / 'data'}\n" + "".join(
        f"{Path(path).name}\t{len(load_audio(path, 16000))}\n" for _, path in pairs))
    km.write_text("".join(" ".join(map(str, units[path])) + "\n" for _, path in pairs))
    return tsv, km, units


def test_fairseq_km_labels_follow_their_tsv_end_to_end(models, corpus, tmp_path, capsys):
    w2v = load_upstream(str(models["w2v"]))
    generator = np.random.default_rng(1)
    tsv, km, units = fairseq_layout(corpus, tmp_path, lambda path: generator.integers(
        0, 50, size=int(w2v.num_frames(len(load_audio(path, 16000))))))
    store_dir = tmp_path / "store"
    args = ["extract", "--upstream", str(models["w2v"]), "--manifest", str(corpus)]
    assert main([*args, "--out", str(store_dir), "--codes-from", str(km)]) == 0  # the .tsv beside it
    store = FeatureStore(store_dir)
    source = store.header.upstream.code_source
    assert source["kind"] == "units" and source["manifest"] == str(tsv.resolve())
    for k in range(len(store)):
        _, codes, meta = store[k]
        assert np.array_equal(codes[:, 0].numpy(), units[meta["path"]])
    assert main(["bench", "--store", str(store_dir), "--methods", "ap,vq-lp",
                 "--results", str(tmp_path / "r.jsonl")]) == 0
    assert "codes: train.km x1" in capsys.readouterr().out

    # the manifest named elsewhere; a label file one line short; a manifest without a .km
    elsewhere = tmp_path / "lists"
    elsewhere.mkdir()
    (elsewhere / "labels.km").write_text(km.read_text())
    assert main([*args, "--out", str(tmp_path / "named"), "--codes-from", str(elsewhere / "labels.km"),
                 "--code-manifest", str(tsv)]) == 0
    assert np.array_equal(FeatureStore(tmp_path / "named")[0][1], store[0][1])
    (elsewhere / "short.km").write_text("".join(km.read_text().splitlines(keepends=True)[1:]))
    assert main([*args, "--out", str(tmp_path / "short"), "--codes-from", str(elsewhere / "short.km"),
                 "--code-manifest", str(tsv)]) == 1
    assert "5 lines of units, but its manifest" in capsys.readouterr().err
    np.savez(elsewhere / "units.npz", **{"a": np.zeros(3, dtype=np.int16)})
    assert main([*args, "--out", str(tmp_path / "npz"), "--codes-from", str(elsewhere / "units.npz"),
                 "--code-manifest", str(tsv)]) == 1
    assert "--code-manifest goes with a fairseq .km label file" in capsys.readouterr().err
    # without its .tsv, an id-less label file is read as `id u1 u2 ...`: the miss says why
    assert main([*args, "--out", str(tmp_path / "bare"), "--codes-from", str(elsewhere / "labels.km")]) == 1
    assert "as fairseq's .km labels do: give the .tsv manifest" in capsys.readouterr().err


def test_npy_unit_folder_and_missing_ids(models, corpus, tmp_path):
    folder = tmp_path / "units"
    folder.mkdir()
    pairs = ids_and_paths(corpus)
    for key, _ in pairs[1:]:
        np.save(folder / f"{key}.npy", np.ones((200, 2), dtype=np.int16) * 3)
    upstream = load_upstream(str(models["w2v"]), codes_from=CodesFrom(str(folder), rate=50))
    assert (upstream.num_codebooks, upstream.codebook_size) == (2, 4)
    wave = torch.zeros(1, 16000)
    with pytest.raises(VqpoolError, match=f"no units for utterance {pairs[0][0]!r}"):
        upstream(wave, torch.tensor([16000]), ids=[pairs[0][0]])
    with pytest.raises(VqpoolError, match="has 200 units, but 49 frames"):
        upstream(wave, torch.tensor([16000]), ids=[pairs[1][0]])


def test_encoder_windows_take_whole_utterance_units(models, tmp_path):
    """A clip longer than chunk_seconds runs in windows; each window's frames still take the
    units of their place in the whole utterance."""
    folder = tmp_path / "units"
    folder.mkdir()
    units = np.arange(149) % 97  # 3 s at 50 Hz: 149 frames
    np.save(folder / "long.npy", units)
    encoder = Encoder(str(models["hubert"]), "vq-lp", codes_from=CodesFrom(str(folder)), chunk_seconds=1.0,
                      overlap_seconds=0.2)
    wave = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    import soundfile

    soundfile.write(tmp_path / "long.wav", wave, 16000)
    [(frames, codes)] = encoder.frames([str(tmp_path / "long.wav")])
    assert frames.shape[0] == 149 and np.array_equal(codes[:, 0].numpy(), units)
    # and the bundle remembers where the codes come from
    encoder.save(tmp_path / "enc.vqpool")
    again = Encoder.load(tmp_path / "enc.vqpool")
    assert again.upstream.code_source.kind == "units"
    assert np.allclose(again.encode([str(tmp_path / "long.wav")]), encoder.encode([str(tmp_path / "long.wav")]))


# --- reports keep stores of other codes apart ---

def test_report_tables_per_code_source(models, corpus, tmp_path):
    rows = []
    for levels in (1, 2):
        store_dir = tmp_path / f"store-{levels}"
        assert main(["extract", "--upstream", str(models["w2v"]), "--manifest", str(corpus), "--out",
                     str(store_dir), "--codes-from", str(models["encodec"]), "--code-levels", str(levels)]) == 0
        results = tmp_path / f"results-{levels}.jsonl"
        assert main(["bench", "--store", str(store_dir), "--methods", "ap,vq-lp", "--results", str(results)]) == 0
        rows += read_results(results)
    tables = build_tables(rows)
    titles = sorted(table.upstream_title for table in tables)
    assert titles == [f"frames: {models['w2v']} mean; codes: encodec x{n}" for n in (1, 2)]
    assert json.dumps(rows[0]["store_header"])  # the summary stays JSON
