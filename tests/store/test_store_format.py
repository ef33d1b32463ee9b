"""The store on its own: round trip, padded batches, and the commit protocol's guarantees."""

import json
import os

import numpy as np
import pytest
import torch

from toy_headers import toy_header
from vqpool.errors import VqpoolError
from vqpool.store import FORMAT_VERSION, INDEX, FeatureStore, StoreHeader, StoreWriter, store_status

DIM, GROUPS = 6, 2


def header(num_utterances: int, **changes) -> StoreHeader:
    return toy_header(dim=DIM, num_codebooks=GROUPS, codebook_size=50, num_utterances=num_utterances,
                      **changes)


def utterances(lengths: list[int], seed: int = 0) -> list[tuple[int, dict, dict]]:
    generator = np.random.default_rng(seed)
    return [
        (order, {"id": f"u{order}", "split": "train" if order % 2 else "test", "num_frames": length},
         {"frames": generator.normal(size=(length, DIM)).astype(np.float32),
          "codes": generator.integers(0, 50, size=(length, GROUPS))})
        for order, length in enumerate(lengths)
    ]


def write(path, items, *, seal=True, shard_bytes=1 << 30, chunk=3) -> None:
    writer = StoreWriter(path, header(len(items)), shard_bytes=shard_bytes)
    for start in range(0, len(items), chunk):
        writer.write(items[start : start + chunk])
    if seal:
        writer.seal()


def test_round_trip_keeps_frames_to_fp16_precision_codes_and_meta(tmp_path):
    items = utterances([5, 17, 1, 9, 30, 2, 11])
    write(tmp_path / "s", items, shard_bytes=400)  # tiny shards: rolling is exercised
    assert len(list((tmp_path / "s").glob("frames-*.bin"))) > 2
    store = FeatureStore(tmp_path / "s")
    assert len(store) == len(items) and store.dim == DIM and store.num_codebooks == GROUPS
    for i, (_, meta, arrays) in enumerate(items):
        frames, codes, got_meta = store[i]
        assert frames.dtype == torch.float32 and codes.dtype == torch.int32
        torch.testing.assert_close(frames, torch.from_numpy(arrays["frames"]), atol=2e-3, rtol=1e-3)
        assert torch.equal(codes.long(), torch.from_numpy(arrays["codes"]).long())
        assert got_meta == meta
    assert store.indices(split="test") == [0, 2, 4, 6]
    assert store.indices() == list(range(len(items)))
    assert store.indices(split="validation") == []  # a standard split this store happens to lack
    with pytest.raises(VqpoolError, match="no split 'bogus' .this store has: test, train."):
        store.indices(split="bogus")
    assert store[-1][2]["id"] == "u6"


def test_batches_pad_with_zeros_sort_by_length_and_respect_max_frames(tmp_path):
    lengths = [5, 17, 1, 9, 30, 2, 11]
    write(tmp_path / "s", utterances(lengths))
    store = FeatureStore(tmp_path / "s")
    chosen = [0, 1, 2, 3, 5, 6]
    seen = []
    for frames, got_lengths, codes, indices in store.batches(chosen, max_frames=36):
        assert frames.shape[:2] == codes.shape[:2] == (len(indices), max(got_lengths))
        assert len(indices) == 1 or frames.shape[0] * frames.shape[1] <= 36
        assert got_lengths.tolist() == [lengths[i] for i in indices] == sorted(got_lengths.tolist(), reverse=True)
        for row, i in enumerate(indices):
            alone, alone_codes, _ = store[i]
            assert torch.equal(frames[row, : lengths[i]], alone)
            assert torch.equal(codes[row, : lengths[i]], alone_codes)
            assert not frames[row, lengths[i] :].any() and not codes[row, lengths[i] :].any()
        seen += indices
    assert sorted(seen) == chosen


