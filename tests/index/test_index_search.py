"""`vqpool index build` and `vqpool search` on real voices (FSDD through GE2E), and the
approximate indexes on synthetic clustered vectors."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from expected import pooled_one_by_one

from vqpool import FeatureStore
from vqpool.cli import main
from vqpool.index import Index, build
from vqpool.neighbours import make_index, measure_recall, recall_at, resolve_params
from vqpool.pooling import CorpusStats

faiss = pytest.importorskip("faiss")  # the dev extra installs faiss-cpu: runs in CI


@pytest.fixture(scope="module")
def vq_lp_index(speaker_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "fsdd.index"
    assert main(["index", "build", "--store", str(speaker_store), "--method", "vq-lp",
                 "--out", str(out)]) == 0
    return out


def search_json(capsys: pytest.CaptureFixture, index: Path, *queries: str, k: int = 10) -> list:
    assert main(["search", "--index", str(index), *queries, "-k", str(k), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["results"]


def paths_of(store: Path, speaker: str) -> list[tuple[str, str]]:
    return [(m["id"], m["path"]) for m in FeatureStore(store).meta if m["speaker"] == speaker]


def test_a_held_out_voice_finds_its_own_recordings(vq_lp_index: Path, speaker_store: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    meta = FeatureStore(speaker_store).meta
    held_out = {m["speaker"] for m in meta if m["split"] == "test"}
    assert len(held_out) == 1
    speaker = held_out.pop()
    queries = paths_of(speaker_store, speaker)
    results = search_json(capsys, vq_lp_index, *(path for _, path in queries), k=6)
    nearest, precision = [], []
    for (query_id, _), result in zip(queries, results, strict=True):
        hits = result["hits"]
        assert hits[0]["id"] == query_id and hits[0]["cosine"] > 0.9999  # in the index: itself
        same = [hit["speaker"] == speaker for hit in hits[1:]]
        nearest.append(same[0])
        precision.append(np.mean(same))
    # 9 of the other 59 recordings are this voice: 15% by chance. The nearest other recording
    # is the same voice (measured: 9 queries of 10); the top 5 hold it twice as often as chance
    # (measured: 0.40; the frames, a mean of GE2E's layers, also carry the digit spoken).
    assert np.mean(nearest) >= 0.8, nearest
    assert np.mean(precision) >= 0.3, precision


def test_a_training_file_returns_itself_first(vq_lp_index: Path, speaker_store: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    row = next(m for m in FeatureStore(speaker_store).meta if m["split"] == "train")
    assert main(["search", "--index", str(vq_lp_index), row["path"], "-k", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith(f"query: {row['path']}")
    assert table[1].split() == ["rank", "id", "label", "cosine"]
    rank, found, label, cosine = table[3].split()
    assert (rank, found, label) == ("1", row["id"], row["label"]) and float(cosine) > 0.9999
    assert len(table) == 6


def test_exact_index_matches_brute_force_cosine(vq_lp_index: Path, speaker_store: Path) -> None:
    expected = pooled_one_by_one(speaker_store, "vq-lp")
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    cosine = unit @ unit.T
    index = Index.load(vq_lp_index)
    store_ids = [m["id"] for m in FeatureStore(speaker_store).meta]
    hits = index.search(expected, k=8)
    for query, (scores, ids) in enumerate(zip(hits.scores, hits.ids, strict=True)):
        order = np.argsort(-cosine[query], kind="stable")[:8]
        np.testing.assert_allclose(scores, cosine[query][order], atol=1e-5)
        # the same neighbours, up to the order of (near-)ties
        top = {store_ids[j] for j in order[:7]}
        assert len(top & set(ids)) >= 6
        assert ids[0] == store_ids[query]


def test_id_and_vector_file_queries(vq_lp_index: Path, speaker_store: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    meta = FeatureStore(speaker_store).meta
    first, second = meta[3], meta[40]
    by_audio = search_json(capsys, vq_lp_index, first["path"], k=5)[0]["hits"]
    by_id = search_json(capsys, vq_lp_index, first["id"], k=5)[0]["hits"]
    assert [h["id"] for h in by_id] == [h["id"] for h in by_audio]
    expected = pooled_one_by_one(speaker_store, "vq-lp")
    np.save(tmp_path / "one.npy", expected[3] * 7.0)  # any scale: queries are normalised
    np.save(tmp_path / "two.npy", expected[[3, 40]])
    results = search_json(capsys, vq_lp_index, str(tmp_path / "one.npy"), str(tmp_path / "two.npy"),
                          k=5)
    assert len(results) == 3
    assert [h["id"] for h in results[0]["hits"]][0] == first["id"]
    assert results[1]["query"] == f"{tmp_path / 'two.npy'}[0]"
    assert results[2]["hits"][0]["id"] == second["id"]
    assert main(["search", "--index", str(vq_lp_index), "no-such-utterance"]) == 1
    err = capsys.readouterr().err.strip()
    assert "QUERY 'no-such-utterance' is neither a file" in err and len(err.splitlines()) == 1


def test_index_folder_records_how_it_was_built(vq_lp_index: Path, speaker_store: Path) -> None:
    index = Index.load(vq_lp_index)
    header = index.header
    assert header["method"] == "vq-lp" and header["index"] == {"kind": "flat"}
    assert header["upstream"]["spec"] == "ge2e" and header["layers"] == "mean"
    assert header["store"]["path"] == str(speaker_store.resolve())
    assert header["stats"] is None
    assert (vq_lp_index / "codebook.pt").is_file()
    assert len(index) == len(FeatureStore(speaker_store)) == header["count"]
    assert index.rows[0].keys() >= {"id", "label", "split", "speaker", "path"}
    assert {row["split"] for row in index.rows} == {"train", "validation", "test"}


def test_statistics_methods_pool_queries_with_the_saved_statistics(
        speaker_store: Path, tmp_path: Path) -> None:
    index = build(speaker_store, tmp_path / "gp.index", "vq-gp", progress=False)
    assert index.header["stats"]["split"] == "train"
    saved = CorpusStats.load(tmp_path / "gp.index" / "stats.pt")
    train = FeatureStore(speaker_store).indices("train")
    assert saved.num_utterances == len(train)  # fitted on the training split only
    expected = pooled_one_by_one(speaker_store, "vq-gp", CorpusStats.from_store(
        FeatureStore(speaker_store), "train", progress=False))
    meta = FeatureStore(speaker_store).meta
    query = next(i for i, m in enumerate(meta) if m["split"] == "validation")
    encoded = index.encode([meta[query]["path"]])
    cosine = float(encoded[0] @ expected[query]
                   / np.linalg.norm(encoded[0]) / np.linalg.norm(expected[query]))
    assert cosine > 0.9999  # the query pooled exactly as the store's utterance
    hits = index.search(encoded, 1)
    assert hits.ids[0] == [meta[query]["id"]] and hits.scores[0, 0] > 0.9999


@pytest.mark.parametrize("method", ["vq-lp", "whitening"])
def test_a_pooled_only_store_indexes_stored_and_derived_vectors(
        method: str, pooled_store: Path, tmp_path: Path) -> None:
    """vq-lp is stored; whitening is fitted on the stored training AP vectors. Either way an
    audio query is pooled like the store's own vector of that file."""
    index = build(pooled_store, tmp_path / f"{method}.index", method, progress=False)
    meta = FeatureStore(pooled_store).meta
    test_row = next(i for i, m in enumerate(meta) if m["split"] == "test")
    hits = index.search(index.encode([meta[test_row]["path"]]), 3)
    assert hits.ids[0][0] == meta[test_row]["id"] and hits.scores[0, 0] > 0.9999
    if method == "vq-lp":
        stored = FeatureStore(pooled_store).pooled("vq-lp").numpy()
        np.testing.assert_allclose(index.vector(test_row),
                                   stored[test_row] / np.linalg.norm(stored[test_row]), atol=1e-6)


