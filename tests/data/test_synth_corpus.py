"""The eSpeak NG corpus: same seed same bytes, speaker-disjoint splits, readable 16 kHz audio."""

import hashlib
import time
from collections import Counter

import pytest
import soundfile

from vqpool.audio import load_audio
from vqpool.data import prepare, read_manifest, synth
from vqpool.data.synth import ACCENTS, VARIANTS, plan_voices, synthesize
from vqpool.errors import VqpoolError


def digests(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """3 words x 4 voices (two breathy: en-us+f5, en-gb-x-rp+f2) x 2 takes, one worker at a time."""
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return synthesize(out, seed=3, words="yes,no,up", voices=4, repeats=2, workers=1)


def test_same_seed_same_bytes_whatever_the_clock_and_scheduling(small, tmp_path):
    # eSpeak seeds the breathy variants' noise from time(NULL) unless told otherwise: rerun in
    # a later second of the wall clock.
    time.sleep(1.01 - time.time() % 1)
    again = synthesize(
        tmp_path / "again", seed=3, words=["yes", "no", "up"], voices=4, repeats=2, workers=2
    )
    assert digests(small.parent) == digests(again.parent)
    other = synthesize(
        tmp_path / "other", seed=1, words="yes,no,up", voices=4, repeats=2, workers=2
    )
    assert digests(other.parent) != digests(small.parent)


def test_splits_are_speaker_disjoint_and_every_take_differs(small):
    rows = read_manifest(small)
    assert len(rows) == 3 * 4 * 2 and Counter(row["label"] for row in rows) == dict.fromkeys(
        ("yes", "no", "up"), 8
    )
    speakers = {
        split: {r["speaker"] for r in rows if r["split"] == split}
        for split in ("train", "validation", "test")
    }
    assert [len(speakers[split]) for split in ("train", "validation", "test")] == [2, 1, 1]
    assert len(set().union(*speakers.values())) == 4
    assert len(set(digests(small.parent).values())) == len(digests(small.parent))
    assert (small.parent / "testing_list.txt").read_text().splitlines() == sorted(
        f"{r['id']}.wav" for r in rows if r["split"] == "test"
    )


def test_audio_is_16khz_mono_pcm_and_readable(small):
    for row in read_manifest(small):
        info = soundfile.info(row["path"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        audio = load_audio(row["path"], 16000, min_samples=4000, reject_silent=True)
        assert 0.3 < len(audio) / 16000 < 2.0 and 0.05 < abs(audio).max() < 1.0


def test_all_35_words_read_back_as_speech_commands(tmp_path):
    manifest = synthesize(tmp_path / "sc", seed=2, voices=3, repeats=1)
    rows = read_manifest(manifest)
    assert len(rows) == 35 * 3
    by_id = sorted(rows, key=lambda row: row["id"])
    assert sorted(prepare("speechcommands", manifest.parent), key=lambda row: row["id"]) == by_id
    assert sorted(prepare("synth", manifest.parent), key=lambda row: row["id"]) == by_id


def test_voices_are_distinct_and_seeded():
    cast = plan_voices(24, seed=0)
    assert len({voice.speaker for voice in cast}) == 24 and cast == plan_voices(24, seed=0)
    assert Counter(voice.split for voice in cast) == {"train": 16, "validation": 4, "test": 4}
    assert len({voice.accent for voice in cast}) > 4 and {v.variant[0] for v in cast} == {"m", "f"}
    assert len(plan_voices(len(ACCENTS) * len(VARIANTS), seed=0)) >= 20


def test_a_voice_variant_that_does_not_load_is_an_error(tmp_path, monkeypatch):
    # eSpeak NG itself would speak "en+nosuch" in the plain "en" voice without a word.
    monkeypatch.setattr(synth, "ACCENTS", ("en",))
    monkeypatch.setattr(synth, "VARIANTS", ("m1", "f2", "nosuch"))
    with pytest.raises(VqpoolError, match=r"loaded 'gmw/en' instead of voice 'en\+nosuch'"):
        synthesize(tmp_path / "c", words="yes", voices=3, repeats=1)
    assert list(tmp_path.iterdir()) == []


def test_refusals(tmp_path):
    with pytest.raises(VqpoolError, match="voices must be 3 to"):
        synthesize(tmp_path / "a", voices=2)
    with pytest.raises(VqpoolError, match="'Yes!' is not a lowercase word"):
        synthesize(tmp_path / "a", words="no,Yes!")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(VqpoolError, match="full: exists and is not empty"):
        synthesize(tmp_path / "full", words="yes", voices=3)
    with pytest.raises(VqpoolError, match="manifest.csv: missing manifest"):
        prepare("synth", tmp_path / "full")
