import json
import os

import pytest

from toy_headers import toy_header
from vqpool.errors import VqpoolError
from vqpool.evaluate.results import (
    SCHEMA,
    append_result,
    format_table,
    header_summary,
    make_row,
    read_results,
    upstream_of,
    validate_row,
)
from vqpool.report.paper_tables import paper_upstream_of
from vqpool.report.tables import build_tables

BASE = toy_header(spec="facebook/wav2vec2-base", dim=768, num_layers=13, corpus="speechcommands",
                  task="kws")


def row(method: str = "vq-lp", header=BASE, **changes) -> dict:
    made = make_row(
        protocol="1nn", method=method, task="kws", header=header,
        store="/stores/kws", per_fold=[70.0, 80.0], per_seed=None, num_train=10, num_test=4,
        settings={"semantics": "paper"}, seconds=1.5,
    )
    made.update(changes)
    return made


def test_row_follows_the_schema() -> None:
    made = row()
    assert list(made)[: len(SCHEMA)] == list(SCHEMA)
    validate_row(made)
    assert made["accuracy"] == 75.0 and made["std"] is None
    assert made["paper_upstream"] == "base" and made["upstream"] == "facebook/wav2vec2-base"
    assert made["corpus"] == "speechcommands"
    # The store header is summarised, not copied: what the report reads and what tells stores apart.
    assert made["store_header"] == {
        "upstream": "facebook/wav2vec2-base", "kind": "toy", "layers": "mean", "num_layers": 13,
        "dim": 768, "frame_rate": 50.0, "codes": "quantizer", "num_codebooks": 2, "codebook_size": 8,
        "codebook": None,
    }
    assert header_summary(made["store_header"]) == made["store_header"]  # a summary reads as itself
    assert set(made["versions"]) == {"vqpool", "torch", "transformers"}
    seeded = make_row(protocol="probe", method="ap", task="ic", header={}, store=None, per_fold=[90.0],
                      per_seed=[89.0, 91.0, 90.0], num_train=1, num_test=1, settings={}, seconds=0.0)
    assert seeded["std"] == pytest.approx(1.0)  # sample std of 89, 91, 90
    for bad in ({"accuracy": "75"}, {"protocol": "knn"}, {"num_test": True}, {"settings": None}):
        with pytest.raises(ValueError):
            validate_row(row(**bad))


def test_paper_upstream_from_hub_id_or_a_local_copy_of_the_right_size() -> None:
    local = {"spec": "/models/wav2vec2-xls-r-300m/", "dim": 1024, "num_layers": 25}
    assert upstream_of({"upstream": local}) == ("/models/wav2vec2-xls-r-300m/", "xlsr")
    tiny = {**local, "dim": 32, "num_layers": 3}  # named like XLS-R, but not the paper's model
    assert upstream_of({"upstream": tiny}) == ("/models/wav2vec2-xls-r-300m/", None)
    assert upstream_of({"spec": "facebook/wav2vec2-large"}) == ("facebook/wav2vec2-large", "large")
    assert upstream_of({"upstream": "logmel"}) == ("logmel", None)
    assert upstream_of({}) == (None, None)
    assert upstream_of(toy_header(spec="/models/wav2vec2-xls-r-300m/", dim=1024, num_layers=25)) == (
        "/models/wav2vec2-xls-r-300m/", "xlsr")


# A row as the previous vqpool wrote it: the whole format-1 store header, upstream description
# and all (abridged: versions, model), layers/codebook/dim copied out of it and again in job.
DESCRIBED = {"spec": "/models/wav2vec2-base", "kind": "transformers", "layers": "mean", "num_layers": 13,
             "dim": 768, "sample_rate": 16000, "frame_rate": 50.0, "pads_safely": False,
             "codes": "quantizer", "num_codebooks": 2, "codebook_size": 320, "codebook": None,
             "versions": {"vqpool": "0.1.0"}, "model": {"class": "Wav2Vec2ForPreTraining"}}
OLD_HEADER = {"format": "vqpool-store", "format_version": 1, "created": "2026-11-01T10:00:00+00:00",
              "upstream": DESCRIBED, "layers": "mean", "codebook": None, "sample_rate": 16000,
              "frame_rate": 50.0, "dim": 768, "num_codebooks": 2, "codebook_size": 320,
              "streams": ["codes", "frames"], "pooled_dims": {}, "pooled_options": None,
              "corpus": "speechcommands", "task": "kws", "versions": {"vqpool": "0.1.0"},
              "job": {"upstream": DESCRIBED, "rows_sha256": "0" * 64, "batch_seconds": 60.0,
                      "pooled_only": None, "part": None, "num_utterances": 10}}


def test_rows_of_the_previous_version_read_and_compare_as_new_ones(tmp_path) -> None:
    local = toy_header(spec="/models/wav2vec2-base", dim=768, num_layers=13, codebook_size=320,
                       corpus="speechcommands", task="kws")
    new = row("ap", header=local)
    old = {**row("vq-lp", header=local), "store_header": OLD_HEADER, "timestamp": "2026-11-01T11:00:00+00:00"}
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(old) + "\n")  # as the old version appended it
    append_result(path, new)
    assert [r["method"] for r in read_results(path)] == ["vq-lp", "ap"]
    summary = header_summary(OLD_HEADER)
    assert summary == {**new["store_header"], "kind": "transformers"}
    assert header_summary(old["store_header"]) == summary  # and the summary of an old header
    assert paper_upstream_of(old) == paper_upstream_of(new) == ("base", "")
    (table,) = build_tables(read_results(path))
    assert table.paper_upstream == "base" and not table.no_paper  # one model, whichever row form


def test_append_then_read_round_trip(tmp_path) -> None:
    path = tmp_path / "sub" / "results.jsonl"
    append_result(path, row("ap"))
    append_result(path, row("sp"))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["method"] == "sp"
    assert [r["method"] for r in read_results(path)] == ["ap", "sp"]
    with pytest.raises(ValueError):
        append_result(path, {"method": "ap"})  # never writes a row R cannot read
    assert len(path.read_text().splitlines()) == 2


def test_truncated_line_warns_and_the_next_append_stays_readable(tmp_path) -> None:
    path = tmp_path / "results.jsonl"
    append_result(path, row("ap"))
    full = json.dumps(row("sp"))
    with open(path, "a") as handle:  # a writer killed mid-line
        handle.write(full[: len(full) // 2])
    with pytest.warns(UserWarning, match="line 2"):
        assert [r["method"] for r in read_results(path)] == ["ap"]
    append_result(path, row("vq-lp"))
    with pytest.warns(UserWarning, match="line 2"):
        assert [r["method"] for r in read_results(path)] == ["ap", "vq-lp"]


def test_rows_missing_the_schema_are_errors(tmp_path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"method": "ap"}) + "\n")
    with pytest.raises(VqpoolError, match="line 1"):
        read_results(path)
    with pytest.raises(VqpoolError):
        read_results(tmp_path / "missing.jsonl")
    os.remove(path)


def test_table_lists_methods_and_folds() -> None:
    table = format_table([row("ap"), row("vq-lp", accuracy=81.25, per_fold=[80.0, 82.5])])
    lines = table.splitlines()
    assert "fold 2" in lines[1] and lines[3].startswith("ap") and "81.25" in lines[4]
    assert "82.50" in lines[4]
