"""Inputs as hostile users and spreadsheets make them: bad audio that used to get through,
manifests as people write them, and a job identity that covers what the results depend on
(issue #9, cases 3, 4 and 5)."""

import logging
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from test_store_extract import fsdd_rows, store_bytes

from vqpool.audio import load_audio
from vqpool.cli import main
from vqpool.errors import BadAudioError, VqpoolError
from vqpool.extract import extract
from vqpool.manifest import read_manifest, write_manifest
from vqpool.store import FeatureStore
from vqpool.upstream import load_upstream


def one_line_error(capsys, command: list[str], *expected: str) -> str:
    """Run a command that must fail with one line of error (progress bars aside)."""
    capsys.readouterr()
    assert main(command) == 1
    err = capsys.readouterr().err
    errors = [part for part in re.split(r"[\r\n]", err) if part.strip().startswith("vqpool ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in errors[0], err
    return errors[0]


# Case 3: bad audio that used to get through.

def test_non_finite_frames_are_blamed_on_their_own_file_and_skipped_or_stopped(fsdd_root, tmp_path):
    huge = tmp_path / "huge.wav"  # finite, but GE2E's volume normalisation overflows on it
    soundfile.write(huge, np.random.default_rng(0).normal(size=4000).astype(np.float32) * 3e29, 8000,
                    subtype="FLOAT")
    good = fsdd_rows(fsdd_root, 3)
    rows = [good[0], {"id": "huge", "path": str(huge), "label": "9", "split": "train"}, *good[1:]]
    ge2e = load_upstream("ge2e")
    with pytest.raises(BadAudioError, match="huge.wav: the upstream gave NaN"):
        extract(rows, ge2e, tmp_path / "stop", batch_seconds=60, progress=False)
    for pooled_only in (None, ["ap", "sp"]):
        store = extract(rows, ge2e, tmp_path / f"skip-{pooled_only}", batch_seconds=60, on_bad_audio="skip",
                        pooled_only=pooled_only, progress=False)
        assert sorted(m["id"] for m in store.meta) == sorted(row["id"] for row in good)
        assert [Path(entry["path"]).name for entry in store.skipped] == ["huge.wav"]
        for method in store.pooled_methods:
            assert torch.isfinite(store.pooled(method)).all()
    # The batch ran again without the bad file: the others' frames are those of a batch without it.
    alone = extract(good, ge2e, tmp_path / "good", batch_seconds=60, progress=False)
    skipped = FeatureStore(tmp_path / "skip-None")
    by_id = {m["id"]: i for i, m in enumerate(skipped.meta)}
    for i, meta in enumerate(alone.meta):
        assert torch.equal(alone[i][0], skipped[by_id[meta["id"]]][0])


def write_wav_with_rate(path: Path, rate: int, samples: int = 2000) -> None:
    soundfile.write(path, np.zeros(samples, np.int16) + 100, 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28], data[28:32] = struct.pack("<I", rate), struct.pack("<I", 2 * rate)
    path.write_bytes(bytes(data))


def test_implausible_rates_long_truncated_and_silent_audio_are_bad_audio(fsdd_root, tmp_path, caplog):
    folder = tmp_path / "bad"
    folder.mkdir()
    write_wav_with_rate(folder / "onehz.wav", 1)  # 4 kB that claim 2,000 s
    write_wav_with_rate(folder / "fast.wav", 1_000_000)
    soundfile.write(folder / "silent.wav", np.zeros(8000, np.float32), 8000)
    soundfile.write(folder / "long.wav", np.full(3 * 8000, 0.1, np.float32), 8000)
    whole = fsdd_root / "0_george_0.wav"
    (folder / "cut.wav").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # a cut copy
    reasons = {"onehz": "implausible sample rate of 1 Hz", "fast": "implausible sample rate of 1000000 Hz",
               "silent": "all-silent audio", "long": "too long: 3.0 s of audio by its header, above the limit of 2 s",
               "cut": "truncated: its header promises"}
    good = fsdd_rows(fsdd_root, 2)
    logmel = load_upstream("logmel")
    for name, reason in reasons.items():
        rows = [*good, {"id": name, "path": str(folder / f"{name}.wav")}]
        with pytest.raises(BadAudioError, match=f"{name}.wav: {reason}"):
            extract(rows, logmel, tmp_path / f"s-{name}", max_seconds=2, progress=False)
        assert (tmp_path / f"s-{name}").exists() == (name == "silent")  # the others: by their headers
    with pytest.raises(BadAudioError, match="onehz.wav: implausible sample rate of 1 Hz"):  # codebook fitting's reader
        load_audio(folder / "onehz.wav", 16000)
    rows = [*good, *({"id": name, "path": str(folder / f"{name}.wav")} for name in reasons)]
    store = extract(rows, logmel, tmp_path / "skip", on_bad_audio="skip", max_seconds=2, progress=False)
    assert {Path(e["path"]).stem: e["reason"] for e in store.skipped}.keys() == reasons.keys()
    assert len(store) == 2
    with caplog.at_level(logging.WARNING, logger="vqpool"):
        kept = extract(rows, logmel, tmp_path / "keep", on_bad_audio="skip", keep_audio=["silent", "truncated"],
                       max_seconds=None, progress=False)
    assert sorted(m["id"] for m in kept.meta) == sorted([*(r["id"] for r in good), "silent", "cut", "long"])
    assert "cut.wav: truncated" in caplog.text and "silent.wav: all-silent audio" in caplog.text
    with pytest.raises(VqpoolError, match="keep_audio names 'loud'"):
        extract(rows, logmel, tmp_path / "x", keep_audio=["loud"], progress=False)
    write_manifest(rows, tmp_path / "m.csv")
    command = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"), "--on-bad-audio", "skip"]
    assert main([*command, "--keep-audio", "silent", "--max-seconds", "0", "--out", str(tmp_path / "cli")]) == 0
    assert sorted(Path(e["path"]).stem for e in FeatureStore(tmp_path / "cli").skipped) == ["cut", "fast", "onehz"]
    assert main([*command, "--keep-audio", "loud", "--out", str(tmp_path / "cli2")]) == 1


def test_loops_latin1_manifests_and_damaged_or_malicious_models_are_one_line_errors(fsdd_root, tmp_path, capsys):
    from tiny_models import make_wav2vec2_pretraining

    corpus = tmp_path / "corpus" / "zero"
    corpus.mkdir(parents=True)
    shutil.copy(fsdd_root / "0_george_0.wav", corpus)
    (corpus / "loop.wav").symlink_to(corpus / "loop.wav")
    one_line_error(capsys, ["data", "prepare", "folder", "--root", str(tmp_path / "corpus"), "--out",
                            str(tmp_path / "m.csv")], "loop.wav: cannot resolve the path: a loop of symbolic links")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,path,label\nu1,caf\xe9.wav,x\n".encode("latin-1"))
    one_line_error(capsys, ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(latin), "--out",
                            str(tmp_path / "s")], "latin.csv:2: not UTF-8 text (byte 0xe9)")

    write_manifest(fsdd_rows(fsdd_root, 2), tmp_path / "ok.csv")
    model = make_wav2vec2_pretraining(tmp_path / "model")
    damaged = shutil.copytree(model, tmp_path / "damaged")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    args = ["extract", "--manifest", str(tmp_path / "ok.csv"), "--out", str(tmp_path / "s"), "--upstream"]
    one_line_error(capsys, [*args, str(damaged)], f"{weights}: cannot load the model's weights: damaged")
    malicious = shutil.copytree(model, tmp_path / "malicious")
    (malicious / "model.safetensors").unlink()
    marker = tmp_path / "code-ran"
    subprocess.run([sys.executable, "-c", f"""
import os, torch
class Payload:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
torch.save({{"weight": Payload()}}, "{malicious / 'pytorch_model.bin'}")
"""], check=True)
    one_line_error(capsys, [*args, str(malicious)], "pytorch_model.bin: cannot load the model's weights: it "
                   "holds Python objects besides tensors")
    assert not marker.exists()
    (damaged / "preprocessor_config.json").write_text("{not json")
    shutil.copy(model / "model.safetensors", weights)
    one_line_error(capsys, [*args, str(damaged)], "preprocessor_config.json: cannot read the feature extractor's settings")
    assert not (tmp_path / "s").exists()


# Case 4: manifests as people write them.

def test_manifests_as_spreadsheets_write_them(fsdd_root, tmp_path):
    spaced = tmp_path / " take one .wav"  # spaces are part of the name
    shutil.copy(fsdd_root / "3_jackson_0.wav", spaced)
    shutil.copy(fsdd_root / "4_jackson_0.wav", tmp_path / "b.wav")
    manifest = tmp_path / "excel.csv"
    manifest.write_bytes(b"\xef\xbb\xbfid,path,label,split\r\nu1, take one .wav,3,train\r\nu2,b.wav,4,test\r\n")
    rows = read_manifest(manifest)
    assert [row["id"] for row in rows] == ["u1", "u2"] and "\ufeffid" not in rows[0]
    assert rows[0]["path"] == str(spaced) and Path(rows[0]["path"]).is_file()
    manifest.write_bytes(b"\xef\xbb\xbfid,path\r\nu1,b.wav\r\nu1,c.wav\r\n")
    with pytest.raises(VqpoolError, match=r"excel.csv:3: duplicate id 'u1'"):
        read_manifest(manifest)


def test_splits_that_skew_a_benchmark_are_warned_about_wherever_rows_are_used(fsdd_root, tmp_path, caplog):
    files = sorted(fsdd_root.glob("*_jackson_1.wav"))
    source = tmp_path / "mine.csv"  # the csv corpus: path,label[,split,id]
    lines = ["id,path,label,split", f"a,{files[0]},0,train", f"b,{files[1]},1,train",
             f"c,{files[1]},1,test",  # the same audio in training and test
             f"d,{files[2]},2,test",  # a label no training row has
             f"e,{files[3]},3,", f"f,{files[0]},0,test"]  # no split: in no benchmark
    source.write_text("\n".join(lines) + "\n")
    source.write_text("\n".join(line for line in lines if not line.startswith("e,")) + "\n")
    manifest = tmp_path / "m.csv"
    with caplog.at_level(logging.WARNING, logger="vqpool"):  # (a csv corpus refuses empty splits itself)
        assert main(["data", "prepare", "csv", "--root", str(source), "--out", str(manifest)]) == 0
    assert "0_jackson_1.wav is listed under more than one split (test as 'f', train as 'a', and 1 more file)" in caplog.text
    assert "label '2' occurs in test but in no training row" in caplog.text
    caplog.clear()
    manifest.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="vqpool"):
        assert main(["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(manifest), "--out", str(tmp_path / "s")]) == 0
    assert "1 rows have no split, so no benchmark uses them ('e')" in caplog.text
    assert "is listed under more than one split (test as 'f', train as 'a', and 1 more file)" in caplog.text
    assert "label '2' occurs in test but in no training row" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vqpool"):
        assert main(["bench", "--store", str(tmp_path / "s"), "--methods", "ap"]) == 0
    assert "s: 1 rows have no split" in caplog.text and "more than one split" in caplog.text
    assert "label '2' occurs in test" in caplog.text


# Case 5: the job identity covers what the results depend on.

def test_a_relabelled_manifest_is_refused_until_relabel_takes_it(fsdd_root, tmp_path, capsys):
    rows = fsdd_rows(fsdd_root, 6)
    manifest = tmp_path / "m.csv"
    write_manifest(rows, manifest)
    out = tmp_path / "s"
    args = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(manifest), "--batch-seconds", "0.5"]
    assert main([*args, "--out", str(out)]) == 0
    relabelled = [{**row, "label": row["id"].split("_")[1], "split": "test" if k % 2 else "train"}
                  for k, row in enumerate(rows)]  # digits -> speakers, in place
    write_manifest(relabelled, manifest)
    capsys.readouterr()
    one_line_error(capsys, [*args, "--out", str(out)], "already holds a complete feature store of these files, "
                   "but 6 of its utterances carry other labels", "`vqpool relabel`")
    assert main(["relabel", str(out), "--manifest", str(manifest)]) == 0
    assert "new metadata for 6 utterances" in capsys.readouterr().out
    assert {m["id"]: m["label"] for m in FeatureStore(out).meta} == {r["id"]: r["label"] for r in relabelled}
    assert main([*args, "--out", str(tmp_path / "fresh")]) == 0
    assert store_bytes(out) == store_bytes(tmp_path / "fresh")  # as if extracted with the new labels
    assert main([*args, "--out", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().out

    # Killed, relabelled, resumed: never a mix of old and new labels.
    write_manifest(rows, manifest)
    killed = tmp_path / "killed"
    assert main([*args, "--out", str(killed)]) == 0
    (killed / "complete.json").unlink()
    index = killed / "index.jsonl"
    index.write_bytes(b"".join(index.read_bytes().splitlines(keepends=True)[:3]))
    write_manifest(relabelled, manifest)
    capsys.readouterr()
    one_line_error(capsys, [*args, "--out", str(killed), "--resume"], "cannot resume: 3 of the utterances "
                   "already written carry other labels")
    assert main(["relabel", str(killed), "--manifest", str(manifest)]) == 0
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert store_bytes(killed) == store_bytes(tmp_path / "fresh")

    # Other files, or other audio under the same names: refused.
    write_manifest([{**rows[0], "path": str(fsdd_root / "9_theo_49.wav")}, *relabelled[1:]], manifest)
    one_line_error(capsys, ["relabel", str(out), "--manifest", str(manifest)], "cannot relabel: the audio of "
                   f"{rows[0]['id']!r} is")
    write_manifest(relabelled[1:], manifest)
    one_line_error(capsys, ["relabel", str(out), "--manifest", str(manifest)], "cannot relabel: utterance")


def test_statistics_or_a_codebook_of_another_upstream_are_refused_before_a_store_exists(fsdd_root, tmp_path):
    from vqpool.pooling import CorpusStats
    from vqpool.upstream.codebook import KMeansCodebook

    generator = torch.Generator().manual_seed(0)
    codebook = KMeansCodebook.fit(torch.randn(200, 80, generator=generator), num_codebooks=2, codebook_size=16,
                                  upstream="logmel", layer="mean")
    logmel = load_upstream("logmel", codebook=codebook)  # D=80, G=2, V=16

    def stats(dim: int, groups: int, size: int) -> CorpusStats:
        frames = torch.randn(3, 10, dim, generator=generator)
        codes = torch.randint(0, size, (3, 10, groups), generator=generator)
        return CorpusStats.fit([(frames, torch.tensor([10, 8, 5]), codes)], codebook_size=size, progress=False)

    rows = fsdd_rows(fsdd_root, 2)
    for fitted, message in (((256, 2, 64), "frame dimension D 256, not 80; codebook size V 64, not 16"),
                            ((80, 2, 8), "codebook size V 8, not 16"),
                            ((80, 2, 64), "codebook size V 64, not 16"),
                            ((40, 2, 16), "frame dimension D 40, not 80"),
                            ((80, 3, 16), "codebooks G 3, not 2")):
        with pytest.raises(VqpoolError, match=rf"stats were fitted on another upstream's frames or codes \({message}"):
            extract(rows, logmel, tmp_path / "s", pooled_only=["vq-gp"], stats=stats(*fitted), progress=False)
        assert not (tmp_path / "s").exists()
    ge2e_codebook = KMeansCodebook.fit(torch.randn(200, 256, generator=generator), num_codebooks=2,
                                       codebook_size=16, upstream="ge2e", layer="mean")
    with pytest.raises(VqpoolError, match="fitted on 'ge2e'"):
        load_upstream("logmel", codebook=ge2e_codebook)
    store = extract(rows, logmel, tmp_path / "s", pooled_only=["vq-gp"], stats=stats(80, 2, 16), progress=False)
    assert len(store) == 2
