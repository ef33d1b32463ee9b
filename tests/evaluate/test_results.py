import json
import os

import pytest

from vqpool.errors import VqpoolError
from vqpool.evaluate.results import (
    SCHEMA,
    append_result,
    format_table,
    make_row,
    read_results,
    upstream_of,
    validate_row,
)


def row(method: str = "vq-lp", **changes) -> dict:
    made = make_row(
        protocol="1nn", method=method, task="kws", header={"upstream": {"spec": "facebook/wav2vec2-base"},
                                                            "corpus": "speechcommands"},
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
