"""Inputs as hostile users make them: bad audio that used to get through (issue #9, case 3)."""

import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from test_store_extract import fsdd_rows

from vqpool.cli import main
from vqpool.data.manifest import write_manifest
from vqpool.errors import BadAudioError, VqpoolError
from vqpool.extract import extract
from vqpool.store import FeatureStore
from vqpool.upstream import load_upstream


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
    from vqpool.audio import (
        load_audio,  # what codebook fitting reads with: refused before resampling
    )

    with pytest.raises(BadAudioError, match="onehz.wav: implausible sample rate of 1 Hz"):
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
    command = ["extract", "--upstream", "logmel", "--manifest", str(tmp_path / "m.csv"), "--on-bad-audio", "skip"]
    assert main([*command, "--keep-audio", "silent", "--max-seconds", "0", "--out", str(tmp_path / "cli")]) == 0
    assert sorted(Path(e["path"]).stem for e in FeatureStore(tmp_path / "cli").skipped) == ["cut", "fast", "onehz"]
    assert main([*command, "--keep-audio", "loud", "--out", str(tmp_path / "cli2")]) == 1
