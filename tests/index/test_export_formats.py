"""`vqpool export`: NumPy, Parquet and Hugging Face datasets of a real store's pooled vectors,
written chunk by chunk and atomically."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from expected import pooled_one_by_one

from vqpool import FeatureStore
from vqpool.cli import main
from vqpool.export import export
from vqpool.pooling import CorpusStats

pd = pytest.importorskip("pandas")  # the dev extra installs pyarrow, pandas and datasets
datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def expected(speaker_store: Path) -> dict[str, np.ndarray]:
    stats = CorpusStats.from_store(FeatureStore(speaker_store), "train", progress=False)
    return {"ap": pooled_one_by_one(speaker_store, "ap"),
            "vq-lp": pooled_one_by_one(speaker_store, "vq-lp"),
            "vq-gp": pooled_one_by_one(speaker_store, "vq-gp", stats)}


def store_rows(store: Path) -> list[dict]:
    return FeatureStore(store).meta


def test_npy_memmaps_match_the_pooled_vectors(speaker_store: Path, expected: dict,
                                              tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    assert main(["export", "--store", str(speaker_store), "--methods", "ap,vq-lp,vq-gp",
                 "--format", "npy", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "ap.npy", "export.json", "ids.csv", "vq-gp.npy", "vq-lp.npy"]
    for method in ("ap", "vq-lp", "vq-gp"):
        array = np.load(out / f"{method}.npy", mmap_mode="r")
        assert isinstance(array, np.memmap) and array.dtype == np.float32
        np.testing.assert_allclose(array, expected[method], rtol=1e-5, atol=1e-6)
    with open(out / "ids.csv", newline="") as handle:
        ids = list(csv.DictReader(handle))
    meta = store_rows(speaker_store)
    assert [row["id"] for row in ids] == [m["id"] for m in meta]
    assert [row["speaker"] for row in ids] == [m["speaker"] for m in meta]
    about = json.loads((out / "export.json").read_text())
    assert about["methods"] == {"ap": 256, "vq-lp": 256, "vq-gp": 256}
    assert about["stats_split"] == "train"


def test_parquet_loads_in_pandas_with_float32_lists(speaker_store: Path, expected: dict,
                                                    tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "fsdd.parquet"
    result = export(speaker_store, ["ap", "vq-lp", "sp"], "parquet", out, progress=False,
                    chunk_rows=16)  # four row groups: written as it goes
    assert result.num_rows == 60 and result.dims == {"ap": 256, "vq-lp": 256, "sp": 512}
    frame = pd.read_parquet(out)
    meta = store_rows(speaker_store)
    assert list(frame.columns) == ["id", "label", "split", "speaker", "ap", "vq-lp", "sp"]
    assert frame["id"].tolist() == [m["id"] for m in meta]
    assert frame["split"].tolist() == [m["split"] for m in meta]
    for method in ("ap", "vq-lp"):
        cells = frame[method].tolist()
        assert all(isinstance(c, np.ndarray) and c.dtype == np.float32 and c.shape == (256,)
                   for c in cells)
        np.testing.assert_allclose(np.stack(cells), expected[method], rtol=1e-5, atol=1e-6)
    assert frame["sp"][0].shape == (512,)
    column = pq.read_schema(out).field("vq-lp").type
    assert pa.types.is_fixed_size_list(column) and column.list_size == 256
    assert column.value_type == pa.float32()
    assert pq.ParquetFile(out).num_row_groups == 4
    loaded = datasets.Dataset.from_parquet(str(out), cache_dir=str(tmp_path / "cache"))
    assert loaded.features["vq-lp"].length == 256


def test_hugging_face_dataset_loads_from_disk(speaker_store: Path, expected: dict,
                                              tmp_path: Path) -> None:
    out = tmp_path / "fsdd-hf"
    assert main(["export", "--store", str(speaker_store), "--methods", "vq-lp", "--format", "hf",
                 "--out", str(out), "--splits", "test,validation"]) == 0
    dataset = datasets.load_from_disk(str(out))
    meta = store_rows(speaker_store)
    rows = [i for i, m in enumerate(meta) if m["split"] in ("test", "validation")]
    assert len(dataset) == len(rows) == 20
    assert dataset.column_names == ["id", "label", "split", "speaker", "vq-lp"]
    feature = dataset.features["vq-lp"]
    assert feature.length == 256 and feature.feature.dtype == "float32"
    assert dataset["id"] == [meta[i]["id"] for i in rows]
    vectors = np.asarray(dataset.with_format("numpy")["vq-lp"])
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected["vq-lp"][rows], rtol=1e-5, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_rows_are_pooled_a_chunk_at_a_time(speaker_store: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    original = FeatureStore.batches

    def batches(self, indices=None, **options):
        asked.append(len(indices))
        return original(self, indices, **options)

    monkeypatch.setattr(FeatureStore, "batches", batches)
    export(speaker_store, ["vq-lp"], "npy", tmp_path / "a", chunk_rows=7, progress=False)
    assert asked == [7] * 8 + [4]  # never the whole corpus at once
    asked.clear()
    export(speaker_store, ["vq-lp", "vq-bp"], "npy", tmp_path / "b", chunk_rows=25,
           progress=False)
    assert asked[0] == 40 and asked[1:] == [25, 25, 10]  # statistics on train first, then chunks
    a, b = np.load(tmp_path / "a" / "vq-lp.npy"), np.load(tmp_path / "b" / "vq-lp.npy")
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("format", "name"), [("npy", "out"), ("parquet", "out.parquet"),
                                              ("hf", "out-hf")])
def test_an_interrupted_export_leaves_nothing_that_looks_complete(
        format: str, name: str, speaker_store: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import vqpool.export as export_module

    real = export_module.pooled_chunks

    def interrupted(*args, **kwargs):
        chunks = real(*args, **kwargs)
        yield next(chunks)
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "pooled_chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(speaker_store, ["ap"], format, tmp_path / name, chunk_rows=10, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_outputs_and_missing_extras(speaker_store: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "x.parquet"
    argv = ["export", "--store", str(speaker_store), "--methods", "ap", "--format", "parquet",
            "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    (tmp_path / "notes.parquet").write_text("mine")
    argv[-1] = str(tmp_path / "notes.parquet")
    assert main([*argv, "--overwrite"]) == 1
    assert "is not what this writes" in capsys.readouterr().err
    assert (tmp_path / "notes.parquet").read_text() == "mine"
    assert main([*argv[:-4], "--format", "csv", "--out", str(tmp_path / "y")]) == 1
    assert "--format must be one of npy, parquet, hf" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main([*argv[:-1], str(tmp_path / "z.parquet")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'vqpool[export]'" in err
