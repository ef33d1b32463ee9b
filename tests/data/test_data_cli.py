"""`vqpool data prepare` and `vqpool data synth` end to end, through the CLI's own entry point."""

import json

import corpus_trees
from vqpool.cli import main
from vqpool.data import read_manifest


def test_prepare_writes_manifest_and_label_map_and_prints_counts(tmp_path, capsys):
    root = corpus_trees.iemocap(tmp_path / "IEMOCAP_full_release")
    out = tmp_path / "manifests" / "er.csv"
    assert main(["data", "prepare", "iemocap", "--root", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert (
        "dropped 15 utterances with labels outside neu, hap, ang, sad, exc (fru 10, xxx 5)"
        in printed.err
    )
    lines = printed.out.splitlines()
    assert lines[1].split() == ["utterances", "64", "16", "20", "100"]
    assert "fold 3 (test Session3): train 64, validation 16, test 20" in printed.out
    assert out.read_text().splitlines()[0] == "id,path,label,split,speaker,session"
    rows = read_manifest(out)
    assert len(rows) == 100 and rows[0]["path"] == str(
        root / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    )
    assert json.loads((tmp_path / "manifests" / "er.labels.json").read_text()) == {
        "ang": 0,
        "hap": 1,
        "neu": 2,
        "sad": 3,
    }


def test_prepare_with_options_and_a_broken_root(tmp_path, fsdd_root, capsys):
    out = tmp_path / "sid.csv"
    argv = [
        "data",
        "prepare",
        "fsdd",
        "--root",
        str(fsdd_root),
        "--out",
        str(out),
        "--label",
        "speaker",
    ]
    assert main(argv) == 0
    assert len(json.loads((tmp_path / "sid.labels.json").read_text())) == 6
    capsys.readouterr()
    assert main(["data", "prepare", "voxceleb1", "--root", str(tmp_path), "--out", str(out)]) == 1
    assert "iden_split.txt: missing identification split file" in capsys.readouterr().err


def test_synth_writes_a_corpus(tmp_path, capsys):
    out = tmp_path / "synth"
    argv = [
        "data",
        "synth",
        "--out",
        str(out),
        "--words",
        "digits",
        "--voices",
        "3",
        "--repeats",
        "1",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[1].split() == ["utterances", "10", "10", "10", "30"]
    assert (
        len(read_manifest(out / "manifest.csv")) == 30 and (out / "manifest.labels.json").is_file()
    )
