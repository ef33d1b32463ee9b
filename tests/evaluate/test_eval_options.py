"""Options checked up front: one VqpoolError naming the option, before any work; a pooled-only
store's vectors keep the options they were pooled with; bars stay off logs and off errors."""

import io
import logging
import sys

import pytest
import torch
from memstore import MemoryStore, toy_store
from tqdm.auto import tqdm

from toy_headers import toy_header
from vqpool.arguments import check_device
from vqpool.errors import VqpoolError
from vqpool.evaluate.bench import run_bench
from vqpool.evaluate.probe import run_probe
from vqpool.pooling import METHODS, CorpusStats, get_method, pool

SPLITS = [["train"] * 20 + ["validation"] * 6 + ["test"] * 10]


BENCH_ERRORS = [
    ({"device": "bogus"}, "device 'bogus' is not a torch device"),
    ({"device": "cuda:x"}, "is not a torch device"),
    ({"device": "meta"}, "no usable meta device"),
    ({"chunk": 0}, "^chunk must be at least 1"),
    ({"search": "annoy"}, "^search must be one of auto, faiss, matmul; got 'annoy'"),
    ({"a": 0.0}, "^a must be a positive number"),
    ({"a": -1e-3}, "^a must be a positive number"),
    ({"smoothing": -0.5}, "^smoothing must be a finite number >= 0"),
    ({"semantics": "papers"}, "^semantics must be one of paper, reference; got 'papers'"),
    ({"options": {"beta": 1}}, "^beta is not a pooling option"),
    ({"methods": []}, "^methods names no method"),
]
PROBE_ERRORS = [
    ({"seeds": 0}, "^seeds must be at least 1"),
    ({"seeds": []}, "^seeds names no seed"),
    ({"epochs": 0}, "^epochs must be at least 1"),
    ({"lr": 0.0}, "^lr must be a positive number"),
    ({"lr": float("nan")}, "^lr must be a positive number"),
    ({"batch_size": 0}, "^batch_size must be at least 1"),
    ({"patience": 0}, "^patience must be at least 1"),
    ({"device": "bogus"}, "is not a torch device"),
    ({"methods": []}, "^methods names no method"),
]


@pytest.mark.parametrize(("run", "options", "message"), [
    *((run_bench, *case) for case in BENCH_ERRORS), *((run_probe, *case) for case in PROBE_ERRORS)
])
def test_bad_options_are_refused_before_any_work(run, options: dict, message: str) -> None:
    store, _ = toy_store(36)
    store.read.clear()
    with pytest.raises(VqpoolError, match=message):
        run(store, **{"methods": ["ap", "vq-lp"], **options}, splits=SPLITS, write=False,
            progress=False)
    assert store.read == []


def test_cuda_without_cuda_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(VqpoolError, match="no usable cuda device; use cpu"):
        check_device("cuda")
    assert check_device("cpu") == torch.device("cpu")


def structured_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes from a small codebook in runs, so that partitions, counts and tuples all matter."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 13, (64,), generator=generator)
    codes = torch.randint(0, 3, (64, 12, 2), generator=generator)
    codes = codes.repeat_interleave(2, dim=1)[:, :12]  # runs of repeated tuples
    codes[:, 1::3, 1] = codes[:, 0::3, 1][:, : codes[:, 1::3].shape[1]]
    frames = torch.randn(64, 12, 5, generator=generator)
    return frames, lengths, codes


@pytest.mark.parametrize("name", ["semantics", "a", "smoothing"])
def test_each_record_lists_exactly_the_options_that_change_it(name: str) -> None:
    """The refusal for stored vectors relies on the records' ``options``: check them against ``pool``."""
    frames, lengths, codes = structured_batch(0)
    stats = CorpusStats.fit([structured_batch(1)], codebook_size=3, progress=False)
    other = {"semantics": "reference", "a": 0.3, "smoothing": 7.0}[name]
    changed = set()
    for method in METHODS:
        default = pool(frames, lengths, codes, method, stats)
        varied = pool(frames, lengths, codes, method, stats, **{name: other})
        if not torch.allclose(default, varied, atol=1e-6):
            changed.add(method)
    assert changed == {m for m in METHODS if name in get_method(m).options}
    assert changed == {"semantics": {"vq-squash-or", "vq-allsquash-or", "softdecay"},
                       "a": {"vq-sif"}, "smoothing": {"vq-gp", "vq-bp"}}[name]


def pooled_only(store: MemoryStore, methods: list[str], options: dict | None) -> MemoryStore:
    """The store as a pooled-only one holding ``methods`` pooled with ``options``."""
    stats = CorpusStats.fit([b[:3] for b in store.batches(list(range(20)))], codebook_size=8,
                            progress=False)
    stored = {m: torch.zeros(len(store), 2 * store.dim if m == "sp" else store.dim) for m in methods}
    for frames, lengths, codes, rows in store.batches():
        for m in methods:
            stored[m][rows] = pool(frames, lengths, codes, m, stats, **(options or {}))
    header = toy_header(pooled_options=options)  # None: a store that records no options
    return MemoryStore(None, store.codes, store.meta, header, codebook_size=8, pooled=stored)


