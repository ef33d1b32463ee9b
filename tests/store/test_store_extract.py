"""Extraction end to end on real FSDD recordings (8 kHz, so resampling runs) with real upstreams."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from recordings import spread
from tiny_models import make_wav2vec2_pretraining
from vqpool.cli import main
from vqpool.errors import BadAudioError, VqpoolError
from vqpool.extract import extract, plan
from vqpool.manifest import read_manifest, write_manifest
from vqpool.rows import canonical_path
from vqpool.store import INDEX, FeatureStore, store_status
from vqpool.upstream import load_upstream

REPO = Path(__file__).resolve().parents[2]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread here and in the subprocesses: the same kernels give the same bytes, and
    a crowded CI machine does not make torch's worker threads spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fsdd_rows(fsdd_root: Path, count: int, step: int = 7) -> list[dict[str, str]]:
    files = spread(sorted(fsdd_root.glob("*.wav")), count, step)
    splits = ("train", "train", "test")
    return [{"id": f.stem, "path": str(f), "label": f.stem[0], "split": splits[k % 3]} for k, f in enumerate(files)]


def upstream_description(spec: str) -> dict:
    """What the header keeps of an upstream: its description, the same JSON as ``describe()``."""
    return json.loads(json.dumps(load_upstream(spec).describe()))


def store_bytes(path: Path) -> dict[str, bytes]:
    """Everything a store holds except its header and completion marker (which carry times)."""
    return {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.suffix in (".bin", ".jsonl")}


@pytest.fixture(scope="module")
def layer_norm_model(tmp_path_factory) -> Path:
    return make_wav2vec2_pretraining(tmp_path_factory.mktemp("w2v-layer"), norm="layer")


@pytest.fixture(scope="module")
def group_norm_model(tmp_path_factory) -> Path:
    return make_wav2vec2_pretraining(tmp_path_factory.mktemp("w2v-group"), norm="group")


@pytest.mark.parametrize("spec", ["logmel", "layer", "group"])
def test_batched_extraction_equals_one_by_one(spec, fsdd_root, tmp_path, request):
    spec = spec if spec == "logmel" else str(request.getfixturevalue(f"{spec}_norm_model"))
    upstream = load_upstream(spec)
    rows = fsdd_rows(fsdd_root, 12)
    rows += [{**row, "id": row["id"] + "-again"} for row in rows[:4]]  # equal lengths: batchable by all
    batches, _ = plan(rows, 4.0, pads_safely=upstream.pads_safely, progress=False)
    sizes = [len(batch) for batch in batches]
    assert max(sizes) > 1  # the batched run really batches
    if not upstream.pads_safely:
        def key(item):
            info = soundfile.info(item.row["path"])
            return info.frames, info.samplerate

        assert all(len({key(item) for item in batch}) == 1 for batch in batches)
    batched = extract(rows, upstream, tmp_path / "batched", batch_seconds=4.0, progress=False)
    alone = extract(rows, upstream, tmp_path / "alone", batch_seconds=0.01, progress=False)
    assert len(batched) == len(alone) == len(rows)
    assert batched.meta == alone.meta
    for i in range(len(rows)):
        frames, codes, meta = batched[i]
        frames_alone, codes_alone, _ = alone[i]
        assert frames.shape == (upstream.num_frames(int(meta["duration"] * 16000)), upstream.dim)
        torch.testing.assert_close(frames, frames_alone, atol=1e-3, rtol=1e-3)  # fp16 storage
        assert (codes is None and codes_alone is None) or torch.equal(codes, codes_alone)


def test_header_meta_and_cli(fsdd_root, tmp_path, layer_norm_model, capsys):
    rows = fsdd_rows(fsdd_root, 6)
    write_manifest(rows, tmp_path / "m.csv")
    args = ["extract", "--upstream", str(layer_norm_model), "--manifest", str(tmp_path / "m.csv"),
            "--out", str(tmp_path / "s"), "--batch-seconds", "2"]
    assert main(args) == 0
    store = FeatureStore(tmp_path / "s")
    assert len(store) == 6 and store.has_frames and store.num_codebooks == 2 and store.codebook_size == 8
    assert store.header.upstream.spec == str(layer_norm_model)
    assert store.header.upstream.sample_rate == 16000 and store.header.upstream.layers == "mean"
    assert store.header.task == "m" and store.header.corpus is None  # the manifest's name
    assert store.header.pooled_only is None and store.header.streams == ("codes", "frames")
    stored = json.loads((tmp_path / "s" / "header.json").read_text())
    assert stored["upstream"] == upstream_description(str(layer_norm_model))  # stored once, as described
    assert sorted(stored) == ["corpus", "format", "format_version", "job", "pooled_only", "task",
                              "upstream"]  # no time: a resumed store equals an uninterrupted one
    assert sorted(stored["job"]) == ["batch_seconds", "num_utterances", "part", "rows_sha256"]
    durations = [m["duration"] for m in store.meta]
    assert durations == sorted(durations, reverse=True)  # store order: longest first
    by_id = {row["id"]: {**row, "path": canonical_path(row["path"])} for row in rows}
    for meta in store.meta:
        assert {k: meta[k] for k in by_id[meta["id"]]} == by_id[meta["id"]]
        assert meta["duration"] == pytest.approx(soundfile.info(meta["path"]).duration)
    assert main(args) == 0
    assert "already a complete feature store (6 utterances)" in capsys.readouterr().out


def test_a_complete_store_is_reused_only_by_the_same_job(fsdd_root, tmp_path, capsys):
    write_manifest(fsdd_rows(fsdd_root, 3), tmp_path / "fsdd.csv")
    write_manifest(fsdd_rows(fsdd_root, 4), tmp_path / "other.csv")
    out = tmp_path / "s"
    args = ["extract", "--manifest", str(tmp_path / "fsdd.csv"), "--out", str(out)]
    assert main([*args, "--upstream", "logmel", "--no-codes"]) == 0
    sealed = (out / "complete.json").read_bytes()
    assert FeatureStore(out).header.task == "fsdd"
    capsys.readouterr()

    assert main([*args, "--upstream", "logmel", "--no-codes"]) == 0
    assert "complete feature store (3 utterances) of this extraction; nothing to do" in capsys.readouterr().out
    refusals = {
        "upstream.spec: \"logmel\" in the store, \"ge2e\" now": [*args, "--upstream", "ge2e", "--no-codes"],
        "rows: another manifest or corpus": ["extract", "--upstream", "logmel", "--no-codes", "--manifest",
                                             str(tmp_path / "other.csv"), "--task", "fsdd", "--out", str(out)],
        "task: \"fsdd\" in the store, \"kws\" now": [*args, "--upstream", "logmel", "--no-codes", "--task", "kws"],
        "pooled_only: null in the store": [*args, "--upstream", "logmel", "--no-codes", "--pooled-only", "ap", "--resume"],
    }
    for difference, refused in refusals.items():
        assert main(refused) == 1
        err = capsys.readouterr().err
        assert "already holds a complete feature store extracted with different settings" in err
        assert difference in err and "Traceback" not in err

    rows, upstream = read_manifest(tmp_path / "fsdd.csv"), load_upstream("logmel")
    assert len(extract(rows, upstream, out, resume=True, task="fsdd", progress=False)) == 3
    with pytest.raises(VqpoolError, match=r"different settings \(batch_seconds: 60.0 in the store, 5 now\)"):
        extract(rows, upstream, out, resume=True, task="fsdd", batch_seconds=5, progress=False)
    assert (out / "complete.json").read_bytes() == sealed  # reused or refused, never rewritten


def test_bad_output_folder_batch_size_and_options_are_refused(fsdd_root, tmp_path, capsys):
    write_manifest(fsdd_rows(fsdd_root, 2), tmp_path / "m.csv")
    args = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv")]
    (tmp_path / "file").write_text("")
    refusals = {
        "file: is a file, not a store folder": ["--out", str(tmp_path / "file")],
        "error: --batch-seconds must be positive, not 0.0": ["--out", str(tmp_path / "s"),
                                                             "--batch-seconds", "0"],
        "must be positive, not -1.0": ["--out", str(tmp_path / "s"), "--batch-seconds", "-1"],
        "--semantics, --a only apply to pooling on the fly: add --pooled-only": [
            "--out", str(tmp_path / "s"), "--semantics", "reference", "--a", "0.1"],
        "error: --a must be a positive number; got 0.0": [
            "--out", str(tmp_path / "s"), "--pooled-only", "ap", "--a", "0"],
    }
    for message, refused in refusals.items():
        assert main([*args, *refused]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()  # refused before anything was written
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    description = capsys.readouterr().out.split("options:")[0]
    assert all(words in description for words in ("write a feature store", "--resume", "torchrun"))


def write_bad_files(folder: Path) -> dict[str, str]:
    """Unusable files, by the reason expected in the message."""
    folder.mkdir()
    soundfile.write(folder / "empty.wav", np.zeros(0, np.float32), 8000)
    soundfile.write(folder / "nan.wav", np.full(4000, np.nan, np.float32), 8000, subtype="FLOAT")
    soundfile.write(folder / "short.wav", np.zeros(50, np.float32), 8000)
    (folder / "text.wav").write_text("not audio")
    return {"empty": "empty audio", "nan": "NaN", "short": "too short", "text": "unreadable"}


def test_bad_audio_stops_naming_the_file_or_is_skipped_and_reported(fsdd_root, tmp_path, capsys):
    bad = write_bad_files(tmp_path / "bad")
    good = fsdd_rows(fsdd_root, 3)
    upstream = load_upstream("logmel")
    for name, reason in bad.items():
        rows = [*good, {"id": name, "path": str(tmp_path / "bad" / f"{name}.wav")}]
        with pytest.raises(BadAudioError, match=f"{name}.wav: .*{reason}"):
            extract(rows, upstream, tmp_path / f"s-{name}", progress=False)
    rows = [*good, *({"id": name, "path": str(tmp_path / "bad" / f"{name}.wav")} for name in bad)]
    write_manifest(rows, tmp_path / "m.csv")
    assert main(["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"), "--out",
                 str(tmp_path / "s"), "--on-bad-audio", "skip"]) == 0
    assert "skipped 4 unusable files" in capsys.readouterr().err
    store = FeatureStore(tmp_path / "s")
    assert sorted(m["id"] for m in store.meta) == sorted(row["id"] for row in good)
    reasons = {Path(entry["path"]).stem: entry["reason"] for entry in store.skipped}
    assert reasons.keys() == bad.keys()
    for name, reason in bad.items():
        assert reason in reasons[name]


def test_partial_store_needs_resume(fsdd_root, tmp_path, capsys):
    rows = fsdd_rows(fsdd_root, 4)
    write_manifest(rows, tmp_path / "m.csv")
    extract(rows, load_upstream("logmel"), tmp_path / "s", task="m", progress=False)  # as the CLI names it
    (tmp_path / "s" / "complete.json").unlink()  # as if killed before sealing
    args = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "s")]
    assert main(args) == 1
    assert "partial feature store; pass --resume" in capsys.readouterr().err
    with pytest.raises(VqpoolError, match="unfinished store .4 of 4"):
        FeatureStore(tmp_path / "s")
    with pytest.raises(VqpoolError, match=r"cannot resume: .* \(batch_seconds: 60.0 in the store, 5 now\)"):
        extract(rows, load_upstream("logmel"), tmp_path / "s", resume=True, task="m", batch_seconds=5,
                progress=False)
    assert main([*args, "--resume"]) == 0
    assert len(FeatureStore(tmp_path / "s")) == 4


def test_resume_after_sigkill_equals_an_uninterrupted_run(fsdd_root, tmp_path, layer_norm_model):
    write_manifest(fsdd_rows(fsdd_root, 150, step=10), tmp_path / "m.csv")
    rows = read_manifest(tmp_path / "m.csv")  # what the command line extracts
    command = [sys.executable, "-m", "vqpool.cli", "extract", "--upstream", str(layer_norm_model),
               "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "killed"), "--batch-seconds", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD)
    index = tmp_path / "killed" / INDEX
    while process.poll() is None and (not index.is_file() or index.read_bytes().count(b"\n") < 10):
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert store_status(tmp_path / "killed") == "partial"
    partial = FeatureStore(tmp_path / "killed", allow_partial=True)
    assert 10 <= len(partial) < len(rows)

    upstream = load_upstream(str(layer_norm_model))
    resumed = extract(rows, upstream, tmp_path / "killed", batch_seconds=1, resume=True, task="m", progress=False)
    clean = extract(rows, upstream, tmp_path / "clean", batch_seconds=1, progress=False)
    assert len(resumed) == len(clean) == len(rows)
    assert store_bytes(tmp_path / "killed") == store_bytes(tmp_path / "clean")


@pytest.mark.slow
def test_two_torchrun_processes_write_the_single_process_store(fsdd_root, tmp_path):
    write_manifest(fsdd_rows(fsdd_root, 10), tmp_path / "m.csv")
    rows = read_manifest(tmp_path / "m.csv")
    torchrun = Path(sys.executable).with_name("torchrun")
    subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "vqpool.cli", "extract",
         "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "ranks"),
         "--batch-seconds", "1.5"],
        check=True, capture_output=True, env=ONE_THREAD, cwd=REPO, timeout=300,
    )
    single = extract(rows, load_upstream("logmel"), tmp_path / "single", batch_seconds=1.5, progress=False)
    merged = FeatureStore(tmp_path / "ranks")
    assert not list((tmp_path / "ranks").glob("rank-*"))
    assert merged.header.job == single.header.job
    assert store_bytes(tmp_path / "ranks") == store_bytes(tmp_path / "single")
    assert len(merged) == len(rows)


def test_merge_refuses_stores_of_different_jobs_or_missing_ranks(fsdd_root, tmp_path):
    from vqpool.distributed import merge, merge_ranks

    upstream = load_upstream("logmel")
    extract(fsdd_rows(fsdd_root, 2), upstream, tmp_path / "a", progress=False)
    extract(fsdd_rows(fsdd_root, 3), upstream, tmp_path / "b", progress=False)
    with pytest.raises(VqpoolError, match="different extraction jobs"):
        merge([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    shutil.copytree(tmp_path / "a", tmp_path / "a2")
    with pytest.raises(VqpoolError, match="overlap"):
        merge([tmp_path / "a", tmp_path / "a2"], tmp_path / "out2")
    shutil.copytree(tmp_path / "a", tmp_path / "out3" / "rank-00001")
    with pytest.raises(VqpoolError, match="rank stores rank-00000 not found.*--merge"):
        merge_ranks(tmp_path / "out3")


def test_pooled_only_stores_vectors_ap_and_codes_but_no_frames(fsdd_root, tmp_path, layer_norm_model):
    from vqpool.pooling import CorpusStats, pool

    rows = fsdd_rows(fsdd_root, 9)
    upstream = load_upstream(str(layer_norm_model))
    full = extract(rows, upstream, tmp_path / "full", batch_seconds=3, progress=False)
    pooled = extract(rows, upstream, tmp_path / "pooled", batch_seconds=3, pooled_only=["vq-lp", "sp"],
                     progress=False)
    assert pooled.pooled_methods == ("ap", "vq-lp", "sp") and not pooled.has_frames
    assert pooled.header.pooled_options == {"semantics": "paper", "a": 1e-3, "smoothing": 1.0}
    assert pooled.header.pooled_only.dims == {"ap": upstream.dim, "vq-lp": upstream.dim, "sp": 2 * upstream.dim}
    assert not list((tmp_path / "pooled").glob("frames-*")) and pooled.meta == full.meta
    frames, lengths, codes, indices = next(full.batches(max_frames=10**6))
    assert indices == list(range(len(rows)))
    assert torch.equal(torch.cat([c[:n] for c, n in zip(codes, lengths, strict=True)]),
                       torch.cat([pooled[i][1] for i in indices]))
    assert pooled[0][0] is None
    torch.testing.assert_close(pooled.pooled("ap"), torch.stack([full[i][0].mean(0) for i in indices]),
                               atol=2e-3, rtol=2e-3)  # the full store's frames are fp16
    for method in ("vq-lp", "sp"):
        torch.testing.assert_close(pooled.pooled(method), pool(frames, lengths, codes, method=method),
                                   atol=2e-3, rtol=2e-3)
    with pytest.raises(VqpoolError, match="no pooled vectors for 'vq-gp'"):
        pooled.pooled("vq-gp")

    # Methods that need corpus statistics: refused without them, pooled with counts fitted on
    # the codes a pooled-only store keeps.
    with pytest.raises(VqpoolError, match="pooled_only names methods that cannot run: vq-gp needs "
                                          "corpus statistics.* pass stats"):
        extract(rows, upstream, tmp_path / "gp", pooled_only=["vq-gp"], progress=False)
    train = pooled.indices(split="train")
    stats = CorpusStats.fit(pooled.batches(train), codebook_size=pooled.codebook_size, progress=False)
    gp = extract(rows, upstream, tmp_path / "gp", pooled_only=["vq-gp"], stats=stats, progress=False)
    torch.testing.assert_close(gp.pooled("vq-gp"), pool(frames, lengths, codes, method="vq-gp", stats=stats),
                               atol=2e-3, rtol=2e-3)

    # Pooling options reach vqpool.pool and the header (the evaluation refuses other settings).
    options = {"semantics": "reference", "a": 0.01, "smoothing": 0.0}
    other = extract(rows, upstream, tmp_path / "options", pooled_only=["vq-squash-or", "vq-gp", "vq-sif"],
                    stats=stats, **options, progress=False)
    assert other.header.pooled_options == options
    for method in ("vq-squash-or", "vq-gp", "vq-sif"):
        expected = pool(frames, lengths, codes, method=method, stats=stats, **options)
        assert not torch.allclose(expected, pool(frames, lengths, codes, method=method, stats=stats), atol=1e-2)
        torch.testing.assert_close(other.pooled(method), expected, atol=2e-3, rtol=2e-3)


def test_a_store_started_through_a_symlink_resumes_from_the_prepared_manifest(fsdd_root, tmp_path, capsys):
    # A data folder reached through a symlink: in-memory rows keep the link's spelling, while the
    # manifest `vqpool data prepare` writes resolves it. Both name the same files: one job.
    corpus = tmp_path / "corpus"
    for k, wav in enumerate(spread(sorted(fsdd_root.glob("*.wav")), 8, 97)):
        folder = corpus / ("test" if k % 4 == 3 else "train") / wav.stem[0]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / wav.name).symlink_to(wav)  # read in place
    (tmp_path / "data").symlink_to(corpus, target_is_directory=True)
    manifest = tmp_path / "m.csv"
    assert main(["data", "prepare", "folder", "--root", str(tmp_path / "data"), "--out", str(manifest)]) == 0
    from vqpool.data import prepare

    rows = prepare("folder", tmp_path / "data")
    assert {row["id"] for row in rows} == {row["id"] for row in read_manifest(manifest)}
    assert not {row["path"] for row in rows} & {row["path"] for row in read_manifest(manifest)}

    # Started from the API, interrupted after three utterances (what a kill leaves: see above).
    out = tmp_path / "s"
    extract(rows, load_upstream("logmel"), out, batch_seconds=0.5, task="m", progress=False)
    (out / "complete.json").unlink()
    index = out / INDEX
    index.write_bytes(b"".join(index.read_bytes().splitlines(keepends=True)[:3]))
    assert len(FeatureStore(out, allow_partial=True)) == 3

    args = ["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(manifest), "--batch-seconds", "0.5"]
    capsys.readouterr()
    assert main([*args, "--out", str(out), "--resume"]) == 0, capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "clean")]) == 0
    assert store_bytes(out) == store_bytes(tmp_path / "clean")  # the same store, paths and all
    assert {m["path"] for m in FeatureStore(out).meta} == {row["path"] for row in read_manifest(manifest)}
