import pytest
import torch
from memstore import MemoryStore, toy_store

from vqpool.errors import VqpoolError
from vqpool.evaluate.bench import run_bench
from vqpool.evaluate.knn import one_nn_accuracy
from vqpool.evaluate.results import SCHEMA, read_results
from vqpool.evaluate.splits import select_folds
from vqpool.pooling import CorpusStats, pool
from vqpool.vectors import FoldPooler, fit_stats, pool_split


def two_folds(n: int) -> list[list[str]]:
    """Fold 1 tests on the first third, fold 2 on the last; a few rows sit out of fold 2."""
    first = ["test" if i < n // 3 else "train" for i in range(n)]
    second = ["test" if i >= 2 * n // 3 else "" if i < 3 else "train" for i in range(n)]
    return [first, second]


def expected_fold_accuracy(vectors: torch.Tensor, labels: torch.Tensor, names: list[str]) -> float:
    train = [i for i, s in enumerate(names) if s == "train"]
    test = [i for i, s in enumerate(names) if s == "test"]
    return one_nn_accuracy(vectors[train], labels[train], vectors[test], labels[test])


def test_folds_are_averaged() -> None:
    store, vectors = toy_store(36, seed=2)
    labels = torch.arange(36) % 3
    splits = two_folds(36)
    (row,) = run_bench(store, ["ap"], splits=splits, write=False, progress=False)
    expected = [expected_fold_accuracy(vectors, labels, names) for names in splits]
    assert expected[0] != expected[1]  # so that a mix-up of folds would show
    assert row["per_fold"] == pytest.approx(expected)
    assert row["accuracy"] == pytest.approx(sum(expected) / 2)
    assert row["num_test"] == 12 + 12 and row["settings"]["folds"] == [1, 2]
    (only,) = run_bench(store, ["ap"], splits=splits, folds=2, write=False, progress=False)
    assert only["per_fold"] == pytest.approx(expected[1:])
    with pytest.raises(VqpoolError, match="folds 1..2"):
        run_bench(store, ["ap"], splits=splits, folds=3, write=False, progress=False)


def leaky_store() -> tuple[MemoryStore, list[list[str]]]:
    """Test utterances are full of code 7, which no training utterance uses."""
    store, _ = toy_store(24, seed=2, codebook_size=8)
    names = ["train"] * 16 + ["validation"] * 4 + ["test"] * 4
    for i in range(16):
        store.codes[i] = store.codes[i] % 7
    for i in range(16, 24):
        store.codes[i][:, 0] = 7
        store.frames[i] = store.frames[i] + torch.randn(store.frames[i].shape)  # weights matter
    return store, [names]


def test_statistics_come_from_training_rows_only() -> None:
    store, splits = leaky_store()
    (fold,) = select_folds(store.meta, "all", splits)
    store.read.clear()
    stats = fit_stats(store, fold.train, progress=False)
    assert set(store.read) == set(range(16))
    assert stats.num_utterances == 16 and int(stats.code_counts[:, 7].sum()) == 0
    store.read.clear()
    fit_stats(store, fold.fit_indices(include_validation=True), progress=False)
    assert set(store.read) == set(range(20))

    # The pooled test vectors are those of training-only statistics, not of leaked ones.
    pooled = FoldPooler(store, ["vq-gp"], progress=False).vectors(fold)["vq-gp"][fold.test]
    batches = [b[:3] for b in store.batches(list(range(16)))]
    leaked = [b[:3] for b in store.batches(list(range(24)))]
    test = next(store.batches(fold.test, max_frames=1000))
    assert test[3] == sorted(fold.test, key=lambda i: -len(store.frames[i]))  # longest first
    order = torch.tensor([fold.test.index(i) for i in test[3]])
    honest = pool(*test[:3], method="vq-gp", stats=CorpusStats.fit(batches, codebook_size=8))
    cheat = pool(*test[:3], method="vq-gp", stats=CorpusStats.fit(leaked, codebook_size=8))
    assert torch.allclose(pooled[order], honest, atol=1e-6)
    assert not torch.allclose(pooled[order], cheat, atol=1e-4)


def test_pooled_only_store_gives_the_same_accuracies(tmp_path) -> None:
    store, _ = toy_store(30, seed=3)
    methods = ["ap", "vq-lp", "whitening", "softdecay"]
    splits = two_folds(30)
    full = run_bench(store, methods, splits=splits, write=False, progress=False)
    pooled = {m: torch.cat([pool(*batch[:3], method=m) for batch in store.batches(list(range(30)))])
              for m in ("ap", "vq-lp")}
    order = [i for *_, batch in store.batches(list(range(30))) for i in batch]
    stored = {m: torch.empty_like(v).index_copy_(0, torch.tensor(order), v) for m, v in pooled.items()}
    light = MemoryStore(None, store.codes, store.meta, store.header, codebook_size=8, pooled=stored)
    rows = run_bench(light, methods, splits=splits, write=False, progress=False)
    for a, b in zip(full, rows, strict=True):
        assert a["method"] == b["method"] and a["per_fold"] == pytest.approx(b["per_fold"])
    with pytest.raises(VqpoolError, match="vq-sif needs frames"):
        run_bench(light, ["vq-sif"], splits=splits, write=False, progress=False)


def test_rows_are_appended_to_the_store_results(tmp_path) -> None:
    store, _ = toy_store(18, seed=4, path=str(tmp_path))
    splits = [["train"] * 12 + ["test"] * 6]
    rows = run_bench(store, ["ap", "sp", "vq-lp"], splits=splits, semantics="reference", a=1e-2,
                     progress=False)
    written = read_results(tmp_path / "results.jsonl")
    assert [r["method"] for r in written] == ["ap", "sp", "vq-lp"]
    assert written == rows
    for row in written:
        assert set(SCHEMA) <= set(row)
        assert row["protocol"] == "1nn" and row["task"] == "toy" and row["store"] == str(tmp_path)
        assert row["settings"]["semantics"] == "reference" and row["settings"]["a"] == 1e-2
        assert row["num_train"] == 12 and row["num_test"] == 6 and row["std"] is None


def test_errors_name_the_problem() -> None:
    store, _ = toy_store(12, seed=5)
    splits = [["train"] * 8 + ["test"] * 4]
    with pytest.raises(VqpoolError, match="is not a pooling method"):
        run_bench(store, ["mean"], splits=splits, write=False, progress=False)
    store.codes = None
    with pytest.raises(VqpoolError, match="vq-lp needs codes"):
        run_bench(store, ["ap", "vq-lp"], splits=splits, write=False, progress=False)
    store.meta[0]["label"] = ""
    with pytest.raises(VqpoolError, match="u0"):
        run_bench(store, ["ap"], splits=splits, write=False, progress=False)


def test_reused_pooling_equals_pooling_each_fold_afresh() -> None:
    store, _ = toy_store(30, seed=6)
    generator = torch.Generator().manual_seed(6)
    store.frames = [f + torch.randn(f.shape, generator=generator) for f in store.frames]  # weights matter
    splits = two_folds(30)
    splits[1][5] = "validation"
    folds = select_folds(store.meta, "all", splits)
    methods = ["ap", "vq-lp", "vq-gp", "whitening"]
    shared = FoldPooler(store, methods, progress=False)
    for fold in folds:
        rows = fold.train + fold.test
        reused = shared.vectors(fold, rows)
        fresh = FoldPooler(store, methods, progress=False).vectors(fold, rows)
        for method in methods:
            assert torch.allclose(reused[method][rows], fresh[method][rows], atol=1e-6), method
    # Statistics differ between the folds, so must the statistics methods' vectors.
    first, second = (FoldPooler(store, ["vq-gp"], progress=False).vectors(f)["vq-gp"] for f in folds)
    both = [i for i in range(30) if splits[0][i] and splits[1][i]]
    assert not torch.allclose(first[both], second[both])


def test_leave_one_session_out_trains_on_every_other_session() -> None:
    store, vectors = toy_store(30, seed=7)
    for i, row in enumerate(store.meta):
        row["session"] = f"Ses0{i % 3 + 1}"
    labels = torch.arange(30) % 3
    (row,) = run_bench(store, ["ap"], write=False, progress=False)  # folds from vqpool.data
    assert row["settings"]["fold_sizes"] == [[20, 10]] * 3
    expected = [
        expected_fold_accuracy(vectors, labels, ["test" if i % 3 == k else "train" for i in range(30)])
        for k in range(3)
    ]
    assert row["per_fold"] == pytest.approx(expected)


def noisy_store(n: int, seed: int) -> MemoryStore:
    store, _ = toy_store(n, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    store.frames = [f + torch.randn(f.shape, generator=generator) for f in store.frames]  # weights matter
    return store


@pytest.mark.parametrize("include_validation", [False, True])
def test_a_fold_reads_each_frame_once_and_pools_as_statistics_from_frames(include_validation) -> None:
    store = noisy_store(30, seed=8)
    (fold,) = select_folds(store.meta, "all", [["train"] * 18 + ["validation"] * 4 + ["test"] * 8])
    rows = fold.train + fold.test
    pooler = FoldPooler(store, "all", include_validation=include_validation, progress=False)
    assert {"whitening", "softdecay", "vq-gp", "vq-sif", "sp"} <= set(pooler.methods)
    store.read_frames.clear()
    vectors = pooler.vectors(fold, rows)
    read = sorted(store.read_frames)
    assert read == sorted(fold.fit_indices(include_validation) + fold.test)  # each row once
    # The reference: statistics fitted on the training rows' frames, then every batch pooled.
    stats = CorpusStats.fit([b[:3] for b in store.batches(fold.fit_indices(include_validation))],
                            codebook_size=8, progress=False)
    for method in pooler.methods:
        expected = torch.zeros_like(vectors[method])
        for frames, lengths, codes, batch in store.batches(rows):
            expected[batch] = pool(frames, lengths, codes, method, stats)
        torch.testing.assert_close(vectors[method][rows], expected[rows], rtol=0, atol=1e-6, msg=method)


def test_later_folds_transform_the_cached_ap_vectors_without_reading_frames() -> None:
    store = noisy_store(30, seed=9)
    folds = select_folds(store.meta, "all", [["train"] * 20 + ["test"] * 10,
                                             ["test"] * 10 + ["train"] * 20])
    pooler = FoldPooler(store, ["whitening", "softdecay", "vq-lp"], progress=False)
    first = pooler.vectors(folds[0])
    store.read_frames.clear()
    second = pooler.vectors(folds[1])
    assert store.read_frames == [] and "ap" not in second
    assert torch.equal(first["vq-lp"], second["vq-lp"])
    fresh = FoldPooler(store, ["whitening", "softdecay"], progress=False).vectors(folds[1])
    for method in ("whitening", "softdecay"):
        assert torch.equal(second[method], fresh[method]), method
        assert not torch.allclose(first[method], second[method])  # the folds' statistics differ


def test_pool_split_writes_into_the_given_tensors() -> None:
    store = noisy_store(12, seed=10)
    rows = [1, 3, 4, 8, 11]
    returned = pool_split(store.batches(rows), ["ap", "sp"], rows)
    out = {"ap": torch.full((12, 6), 7.0), "sp": torch.full((12, 12), 7.0)}
    written = pool_split(store.batches(rows), ["ap", "sp"], rows, out=out)
    assert written is out and written["ap"] is out["ap"]
    others = [i for i in range(12) if i not in rows]
    for method in ("ap", "sp"):
        assert torch.equal(out[method][rows], returned[method])
        assert bool((out[method][others] == 7.0).all())


def test_both_searches_give_the_same_rows_and_say_which_ran() -> None:
    pytest.importorskip("faiss")
    store, vectors = toy_store(36, seed=4)
    splits = two_folds(36)
    rows = {search: run_bench(store, ["ap", "vq-lp"], splits=splits, search=search, write=False,
                              progress=False) for search in ("faiss", "matmul", "auto")}
    assert [r["settings"]["search"] for r in rows["auto"]] == ["faiss", "faiss"]
    assert [r["settings"]["search"] for r in rows["matmul"]] == ["matmul", "matmul"]
    for faiss_row, matmul_row in zip(rows["faiss"], rows["matmul"], strict=True):
        assert faiss_row["per_fold"] == matmul_row["per_fold"]
        assert faiss_row["ci95"] == matmul_row["ci95"]
    labels = torch.arange(36) % 3
    expected = [expected_fold_accuracy(vectors, labels, names) for names in splits]
    assert rows["faiss"][0]["per_fold"] == pytest.approx(expected)