def test_a_half_written_utterance_is_never_read_back(tmp_path):
    items = utterances([4, 4, 4, 4, 4, 4])
    write(tmp_path / "s", items, seal=False, chunk=2)
    # A killed run: the last utterance's data reached the disk only partly, its index line torn.
    shard = tmp_path / "s" / "frames-00000.bin"
    os.truncate(shard, shard.stat().st_size - 10)
    with open(tmp_path / "s" / INDEX, "ab") as handle:
        handle.write(b'0badf00d {"order": 6, "me')
    assert store_status(tmp_path / "s") == "partial"
    with pytest.raises(VqpoolError, match="unfinished store .5 of 6.*--resume"):
        FeatureStore(tmp_path / "s")
    partial = FeatureStore(tmp_path / "s", allow_partial=True)
    assert [m["id"] for m in partial.meta] == ["u0", "u1", "u2", "u3", "u4"]
    torch.testing.assert_close(partial[4][0], torch.from_numpy(items[4][2]["frames"]), atol=2e-3, rtol=1e-3)

    # Resuming truncates to the committed prefix and the finished store equals a clean one.
    writer = StoreWriter(tmp_path / "s", header(6), resume=True)
    assert writer.committed == {0, 1, 2, 3, 4}
    writer.write(items[5:])
    writer.seal()
    write(tmp_path / "clean", items, chunk=2)
    for name in ("frames-00000.bin", "codes-00000.bin", INDEX):
        assert (tmp_path / "s" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


def test_a_sealed_store_with_a_cut_shard_is_reported_damaged(tmp_path):
    write(tmp_path / "s", utterances([3, 8, 2]))
    shard = tmp_path / "s" / "codes-00000.bin"
    os.truncate(shard, shard.stat().st_size - 2)
    with pytest.raises(VqpoolError, match="damaged store: 3 utterances .* only 2"):
        FeatureStore(tmp_path / "s")


def test_a_corrupted_index_line_ends_the_trusted_prefix(tmp_path):
    write(tmp_path / "s", utterances([3, 8, 2]), seal=False, chunk=1)
    index = tmp_path / "s" / INDEX
    lines = index.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"u1"', b'"u9"')  # same length, wrong checksum
    index.write_bytes(b"".join(lines))
    assert len(FeatureStore(tmp_path / "s", allow_partial=True)) == 1


def test_resume_keeps_the_stored_header(tmp_path):
    # Whether the job is the same is the caller's question (vqpool.extract asks it); the
    # writer continues the store it finds, under the header it was started with.
    write(tmp_path / "s", utterances([3, 8]), seal=False)
    started = (tmp_path / "s" / "header.json").read_bytes()
    StoreWriter(tmp_path / "s", header(2, task="kws"), resume=True).seal()
    assert (tmp_path / "s" / "header.json").read_bytes() == started


def test_an_existing_file_is_not_taken_for_a_store_folder(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(VqpoolError, match="taken: is a file, not a store folder"):
        store_status(tmp_path / "taken")
    with pytest.raises(VqpoolError, match="cannot create the store folder"):
        StoreWriter(tmp_path / "taken" / "s", header(1))


def test_a_damaged_or_old_header_is_one_line_naming_the_file_and_the_field(tmp_path, capsys):
    from vqpool.cli import main

    write(tmp_path / "s", utterances([3, 8]))
    path = tmp_path / "s" / "header.json"
    good = json.loads(path.read_text())
    assert FeatureStore(tmp_path / "s").header == StoreHeader.from_json(good, str(path))  # round trip

    def changed(where: str, value) -> dict:
        damaged = json.loads(json.dumps(good))
        *parents, key = where.split(".")
        target = damaged
        for parent in parents:
            target = target[parent]
        if value is KeyError:
            del target[key]
        else:
            target[key] = value
        return damaged

    old = {"format": "vqpool-store", "format_version": 1, "upstream": good["upstream"], "dim": DIM,
           "streams": ["codes", "frames"], "job": {"upstream": good["upstream"], "num_utterances": 2}}
    cases = {
        "header field 'job.num_utterances' is missing": changed("job.num_utterances", KeyError),
        "header field 'upstream.dim' is \"six\", expected an integer": changed("upstream.dim", "six"),
        "header field 'upstream.pads_safely' is 1, expected true or false": changed("upstream.pads_safely", 1),
        "header field 'job.part' is [1], expected a list of 2": changed("job.part", [1]),
        "header field 'pooled_only' is 3, expected an object": changed("pooled_only", 3),
        "header field 'task' is 7, expected a string": changed("task", 7),
        f"store format 1, written by an older vqpool; this one reads format {FORMAT_VERSION}": old,
        "not a vqpool store header": [],
    }
    for message, damaged in cases.items():
        path.write_text(json.dumps(damaged))
        with pytest.raises(VqpoolError) as caught:
            FeatureStore(tmp_path / "s")
        assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
        assert main(["bench", "--store", str(tmp_path / "s")]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    path.write_text("{")
    with pytest.raises(VqpoolError, match="header.json: not JSON"):
        FeatureStore(tmp_path / "s")
    with pytest.raises(VqpoolError, match="store format 1, written by an older vqpool"):
        path.write_text(json.dumps(old))
        StoreWriter(tmp_path / "s", header(2), resume=True)  # an old partial store is not resumed


def test_pooled_vectors_are_read_as_one_array_whatever_the_layout(tmp_path):
    dims = {"ap": 3, "sp": 6}
    generator = np.random.default_rng(0)
    items = [(order, {"id": f"u{order}", "num_frames": 2},
              {f"pooled-{m}": generator.normal(size=d).astype(np.float32) for m, d in dims.items()})
             for order in range(7)]
    header = toy_header(dim=3, num_codebooks=None, codebook_size=None, pooled_dims=dims, num_utterances=7)
    writer = StoreWriter(tmp_path / "s", header, shard_bytes=40)  # three AP vectors a shard
    for start in range(0, 7, 2):
        writer.write(items[start : start + 2])
    writer.seal()
    assert len(list((tmp_path / "s").glob("pooled-ap-*.bin"))) == 3
    store = FeatureStore(tmp_path / "s")
    for method in dims:
        expected = np.stack([arrays[f"pooled-{method}"] for _, _, arrays in items])
        assert torch.equal(store.pooled(method), torch.from_numpy(expected))
        store.pooled(method)[0, 0] = 1.0  # a copy of its own: writable, holding no memory map
    # An index whose entries do not lie back to back (here: in reverse) reads the same vectors.
    index = tmp_path / "s" / INDEX
    index.write_bytes(b"".join(reversed(index.read_bytes().splitlines(keepends=True))))
    reverse = FeatureStore(tmp_path / "s")
    for method in dims:
        expected = np.stack([arrays[f"pooled-{method}"] for _, _, arrays in reversed(items)])
        assert torch.equal(reverse.pooled(method), torch.from_numpy(expected))

    empty = StoreWriter(tmp_path / "empty", toy_header(dim=3, pooled_dims=dims, num_codebooks=None))
    empty.seal()
    assert FeatureStore(tmp_path / "empty").pooled("sp").shape == (0, 6)
