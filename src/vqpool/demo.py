"""The whole pipeline, offline, in one call: corpus -> codebook -> extract -> bench -> probe -> report.

Every step writes its result under ``out_dir`` and is skipped when that result is already there,
so an interrupted demo picks up where it stopped. Progress lines go to this module's logger
(INFO: ``vqpool demo`` shows them on stderr); the tables are printed to stdout, as the demo's
output.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from vqpool.errors import ParameterError

log = logging.getLogger(__name__)

DEMO_UPSTREAMS = ("logmel", "ge2e")


@dataclass(frozen=True)
class DemoSettings:
    """Sized so the whole demo runs in a few minutes on two CPU cores."""

    upstreams: tuple[str, ...] = DEMO_UPSTREAMS
    words: str = "speechcommands"  # the 35 words; a comma-separated list makes a smaller corpus
    voices: int = 24
    codebooks: int = 2
    codebook_size: int = 64  # a few thousand training utterances do not fill 320 codes
    codebook_frames: int = 40_000
    probe_methods: tuple[str, ...] | None = None  # the paper's Table 2
    # Keyword spotting's learning rate (docs/methods.md section 6) with small batches, so a corpus of a
    # few thousand utterances gets a few hundred optimiser steps.
    probe_lr: float = 1e-2
    probe_batch_size: int = 128
    probe_epochs: int = 20
    probe_seeds: int = 1  # the attentive heads dominate the demo's time; one seed keeps it short
    device: str = "cpu"


@dataclass(frozen=True)
class DemoResult:
    results: Path
    report_dir: Path
    seconds: float


def _slug(spec: str) -> str:
    """A file-name-safe name for an upstream spec such as ``facebook/wav2vec2-base``."""
    return spec.strip("/").replace("/", "--")


def _say(message: str) -> None:
    log.info("[vqpool demo] %s", message)


def prepare_corpus(
    out_dir: Path, corpus: str, root: str | os.PathLike | None, settings: DemoSettings
) -> Path:
    """The demo's manifest: the synthetic corpus (made once) or FSDD read in place."""
    from vqpool.data import prepare, write_prepared
    from vqpool.data.synth import synthesize

    if corpus == "synth":
        corpus_dir = out_dir / "corpus"
        manifest = corpus_dir / "manifest.csv"
        if not manifest.is_file():
            _say(f"synthesising a Speech-Commands-like corpus with eSpeak NG into {corpus_dir}")
            manifest = synthesize(corpus_dir, seed=0, words=settings.words, voices=settings.voices)
        return manifest
    if corpus == "fsdd":
        manifest = out_dir / "fsdd-manifest.csv"
        if not manifest.is_file():
            rows = prepare("fsdd", root, split="speaker")
            write_prepared(rows, manifest)
        return manifest
    raise AssertionError(corpus)  # run_demo checked it


def run_demo(
    out_dir: str | os.PathLike = "vqpool-demo",
    *,
    corpus: str = "synth",
    root: str | os.PathLike | None = None,
    settings: DemoSettings = DemoSettings(),
) -> DemoResult:
    """Run every pooling method through both protocols on a corpus made offline; write a report."""
    from vqpool import report
    from vqpool.data import read_manifest, rows_of_split, task_of
    from vqpool.evaluate import run_bench, run_probe
    from vqpool.extract import extract
    from vqpool.pooling import METHODS, method_names
    from vqpool.upstream import load_upstream
    from vqpool.upstream.codebook import KMeansCodebook, fit_codebook

    started = time.perf_counter()
    if corpus not in ("synth", "fsdd"):
        raise ParameterError("corpus", f"must be synth or fsdd, not {corpus!r}")
    if corpus == "fsdd" and root is None:
        raise ParameterError("corpus", "fsdd needs {root}, the folder of FSDD's recordings")
    # Load every upstream before minutes of work, so a wrong name fails at once.
    upstreams = {spec: load_upstream(spec, device=settings.device) for spec in settings.upstreams}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    results.unlink(missing_ok=True)  # one demo, one set of results: reruns re-measure
    manifest = prepare_corpus(out, corpus, root, settings)
    rows = read_manifest(manifest)
    train_paths = [row["path"] for row in rows_of_split(rows, "train", where=manifest)]
    task = task_of(corpus)
    _say(f"{len(rows)} utterances ({len(train_paths)} for training) from {manifest}")

    for spec in settings.upstreams:
        codebook_path = out / f"codebook-{_slug(spec)}.pt"
        if not codebook_path.is_file():
            _say(f"{spec}: fitting a {settings.codebooks}x{settings.codebook_size} k-means codebook")
            fit_codebook(
                upstreams[spec],
                train_paths,
                num_codebooks=settings.codebooks,
                codebook_size=settings.codebook_size,
                max_frames=settings.codebook_frames,
            ).save(codebook_path)
        upstream = load_upstream(
            spec, codebook=KMeansCodebook.load(codebook_path), device=settings.device
        )
        _say(f"{spec}: extracting frames and codes")
        store = extract(
            rows, upstream, out / f"store-{_slug(spec)}", resume=True, corpus=corpus, task=task
        )
        _say(f"{spec}: 1-NN benchmark of all {len(METHODS)} unsupervised methods")
        run_bench(store, "all", results=results, device=settings.device)
        probe_methods = settings.probe_methods or method_names(trained=None, tag="probe")
        _say(f"{spec}: linear probe of {', '.join(probe_methods)}")
        run_probe(
            store,
            probe_methods,
            seeds=settings.probe_seeds,
            epochs=settings.probe_epochs,
            lr=settings.probe_lr,
            batch_size=settings.probe_batch_size,
            results=results,
            device=settings.device,
        )

    # Figures first, so the report embeds them.
    report_dir = out / "report"
    test_row = next(row for row in rows if row.get("split") == "test")
    first = settings.upstreams[0]
    report.draw_frame_weights(
        test_row["path"],
        first,
        report_dir / f"weights-{_slug(first)}.png",
        codebook=out / f"codebook-{_slug(first)}.pt",
    )
    for spec in settings.upstreams:
        name = _slug(spec)
        report.draw_tsne(out / f"store-{name}", report_dir / f"tsne-{name}.png", split="test")
    files = report.write_report([results], report_dir)
    for table in files.tables:
        print(report.to_text(table), end="\n\n")
    seconds = time.perf_counter() - started
    _say(f"done in {seconds:.0f} s: report with its plots in {report_dir}/report.md")
    return DemoResult(results=results, report_dir=report_dir, seconds=seconds)
