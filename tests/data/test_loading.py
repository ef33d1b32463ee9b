"""`vqpool.data.load_rows` (the rows `vqpool extract` reads) and `rows_of_split` (the rows
`vqpool codebook fit` fits on)."""

import pytest

import corpus_trees
from vqpool.data import load_rows, prepare, read_manifest, rows_of_split, write_manifest
from vqpool.errors import VqpoolError


def test_rows_of_a_manifest_and_their_task(tmp_path):
    paths = [corpus_trees.tone(tmp_path / f"{k}.wav") for k in range(3)]
    manifest = write_manifest([{"id": str(k), "path": str(p), "label": "a"}
                               for k, p in enumerate(paths)], tmp_path / "digits.csv")
    rows, corpus, task = load_rows(manifest)
    assert rows == read_manifest(manifest) and corpus is None and task == "digits"
    assert load_rows(manifest=manifest, task="mine").task == "mine"
    # corpus options (None means "not given", as command lines pass them) apply to corpora only
    assert load_rows(manifest, label=None, split=None, seed=None).rows == rows
    with pytest.raises(VqpoolError, match="label only apply to a corpus"):
        load_rows(manifest, label="speaker")
    with pytest.raises(VqpoolError, match="root only apply to a corpus"):
        load_rows(manifest, root=tmp_path)


def test_rows_of_a_corpus_and_their_task(tmp_path, fsdd_root):
    root = corpus_trees.speech_commands(tmp_path / "sc")
    loaded = load_rows(corpus="speechcommands", root=root, label=None, split=None, seed=None)
    assert loaded.rows == prepare("speechcommands", root)
    assert (loaded.corpus, loaded.task) == ("speechcommands", "kws")
    assert load_rows(corpus="speechcommands", root=root, task="words").task == "words"
    speakers = load_rows(corpus="fsdd", root=fsdd_root, label="speaker")
    assert speakers.task == "fsdd-speaker" and {row["label"] for row in speakers.rows} == {
        row["speaker"] for row in speakers.rows}
    assert load_rows(corpus="fsdd", root=fsdd_root).task == "fsdd-digit"
    with pytest.raises(VqpoolError, match="root is needed: corpus fsdd is read from its root folder"):
        load_rows(corpus="fsdd")
    with pytest.raises(VqpoolError, match="corpus speechcommands has no option label"):
        load_rows(corpus="speechcommands", root=root, label="speaker")
    with pytest.raises(VqpoolError, match="give one source of rows: .*; got none"):
        load_rows()
    with pytest.raises(VqpoolError, match="give one source of rows: .*; got manifest and corpus"):
        load_rows(tmp_path / "m.csv", "fsdd", fsdd_root)
    with pytest.raises(VqpoolError, match="root only apply to a corpus, not to a hf dataset"):
        load_rows(hf_dataset=tmp_path, root=tmp_path)


def test_rows_of_split_for_codebook_fitting():
    rows = [{"path": f"{k}.wav", "split": s} for k, s in enumerate(["train", "test", "train"])]
    assert [row["path"] for row in rows_of_split(rows)] == ["0.wav", "2.wav"]
    assert [row["path"] for row in rows_of_split(rows, "test")] == ["1.wav"]
    unsplit = [{"path": "a.wav", "split": ""}, {"path": "b.wav"}]
    assert rows_of_split(unsplit, "validation") == unsplit  # no splits: every row trains
    with pytest.raises(VqpoolError, match=r"^m\.csv: no rows with split 'validation'$"):
        rows_of_split(rows, "validation", where="m.csv")
    with pytest.raises(VqpoolError, match=r"^no rows with split 'validation'$"):
        rows_of_split(rows, "validation")
