"""FeatureStore and the tests' in-memory store are one ``Store``: same batches, same order, same
tuples, same splits; and what ``store.batches`` yields is what ``CorpusStats.fit`` takes."""

import pytest
import torch
from memstore import MemoryStore

from toy_headers import toy_header
from vqpool.errors import VqpoolError
from vqpool.pooling import CorpusStats, pool
from vqpool.store import FeatureStore, Store, StoreWriter

DIM, GROUPS, CODES = 4, 2, 50
LENGTHS = [5, 17, 1, 9, 17, 2, 11, 3]  # two of 17 frames: ties keep their given order


def both(tmp_path) -> tuple[FeatureStore, MemoryStore]:
    generator = torch.Generator().manual_seed(0)
    # Multiples of 1/4 in [-4, 4) are exact in the store's fp16: both stores hold equal frames.
    frames = [torch.randint(-16, 16, (t, DIM), generator=generator) / 4 for t in LENGTHS]
    codes = [torch.randint(0, CODES, (t, GROUPS), generator=generator) for t in LENGTHS]
    meta = [{"id": f"u{i}", "split": "train" if i % 3 else "test", "num_frames": t} for i, t in enumerate(LENGTHS)]
    header = toy_header(dim=DIM, num_codebooks=GROUPS, codebook_size=CODES, num_utterances=len(LENGTHS))
    writer = StoreWriter(tmp_path / "s", header)
    writer.write([(i, m, {"frames": f.numpy(), "codes": c.numpy()})
                  for i, (m, f, c) in enumerate(zip(meta, frames, codes, strict=True))])
    writer.seal()
    memory = MemoryStore(frames, codes, [dict(m) for m in meta], header, codebook_size=CODES,
                         path=str(tmp_path / "s"))
    return FeatureStore(tmp_path / "s"), memory


def test_both_stores_are_a_store_and_batch_alike(tmp_path) -> None:
    disk, memory = both(tmp_path)
    assert isinstance(disk, Store) and isinstance(memory, Store)
    chosen = [7, 0, 1, 2, 4, 5, 6]
    for max_frames in (1, 20, 36, 10**6):
        pairs = list(zip(disk.batches(chosen, max_frames=max_frames),
                         memory.batches(chosen, max_frames=max_frames), strict=True))
        assert sorted(i for *_, indices in disk.batches(chosen, max_frames=max_frames) for i in indices) == sorted(chosen)
        for (frames, lengths, codes, indices), (m_frames, m_lengths, m_codes, m_indices) in pairs:
            assert indices == m_indices and torch.equal(lengths, m_lengths)
            assert torch.equal(frames, m_frames) and torch.equal(codes, m_codes)
            assert lengths.tolist() == sorted(lengths.tolist(), reverse=True)  # longest first
    first = next(disk.batches(max_frames=10**6))[3]
    assert first[:2] == [1, 4]  # the tie in the order given
    assert disk.indices("test") == memory.indices("test") == [0, 3, 6]
    assert disk.indices() == memory.indices() == list(range(len(LENGTHS)))
    for store in (disk, memory):
        with pytest.raises(VqpoolError, match="no split 'dev'"):
            store.indices("dev")


def test_corpus_stats_fit_takes_the_store_batches_as_they_come(tmp_path) -> None:
    disk, _ = both(tmp_path)
    train = disk.indices("train")
    direct = CorpusStats.fit(disk.batches(train, max_frames=20), codebook_size=CODES, progress=False)
    triples = CorpusStats.fit((b[:3] for b in disk.batches(train, max_frames=20)), codebook_size=CODES,
                              progress=False)
    assert direct.num_utterances == triples.num_utterances == len(train)
    for name in ("code_counts", "tuple_ids", "tuple_counts", "whitening_mean", "whitening_matrix",
                 "softdecay_basis", "softdecay_scale"):
        assert torch.equal(getattr(direct, name), getattr(triples, name)), name
    with pytest.raises(VqpoolError, match=r"expected a \(frames, lengths, codes\[, indices\]\) tuple"):
        CorpusStats.fit([(*b, None) for b in disk.batches(train)], codebook_size=CODES, progress=False)


def test_streams_and_reuse_give_the_same_batches(tmp_path) -> None:
    disk, memory = both(tmp_path)
    chosen = [7, 0, 1, 2, 4, 5, 6]
    for store in (disk, memory):
        kept = list(store.batches(chosen, max_frames=20))  # the default: every batch is its own
        reused = [(f.clone(), lengths, c.clone(), i) for f, lengths, c, i in
                  store.batches(chosen, max_frames=20, reuse=True)]
        codes_only = list(store.batches(chosen, max_frames=20, streams=["codes"]))
        lengths_only = list(store.batches(chosen, max_frames=20, streams=()))
        fresh = list(memory.batches(chosen, max_frames=20))
        for mine, again, codes, bare, expected in zip(kept, reused, codes_only, lengths_only, fresh,
                                                      strict=True):
            for batch in (mine, again):
                assert torch.equal(batch[0], expected[0]) and torch.equal(batch[2], expected[2])
            assert codes[0] is None and bare[0] is None and bare[2] is None
            assert torch.equal(codes[2], expected[2])
            for batch in (mine, again, codes, bare):
                assert batch[3] == expected[3] and torch.equal(batch[1], expected[1])
        with pytest.raises(VqpoolError, match=r"streams.*'pooled'"):
            next(store.batches(chosen, streams=("frames", "pooled")))
    frames, codes, _ = disk[1]
    assert frames.dtype == torch.float32 and codes.dtype == torch.int32
    assert torch.equal(frames, memory.frames[1]) and torch.equal(codes.long(), memory.codes[1].long())


def test_reading_only_codes_reads_no_frames(tmp_path) -> None:
    disk, _ = both(tmp_path)
    list(disk.batches(streams=("codes",)))
    assert disk._checked == {(i, "codes") for i in range(len(LENGTHS))}  # no frames touched
    counts = CorpusStats.from_store(disk, include=("counts",), progress=False)
    assert counts.include == ("counts",) and all(s == "codes" for _, s in disk._checked)
    every = CorpusStats.from_store(disk, progress=False)
    for name in ("code_counts", "tuple_ids", "tuple_counts"):
        assert torch.equal(getattr(counts, name), getattr(every, name)), name
    assert (counts.num_utterances, counts.total_frames) == (every.num_utterances, every.total_frames)


def test_statistics_from_pooled_ap_vectors_equal_those_from_frames(tmp_path) -> None:
    disk, memory = both(tmp_path)
    train = disk.indices("train")
    # AP vectors pooled in other batches than the fit's: every row, 36 padded frames at a time.
    ap = torch.zeros(len(LENGTHS), DIM)
    for frames, lengths, codes, rows in disk.batches(max_frames=36):
        ap[rows] = pool(frames, lengths, codes, "ap")
    for store in (disk, memory):
        from_frames = CorpusStats.from_store(store, indices=train, max_frames=20, progress=False)
        store.read_frames = []
        from_ap = CorpusStats.from_store(store, indices=train, max_frames=20, progress=False,
                                         ap_vectors=ap)
        assert from_ap.include == from_frames.include == ("counts", "whitening", "softdecay")
        for name in ("code_counts", "tuple_ids", "tuple_counts", "whitening_mean", "whitening_matrix",
                     "softdecay_basis", "softdecay_scale"):
            torch.testing.assert_close(getattr(from_ap, name), getattr(from_frames, name),
                                       rtol=1e-12, atol=1e-12, msg=name)
    assert memory.read_frames == []
