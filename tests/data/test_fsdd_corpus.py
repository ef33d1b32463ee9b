"""FSDD on the real recordings (read in place) and on tiny trees for the broken cases."""

import logging
from collections import Counter

import pytest

import corpus_trees
from vqpool.data import prepare, task_of
from vqpool.errors import VqpoolError

SPEAKERS = {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}


def voices(rows, split):
    return {row["speaker"] for row in rows if row["split"] == split}


def split_of(row):
    index = int(row["id"].rsplit("_", 1)[1])
    return "test" if index < 5 else "validation" if index < 10 else "train"


def test_digit_task_on_the_real_folder(fsdd_root, caplog):
    caplog.set_level(logging.INFO, logger="vqpool")
    rows = prepare("fsdd", fsdd_root)
    others = [p.name for p in fsdd_root.iterdir() if p.suffix != ".wav"]
    assert others and all(name in caplog.text for name in others)  # reported, not silently skipped
    assert len(rows) == len(list(fsdd_root.glob("*.wav"))) and {row["speaker"] for row in rows} == SPEAKERS
    assert {row["label"] for row in rows} == set("0123456789")
    for row in rows:
        assert row["split"] == split_of(row) and row["id"].startswith(
            f"{row['label']}_{row['speaker']}_"
        )


def test_digit_task_on_all_recordings_has_the_official_counts(fsdd_full):
    rows = prepare("fsdd", fsdd_full)
    assert len(rows) == 3000
    assert Counter(row["split"] for row in rows) == {"train": 2400, "validation": 300, "test": 300}


def test_speaker_task_on_the_real_folder(fsdd_root):
    rows = prepare("fsdd", fsdd_root, label="speaker")
    assert {row["label"] for row in rows} == SPEAKERS
    for split in ("train", "validation", "test"):
        assert voices(rows, split) == SPEAKERS
    assert all(row["split"] == split_of(row) for row in rows)


def test_speaker_task_on_all_recordings_has_the_official_counts(fsdd_full):
    rows = prepare("fsdd", fsdd_full, label="speaker")
    for split, size in (("train", 2400), ("validation", 300), ("test", 300)):
        assert sum(row["split"] == split for row in rows) == size


def test_options_given_as_none_mean_not_given(fsdd_root):
    assert prepare("fsdd", fsdd_root, label=None, split=None, seed=None) == prepare("fsdd", fsdd_root)
    assert task_of("fsdd", label=None) == "fsdd-digit"
    assert task_of("fsdd", label="speaker") == "fsdd-speaker"


def test_speaker_split_holds_out_two_voices_chosen_by_the_seed(fsdd_root):
    rows = prepare("fsdd", fsdd_root, split="speaker", seed=0)
    train, validation, test = (voices(rows, split) for split in ("train", "validation", "test"))
    assert (len(train), len(validation), len(test)) == (4, 1, 1)
    assert train | validation | test == SPEAKERS and not validation & test
    per_voice = Counter(row["speaker"] for row in rows)
    for split in ("validation", "test"):
        (voice,) = voices(rows, split)
        assert sum(row["split"] == split for row in rows) == per_voice[voice]
    assert rows == prepare("fsdd", fsdd_root, split="speaker", seed=0)
    chosen = {
        tuple(voices(prepare("fsdd", fsdd_root, split="speaker", seed=seed), "test"))
        for seed in range(6)
    }
    assert len(chosen) > 1


def test_speaker_split_of_all_recordings_holds_out_500_each(fsdd_full):
    rows = prepare("fsdd", fsdd_full, split="speaker", seed=0)
    assert Counter(row["split"] for row in rows) == {"train": 2000, "validation": 500, "test": 500}


def test_options_and_broken_trees(tmp_path):
    with pytest.raises(VqpoolError, match="would test on speakers never trained on"):
        prepare("fsdd", tmp_path, label="speaker", split="speaker")
    with pytest.raises(VqpoolError, match="fsdd label 'accent' is not one of digit, speaker"):
        prepare("fsdd", tmp_path, label="accent")
    with pytest.raises(VqpoolError, match=r"no \{digit\}_\{speaker\}_\{index\}.wav recordings"):
        prepare("fsdd", tmp_path)

    repository = tmp_path / "free-spoken-digit-dataset"
    for name in ("3_theo_7.wav", "4_jackson_0.wav"):
        corpus_trees.tone(repository / "recordings" / name, sample_rate=8000)
    rows = prepare("fsdd", repository)  # the repository folder, which holds recordings/
    assert [(row["label"], row["speaker"], row["split"]) for row in rows] == [
        ("3", "theo", "validation"), ("4", "jackson", "test")
    ]  # fmt: skip
    corpus_trees.tone(repository / "recordings" / "five_theo_1.wav", sample_rate=8000)
    with pytest.raises(VqpoolError, match="five_theo_1.wav: malformed name"):
        prepare("fsdd", repository)