def test_a_registered_method_indexes_and_searches(speaker_store: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import vqpool
    from vqpool.pooling import options, registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(options, "_DECLARED", dict(options._DECLARED))

    def last_half(lengths, codes, stats=None):
        steps = torch.arange(codes.shape[1])[None]
        weights = ((steps >= lengths[:, None] // 2) & (steps < lengths[:, None])).float()
        return weights / weights.sum(1, keepdim=True)

    vqpool.register_method("last-half", weights=last_half, needs_codes=True)
    index = build(speaker_store, tmp_path / "plugin.index", "last-half", progress=False)
    meta = FeatureStore(speaker_store).meta
    hits = index.search(index.encode([meta[5]["path"]]), 2)
    assert hits.ids[0][0] == meta[5]["id"] and hits.scores[0, 0] > 0.9999


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_on_the_store(kind: str, speaker_store: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / f"{kind}.index"
    assert main(["index", "build", "--store", str(speaker_store), "--method", "ap", "--kind", kind,
                 "--out", str(out), "--recall-queries", "20"]) == 0
    captured = capsys.readouterr()
    assert "recall@10 1.0000 against exact search, on 20 queries" in captured.err
    index = Index.load(out)
    assert index.params.kind == kind and index.header["recall_at_10"] == 1.0
    meta = FeatureStore(speaker_store).meta
    flag, wrong = ("--nprobe", "--ef-search") if kind == "ivf" else ("--ef-search", "--nprobe")
    assert search_json(capsys, out, meta[0]["id"], "--json", flag, "4", k=3)  # extra flags parse
    assert main(["search", "--index", str(out), meta[0]["id"], wrong, "4"]) == 1
    assert f"{wrong} applies to" in capsys.readouterr().err
    np.testing.assert_allclose(index.vector(meta[0]["id"]), index.vector(0), rtol=0)


def clustered(count: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    basis = rng.standard_normal((8, dim)).astype(np.float32) / np.sqrt(8)
    x = centres[rng.integers(0, clusters, count)] + rng.standard_normal((count, 8)).astype(np.float32) @ basis
    x += 0.2 * rng.standard_normal((count, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_on_synthetic_clusters(kind: str) -> None:
    vectors = clustered(6000, 64, 40, seed=1)
    params = resolve_params(kind, len(vectors))
    if kind == "ivf":
        assert params.nlist == min(6000 // 39, round(4 * 6000 ** 0.5)) and params.nprobe >= 1
    index = make_index(faiss, vectors, params)
    queries = np.arange(0, 6000, 30)
    recall = measure_recall(faiss, index, vectors, queries, 10)
    assert recall >= 0.9
    # An independent count: exact neighbours by numpy, the approximate ones from FAISS.
    exact = np.argsort(-(vectors[queries] @ vectors.T), axis=1)[:, 1:11]  # [0] is the query
    _, found = index.search(vectors[queries], 11)
    mine = np.mean([len(set(e) & (set(f) - {q})) / 10
                    for q, e, f in zip(queries, exact, found, strict=True)])
    assert abs(mine - recall) < 0.02


def test_recall_counts_shared_neighbours_without_the_query() -> None:
    exact = np.array([[0, 1, 2, 3], [1, 0, 5, 6]])
    approx = np.array([[0, 2, 9, 1], [7, 1, 5, 8]])
    # query 0: truth {1, 2, 3}, found {2, 9, 1} -> 2/3; query 1: truth {0, 5, 6}, found {7, 5, 8} -> 1/3
    assert recall_at(approx, exact, np.array([0, 1]), 3) == pytest.approx(0.5)


@pytest.mark.parametrize(("argv", "message"), [
    (["--kind", "annoy"], "--kind must be one of flat, ivf, hnsw; got 'annoy'"),
    (["--nlist", "8"], "--nlist applies to an index of --kind ivf only, not flat"),
    (["--kind", "ivf", "--nlist", "0"], "--nlist must be a positive integer"),
    (["--kind", "ivf", "--nlist", "1000"], "--nlist is 1000, more lists than the 60 vectors"),
    (["--method", "vq-lpp"], "--method 'vq-lpp' is not a pooling method"),
    (["--method", "sap"], "--method names methods that cannot run"),
    (["--splits", "dev"], "no split 'dev'"),
])
def test_build_errors_are_one_line_with_flags(speaker_store: Path, tmp_path: Path, argv: list,
                                              message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["index", "build", "--store", str(speaker_store), "--out",
                 str(tmp_path / "x.index"), *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.index").exists()


def test_an_existing_output_is_kept_unless_overwrite(vq_lp_index: Path, speaker_store: Path,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    argv = ["index", "build", "--store", str(speaker_store), "--method", "ap", "--out", str(mine)]
    assert main(argv) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 1
    assert "is not what this writes" in capsys.readouterr().err
    assert (mine / "keep.txt").read_text() == "mine"
    copy = tmp_path / "copy.index"
    build(speaker_store, copy, "ap", progress=False)
    build(speaker_store, copy, "vq-lp", progress=False, overwrite=True)
    assert Index.load(copy).method == "vq-lp"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_without_faiss_the_error_names_the_extra(vq_lp_index: Path, speaker_store: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    for argv in (["index", "build", "--store", str(speaker_store), "--out", str(tmp_path / "i")],
                 ["search", "--index", str(vq_lp_index), "0_theo_0"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "pip install 'vqpool[faiss]'" in err, err
