import numpy as np
import pytest
import soundfile

from vqpool.audio import load_audio, write_skip_report
from vqpool.data import read_manifest, write_manifest
from vqpool.errors import BadAudioError, VqpoolError


def test_manifest_round_trip_keeps_relative_paths(tmp_path):
    (tmp_path / "a").mkdir()
    rows = [
        {"id": "u1", "path": str(tmp_path / "a" / "x.wav"), "label": "yes", "split": "train", "speaker": "s1"},
        {"id": "u2", "path": "/elsewhere/y.wav", "label": "no", "split": "test", "speaker": "s2", "session": "3"},
    ]
    manifest = write_manifest(rows, tmp_path / "m.csv")
    text = manifest.read_text()
    assert text.splitlines()[0] == "id,path,label,split,speaker,session"
    assert "a/x.wav" in text and str(tmp_path) not in text
    back = read_manifest(manifest)
    assert [r["path"] for r in back] == [str(tmp_path / "a" / "x.wav"), "/elsewhere/y.wav"]
    assert back[1]["session"] == "3" and back[0]["session"] == ""


def test_manifest_errors_name_the_line(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("id,path,split\nu1,a.wav,train\nu1,b.wav,train\n")
    with pytest.raises(VqpoolError, match=r"m.csv:3: duplicate id 'u1'"):
        read_manifest(bad)
    bad.write_text("id,path,split\nu1,a.wav,dev\n")
    with pytest.raises(VqpoolError, match=r"m.csv:2: split 'dev'"):
        read_manifest(bad)
    bad.write_text("id,file\nu1,a.wav\n")
    with pytest.raises(VqpoolError, match="'path' column"):
        read_manifest(bad)
    bad.write_text("path\nsub/a.wav\n")
    assert read_manifest(bad)[0]["id"] == "sub/a"


def test_load_audio_mixes_resamples_and_names_bad_files(tmp_path):
    stereo = np.stack([np.full(8000, 0.5), np.full(8000, -0.25)], axis=1)
    soundfile.write(tmp_path / "s.wav", stereo, 8000, subtype="PCM_16")
    mono = load_audio(tmp_path / "s.wav", 16000)
    assert mono.dtype == np.float32 and mono.shape == (16000,)
    assert abs(float(np.median(mono)) - 0.125) < 1e-3

    (tmp_path / "junk.wav").write_bytes(b"not audio")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    soundfile.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2]), 16000, subtype="FLOAT")
    soundfile.write(tmp_path / "short.wav", np.full(100, 0.1), 16000)
    soundfile.write(tmp_path / "silent.wav", np.zeros(1600), 16000)
    errors = []
    for name, reason in [("junk", "unreadable"), ("empty", "empty"), ("nan", "NaN"), ("short", "too short")]:
        with pytest.raises(BadAudioError, match=reason) as caught:
            load_audio(tmp_path / f"{name}.wav", 16000, min_samples=400)
        assert caught.value.path.endswith(f"{name}.wav")
        errors.append(caught.value)
    with pytest.raises(BadAudioError, match="missing.wav: no such file"):
        load_audio(tmp_path / "missing.wav", 16000)
    load_audio(tmp_path / "silent.wav", 16000)
    with pytest.raises(BadAudioError, match="all-silent"):
        load_audio(tmp_path / "silent.wav", 16000, reject_silent=True)
    report = write_skip_report(errors, tmp_path / "skipped.csv").read_text().splitlines()
    assert report[0] == "path,reason" and len(report) == 5