def test_stored_methods_keep_the_options_they_were_pooled_with() -> None:
    store, _ = toy_store(36)
    light = pooled_only(store, ["ap", "vq-sif"], {"semantics": "paper", "a": 0.01, "smoothing": 1.0})
    run = {"splits": SPLITS, "write": False, "progress": False}
    rows = {r["method"]: r["settings"] for r in run_bench(light, ["ap", "vq-sif", "softdecay"], **run)}
    assert rows["vq-sif"]["a"] == 0.01 and rows["softdecay"]["a"] == 0.01  # the store's, unasked
    with pytest.raises(VqpoolError, match="vq-sif was pooled at extraction with a=0.01, not the requested 0.001"):
        run_bench(light, ["ap", "vq-sif"], a=1e-3, **run)
    # An option that does not change a stored method's vectors is no conflict; the rows record
    # what each method was pooled with: the stored AP the store's, softdecay (derived now) ours.
    rows = {r["method"]: r["settings"]
            for r in run_bench(light, ["ap", "vq-sif", "softdecay"], semantics="reference", **run)}
    assert rows["ap"]["semantics"] == "paper" and rows["vq-sif"]["semantics"] == "paper"
    assert rows["softdecay"]["semantics"] == "reference"
    # Stores from before header["pooled_options"] were pooled with the defaults.
    old = pooled_only(store, ["ap", "vq-gp"], None)
    (row,) = run_bench(old, ["vq-gp"], **run)
    assert row["settings"] | {"smoothing": 1.0, "a": 1e-3, "semantics": "paper"} == row["settings"]
    with pytest.raises(VqpoolError, match="vq-gp was pooled at extraction with smoothing=1.0, not the requested 2.0"):
        run_probe(old, ["ap", "vq-gp"], smoothing=2.0, epochs=1, seeds=1, **run)


def test_all_means_what_the_store_can_give(caplog: pytest.LogCaptureFixture) -> None:
    store, _ = toy_store(36)
    light = pooled_only(store, ["ap", "vq-lp"], None)
    with caplog.at_level("INFO", logger="vqpool"):
        rows = run_bench(light, "all", splits=SPLITS, write=False, progress=False)
    assert [r["method"] for r in rows] == ["ap", "whitening", "softdecay", "vq-lp"]
    assert "leaving out sp, vq-squash-and" in caplog.text and "need frames" in caplog.text
    store.codes = None
    caplog.clear()
    with caplog.at_level("INFO", logger="vqpool"):
        rows = run_bench(store, "all", splits=SPLITS, write=False, progress=False)
    assert [r["method"] for r in rows] == ["ap", "sp", "whitening", "softdecay"]
    assert "vq-gp, vq-bp need codes" in caplog.text


def test_missing_splits_are_named(tmp_path) -> None:
    store, _ = toy_store(12, path=str(tmp_path))  # every row is a training row
    with pytest.raises(VqpoolError, match=r"has no test rows \(its rows' splits are 12 train\)"):
        run_bench(store, ["ap"], write=False, progress=False)
    for row in store.meta:
        del row["split"]
    with pytest.raises(VqpoolError, match=f"{tmp_path}: it has no train or test rows "
                       r"\(no row has a split.*vqpool data prepare"):
        run_bench(store, ["ap"], write=False, progress=False)
    with pytest.raises(VqpoolError, match="has no validation rows"):
        run_probe(store, ["ap"], splits=[["train"] * 8 + ["test"] * 4], write=False, progress=False)


def test_a_store_without_task_takes_its_folder_name(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vqpool")
    store, _ = toy_store(12, path=str(tmp_path / "digits"))
    store.header = toy_header(corpus=None, task=None)
    (row,) = run_bench(store, ["ap"], splits=[["train"] * 8 + ["test"] * 4], write=False,
                       progress=False)
    assert row["task"] == "digits" and "folder name 'digits'" in caplog.text
    store.path = None
    with pytest.raises(VqpoolError, match="task is needed: the store header names no task or corpus"):
        run_bench(store, ["ap"], splits=[["train"] * 8 + ["test"] * 4], write=False, progress=False)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_stay_off_logs_and_close_before_an_error(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    store, _ = toy_store(36)
    run_bench(store, ["ap", "vq-gp"], splits=SPLITS, write=False)  # progress on, stderr no TTY
    assert capsys.readouterr().err == ""

    store.codes[30][0, 0] = -1  # a test utterance pooling refuses, with bars on a terminal
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with pytest.raises(VqpoolError, match="non-negative") as error:
        run_bench(store, ["vq-lp"], splits=SPLITS, write=False)
    # While the error (and its traceback's frames) is alive, no bar is left open on screen.
    assert error.value is not None and len(tqdm._instances) == 0
    assert "pooling" in terminal.getvalue()  # the bar was drawn
