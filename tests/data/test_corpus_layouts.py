"""Each recipe on a tiny tree in its official layout: counts, labels, splits, and broken layouts."""

import logging
import shutil
from collections import Counter

import pytest

import corpus_trees
from vqpool.data import CORPORA, TASK_OF_CORPUS, folds, prepare, summarize, task_of
from vqpool.data.speechcommands import WORDS
from vqpool.errors import VqpoolError


def by_split(rows):
    return Counter(row["split"] for row in rows)


def test_speech_commands_lists_decide_splits_and_noise_is_excluded(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vqpool")  # recipes log what they leave out
    root = corpus_trees.speech_commands(tmp_path / "sc")
    rows = prepare("speechcommands", root)
    assert len(WORDS) == 35 and by_split(rows) == {"train": 35, "validation": 35, "test": 35}
    assert {row["label"] for row in rows} == set(WORDS)
    assert {row["speaker"]: row["split"] for row in rows} == {
        "aa11aa11": "train", "bb22bb22": "validation", "cc33cc33": "test"
    }  # fmt: skip
    row = next(row for row in rows if row["id"] == "right/bb22bb22_nohash_0")
    assert row["path"] == str(root / "right" / "bb22bb22_nohash_0.wav") and row["label"] == "right"
    assert not any("_background_noise_" in row["path"] for row in rows)
    assert "excluded 3 files in _background_noise_" in caplog.text


def test_voxceleb1_follows_iden_split(tmp_path):
    rows = prepare("voxceleb1", corpus_trees.voxceleb1(tmp_path / "vox"))
    assert by_split(rows) == {"train": 4, "validation": 2, "test": 2}
    assert {row["label"] for row in rows} == {"id10001", "id10002"}
    assert all(row["speaker"] == row["label"] == row["id"].split("/")[0] for row in rows)
    assert rows[2]["id"] == "id10001/7gWzIy6yIIk/00001" and rows[2]["split"] == "validation"


def test_fluent_intent_is_action_object_location(tmp_path):
    rows = prepare("fluent", corpus_trees.fluent(tmp_path / "fsc"))
    assert by_split(rows) == {"train": 3, "validation": 1, "test": 2}
    assert [row["label"] for row in rows[:3]] == [
        "change language|none|none", "activate|lights|kitchen", "activate|lights|kitchen"
    ]  # fmt: skip
    assert rows[0]["speaker"] == "2BqVo8kVB2Skwgyb"
    assert rows[0]["id"] == "wavs/speakers/2BqVo8kVB2Skwgyb/0a3129c0-4474-11e9-a9a5-5dbec3b8816a"


def test_iemocap_merges_exc_into_hap_drops_the_rest_and_folds_by_session(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vqpool")
    root = corpus_trees.iemocap(tmp_path / "iemocap")
    rows = prepare("iemocap", root)
    assert "dropped 15 utterances" in caplog.text
    assert len(rows) == 100 and Counter(row["label"] for row in rows) == dict.fromkeys(
        ("neu", "hap", "ang", "sad"), 25
    )
    exc = next(row for row in rows if row["id"] == "Ses01F_impro01_F005")  # labelled exc
    assert exc["label"] == "hap" and exc["speaker"] == "Ses01F" and exc["session"] == "Session1"
    assert next(row for row in rows if row["id"] == "Ses03F_impro01_M002")["speaker"] == "Ses03M"
    assert not any(row["id"].endswith(("F010", "F011", "M010")) for row in rows)  # fru, xxx

    splits = folds(rows)
    assert len(splits) == 5
    for number, names in enumerate(splits, start=1):
        assert [row["session"] == f"Session{number}" for row in rows] == [
            n == "test" for n in names
        ]
        assert Counter(names) == {"train": 64, "validation": 16, "test": 20}
    # hand-worked: every fifth id of each (session, label) group of five is the last one
    validation = {
        row["id"][-4:] for row, name in zip(rows, splits[1], strict=True) if name == "validation"
    }
    assert validation == {"M001", "M003", "M006", "M009"}
    assert [row["split"] for row in rows] == splits[0]  # the manifest carries fold 1


BUILDERS = {
    "speechcommands": corpus_trees.speech_commands,
    "voxceleb1": corpus_trees.voxceleb1,
    "fluent": corpus_trees.fluent,
    "iemocap": corpus_trees.iemocap,
}
BROKEN = [
    ("speechcommands", lambda root: (root / "testing_list.txt").unlink(), "testing_list.txt: missing"),
    ("speechcommands", lambda root: shutil.rmtree(root / "visual"), "visual: missing word folder"),
    ("speechcommands", lambda root: (root / "marvel").mkdir(), "marvel: not one of the 35"),
    ("speechcommands", lambda root: corpus_trees.tone(root / "up" / "no-hash.wav"), "no-hash.wav: malformed name"),
    ("speechcommands", lambda root: (root / "validation_list.txt").write_text("bed/bb22bb22_nohash_0.wav\nbed/zz_nohash_9.wav\n"),
     "validation_list.txt:2: lists bed/zz_nohash_9.wav"),
    ("speechcommands", lambda root: (root / "testing_list.txt").write_text("bed/bb22bb22_nohash_0.wav\n"),
     "testing_list.txt:1: bed/bb22bb22_nohash_0.wav is on both split lists"),
    ("voxceleb1", lambda root: (root / "wav/id10002/xTV-jFAUKcw/00001.wav").unlink(),
     r"xTV-jFAUKcw/00001.wav: missing \(listed in .*iden_split.txt:8\)"),
    ("voxceleb1", lambda root: (root / "iden_split.txt").write_text("1 id10001/1zcIwhmdeo4/00001.wav\n4 id10001/x/00001.wav\n"),
     "iden_split.txt:2: malformed line"),
    ("voxceleb1", lambda root: shutil.rmtree(root / "wav"), "wav: missing audio folder"),
    ("fluent", lambda root: (root / "data/test_data.csv").unlink(), "test_data.csv: missing split table"),
    ("fluent", lambda root: (root / "data/valid_data.csv").write_text("path,speaker,action,object,location\n"),
     "valid_data.csv: missing column.*speakerId"),
    ("fluent", lambda root: next((root / "wavs/speakers/5pa4DVyvN2fXpepb").glob("4d5e*.wav")).unlink(),
     r"4d5e6f70.*\.wav: missing \(listed in .*test_data.csv:3\)"),
    ("iemocap", lambda root: shutil.rmtree(root / "Session4"), "Session4/dialog/EmoEvaluation: missing"),
    ("iemocap", lambda root: (root / "Session2/sentences/wav/Ses02F_impro01/Ses02F_impro01_M003.wav").unlink(),
     "Ses02F_impro01_M003.wav: missing"),
    ("iemocap", lambda root: (root / "Session5/dialog/EmoEvaluation/Ses05F_impro01.txt").write_text("[6.2 - 8.2] broken\n"),
     "Ses05F_impro01.txt:1: malformed turn line"),
]  # fmt: skip


@pytest.mark.parametrize(("corpus", "damage", "named"), BROKEN)
def test_broken_layouts_name_the_file(tmp_path, corpus, damage, named):
    root = BUILDERS[corpus](tmp_path / corpus)
    damage(root)
    with pytest.raises(VqpoolError, match=named):
        prepare(corpus, root)


def test_folder_labels_from_subfolders_with_a_seeded_split(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vqpool")
    root = tmp_path / "mine"
    for label, count in (("cough", 20), ("laugh", 10)):
        for index in range(count):
            corpus_trees.tone(root / label / f"session{index % 2}" / f"{index}.wav")
    (root / "laugh" / "notes.txt").write_text("recorded at home\n")
    rows = prepare("folder", root, seed=3)
    assert "ignored 1 file (not audio)" in caplog.text
    assert Counter((row["label"], row["split"]) for row in rows) == {
        ("cough", "train"): 16, ("cough", "validation"): 2, ("cough", "test"): 2,
        ("laugh", "train"): 8, ("laugh", "validation"): 1, ("laugh", "test"): 1,
    }  # fmt: skip
    assert {row["id"] for row in rows} >= {"cough/session0/0", "laugh/session1/9"}
    assert rows == prepare("folder", root, seed=3)
    assert rows != prepare("folder", root, seed=4)

    corpus_trees.tone(root / "stray.wav")
    with pytest.raises(VqpoolError, match="stray.wav: audio outside a label folder"):
        prepare("folder", root)


def test_folder_with_split_folders_keeps_them(tmp_path):
    root = tmp_path / "mine"
    for split in ("train", "test"):
        for label in ("a", "b"):
            corpus_trees.tone(root / split / label / "x.wav")
    rows = prepare("folder", root)
    assert sorted((row["split"], row["label"]) for row in rows) == [
        ("test", "a"), ("test", "b"), ("train", "a"), ("train", "b")
    ]  # fmt: skip


def test_csv_manifest_is_validated_and_split_when_it_has_no_split(tmp_path):
    for index in range(10):
        corpus_trees.tone(tmp_path / "audio" / f"{index}.wav")
    manifest = tmp_path / "mine.csv"
    manifest.write_text(
        "path,label\n" + "".join(f"audio/{i}.wav,{'yn'[i % 2]}\n" for i in range(10))
    )
    rows = prepare("csv", manifest, seed=0)
    assert by_split(rows) == {"train": 6, "validation": 2, "test": 2}
    assert rows[0]["id"] == "audio/0" and rows[0]["path"] == str(tmp_path / "audio" / "0.wav")
    assert rows[0]["speaker"] == "" and "speakers" in summarize(rows)

    manifest.write_text("path,label,split\naudio/0.wav,y,train\naudio/1.wav,n,\n")
    with pytest.raises(VqpoolError, match="mine.csv:3: empty split"):
        prepare("csv", manifest)
    manifest.write_text("path,label\naudio/0.wav,y\naudio/missing.wav,n\n")
    with pytest.raises(VqpoolError, match=r"missing.wav: missing \(listed in .*mine.csv:3\)"):
        prepare("csv", manifest)
    manifest.write_text("path\naudio/0.wav\n")
    with pytest.raises(VqpoolError, match="mine.csv:2: empty or missing 'label'"):
        prepare("csv", manifest)


def test_registry_names_tasks_and_refuses_unknown_corpora_and_options(tmp_path):
    assert set(CORPORA) == set(TASK_OF_CORPUS)
    assert [TASK_OF_CORPUS[name] for name in ("speechcommands", "voxceleb1", "fluent", "iemocap")] == [
        "kws", "sid", "ic", "er"
    ]  # fmt: skip
    assert task_of("fsdd") == "fsdd-digit" and task_of("fsdd", label="speaker") == "fsdd-speaker"
    with pytest.raises(VqpoolError, match="unknown corpus 'timit'"):
        prepare("timit", tmp_path)
    with pytest.raises(VqpoolError, match="corpus iemocap has no option seed"):
        prepare("iemocap", tmp_path, seed=1)
    with pytest.raises(VqpoolError, match="iemocap: missing IEMOCAP root folder"):
        prepare("iemocap", tmp_path / "iemocap")
