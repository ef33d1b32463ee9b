"""The whole pipeline, offline, in one call: corpus -> codebook -> extract -> bench -> probe -> report.

Then a short comparison of code sources: GE2E's frames pooled (1-NN, pooled-only stores of the
compared methods) with codes from a k-means on log-mel and from a tiny randomly initialised
EnCodec saved beside the stores (no pretrained codec is available offline), beside its own
k-means codes; the report's "frames x codes" table shows them side by side.

Every step writes its result under ``out_dir`` and is skipped when that result is already there,
so an interrupted demo picks up where it stopped. Progress lines go to this module's logger
(INFO: ``vqpool demo`` shows them on stderr, one line per step and per probe method, terminal or
not); the tables are printed to stdout, as the demo's output.

The default settings keep the demo to a few minutes on two busy CPU cores; `DemoSettings.full`
is the larger run (more probe epochs on larger batches). Where the time goes, on two cores: the
attention heads' training (most of it), then the corpus, extraction, codebooks and t-SNE.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vqpool.errors import ParameterError
from vqpool.progress import duration

log = logging.getLogger(__name__)

DEMO_UPSTREAMS = ("logmel", "ge2e")


@dataclass(frozen=True)
class DemoSettings:
    """Sized so the whole demo runs in a few minutes on two shared CPU cores (docs/demo.md has the measured times)."""

    upstreams: tuple[str, ...] = DEMO_UPSTREAMS
    words: str = "speechcommands"  # the 35 words; a comma-separated list makes a smaller corpus
    voices: int = 24
    codebooks: int = 2
    codebook_size: int = 64  # a few thousand training utterances do not fill 320 codes
    codebook_frames: int = 40_000
    probe_methods: tuple[str, ...] | None = None  # the paper's Table 2
    # Keyword spotting's learning rate (docs/methods.md section 6) with small batches: 70
    # optimiser steps an epoch on the 2,240 training utterances, so that the attentive heads
    # (most of the demo's time) learn in a few epochs. The fixed methods' linear layers cost
    # next to nothing and get more epochs.
    probe_lr: float = 1e-2
    probe_batch_size: int = 32
    probe_epochs: int = 20
    head_epochs: int = 6
    probe_seeds: int = 1  # the attentive heads dominate the demo's time; one seed keeps it short
    # torch's (and scikit-learn's) threads: fixed, so that the tables do not depend on the
    # machine (the heads' sums round differently on 2 threads). One thread is also the fast
    # choice on a shared machine: torch's threads spin while another process holds a core, and
    # on 2 busy cores the demo took 8 min with 2 threads against 1.5 min with one.
    threads: int = 1
    tsne_classes: int = 10  # a t-SNE map with a readable legend: the first classes, by name
    # The codes comparison: these frames pooled with the other upstreams' k-means codes and a
    # random codec's ("" or an upstream not run: none), by these methods beside AP, 1-NN only.
    codes_frames: str = "ge2e"
    codes_methods: tuple[str, ...] = ("vq-lp", "vq-allsquash-and")
    device: str = "cpu"

    @classmethod
    def full(cls, **changes) -> DemoSettings:
        """The larger run the demo made before it was cut to size: every probe method, heads
        included, for 20 epochs on batches of 128 (several times the default's time)."""
        return cls(**{"probe_batch_size": 128, "head_epochs": 20, **changes})


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
    started = time.perf_counter()
    if corpus not in ("synth", "fsdd"):
        raise ParameterError("corpus", f"must be synth or fsdd, not {corpus!r}")
    if corpus == "fsdd" and root is None:
        raise ParameterError("corpus", "fsdd needs {root}, the folder of FSDD's recordings")
    with _threads(settings.threads):
        return _run(Path(out_dir), corpus, root, settings, started)


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """torch's and the OpenMP/BLAS pools' threads set to ``count`` (0: left alone), then restored."""
    if count <= 0:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(before)


def _run(out: Path, corpus: str, root: str | os.PathLike | None, settings: DemoSettings,
         started: float) -> DemoResult:
    from vqpool import report
    from vqpool.data import read_manifest, rows_of_split, task_of
    from vqpool.evaluate import run_bench, run_probe
    from vqpool.extract import extract
    from vqpool.pooling import METHODS, get_method, method_names
    from vqpool.upstream import load_upstream
    from vqpool.upstream.codebook import KMeansCodebook, fit_codebook

    # Load every upstream before minutes of work, so a wrong name fails at once.
    upstreams = {spec: load_upstream(spec, device=settings.device) for spec in settings.upstreams}
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    results.unlink(missing_ok=True)  # one demo, one set of results: reruns re-measure
    manifest = prepare_corpus(out, corpus, root, settings)
    rows = read_manifest(manifest)
    train_paths = [row["path"] for row in rows_of_split(rows, "train", where=manifest)]
    task = task_of(corpus)
    _say(f"{len(rows)} utterances ({len(train_paths)} for training) from {manifest}")
    probe_methods = settings.probe_methods or method_names(trained=None, tag="probe")
    groups = [  # (methods, epochs): the fixed methods' linear layers, then the trained heads
        (methods, epochs) for methods, epochs in (
            ([m for m in probe_methods if not get_method(m).trained], settings.probe_epochs),
            ([m for m in probe_methods if get_method(m).trained], settings.head_epochs),
        ) if methods
    ]

    for spec in settings.upstreams:
        codebook_path = out / f"codebook-{_slug(spec)}.pt"
        if not codebook_path.is_file():
            _step(started, f"{spec}: fitting a {settings.codebooks}x{settings.codebook_size} "
                  "k-means codebook")
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
        _step(started, f"{spec}: extracting frames and codes")
        store = extract(
            rows, upstream, out / f"store-{_slug(spec)}", resume=True, corpus=corpus, task=task
        )
        _step(started, f"{spec}: 1-NN benchmark of all {len(METHODS)} unsupervised methods")
        run_bench(store, "all", results=results, device=settings.device)
        for methods, epochs in groups:
            _step(started, f"{spec}: linear probe of {', '.join(methods)} ({epochs} epochs)")
            run_probe(
                store,
                methods,
                seeds=settings.probe_seeds,
                epochs=epochs,
                lr=settings.probe_lr,
                batch_size=settings.probe_batch_size,
                results=results,
                device=settings.device,
            )

    notes = []
    if settings.codes_frames in settings.upstreams:
        notes = _compare_codes(out, rows, corpus, task, results, settings, started)

    # Figures first, so the report embeds them.
    _step(started, "drawing frame weights and t-SNE maps")
    report_dir = out / "report"
    test_row = next(row for row in rows if row.get("split") == "test")
    first = settings.upstreams[0]
    report.draw_frame_weights(
        test_row["path"],
        first,
        report_dir / f"weights-{_slug(first)}.png",
        codebook=out / f"codebook-{_slug(first)}.pt",
        label=test_row.get("label"),
    )
    classes = sorted({row["label"] for row in rows})
    shown = classes[: settings.tsne_classes] if len(classes) > settings.tsne_classes else None
    for spec in settings.upstreams:
        name = _slug(spec)
        report.draw_tsne(out / f"store-{name}", report_dir / f"tsne-{name}.png", split="test",
                         classes=shown)
    files = report.write_report([results], report_dir, notes=notes)
    for table in files.tables:
        print(report.to_text(table), end="\n\n")
    for compared in files.frames_codes:
        print(report.frames_codes_text(compared), end="\n\n")
    for note in notes:
        print(note, end="\n\n")
    seconds = time.perf_counter() - started
    _say(f"done in {duration(seconds)} (wall time): report with its plots in {report_dir}/report.md")
    return DemoResult(results=results, report_dir=report_dir, seconds=seconds)


RANDOM_CODEC = "encodec-random-untrained"  # named so that every table says what it is


def _compare_codes(out: Path, rows: list[dict], corpus: str, task: str, results: Path,
                   settings: DemoSettings, started: float) -> list[str]:
    """Pool ``settings.codes_frames``'s frames with codes from each other upstream's k-means
    codebook and from a random codec, through ``codes_from`` as users give it: one pooled-only
    store each, benchmarked with 1-NN; the frames' own k-means codes are its main store's.
    Returns the report's note on the random codec."""
    from vqpool.evaluate import run_bench
    from vqpool.extract import extract
    from vqpool.upstream import CodesFrom, load_upstream

    frames = settings.codes_frames
    codec = out / RANDOM_CODEC
    if not (codec / "config.json").is_file():
        # The codec runs clip by clip and is the comparison's main cost: at the frames' 16 kHz
        # (no resampling), the smallest bandwidth just the levels used, and the largest stride
        # first (cheaper than encodec_24khz's order).
        save_random_encodec(codec, sample_rate=16000,
                            bandwidths=(0.2 * settings.codebooks, 1.6), ratios=(2, 4, 5, 8))
    sources: dict[str, str | CodesFrom] = {
        f"kmeans-{_slug(spec)}": str(out / f"codebook-{_slug(spec)}.pt")
        for spec in settings.upstreams if spec != frames
    }
    sources[RANDOM_CODEC] = CodesFrom(str(codec), levels=settings.codebooks)
    for name, source in sources.items():
        _step(started, f"{frames} frames, codes from {name}: pooled-only extraction and 1-NN")
        upstream = load_upstream(frames, codes_from=source, device=settings.device)
        store = extract(rows, upstream, out / f"store-{_slug(frames)}-codes-{name}", resume=True,
                        pooled_only=settings.codes_methods, corpus=corpus, task=task)
        run_bench(store, ["ap", *settings.codes_methods], results=results,
                  device=settings.device)
    return [f"The codec `{RANDOM_CODEC}` is a tiny EncodecModel with random, untrained weights "
            "(no pretrained codec is available offline; its first "
            f"{settings.codebooks} levels are used): its column shows codes without learned "
            "structure, a floor, not what a real codec gives."]


def save_random_encodec(directory: str | os.PathLike, seed: int = 0, *,
                        sample_rate: int = 24000, bandwidths: tuple[float, ...] = (1.5, 3.0),
                        ratios: tuple[int, ...] = (4, 4, 4, 5)) -> Path:
    """A tiny, randomly initialised ``EncodecModel`` saved with ``save_pretrained`` into
    ``directory``: by default 24 kHz like encodec_24khz (causal, no chunks), hop 320 (75 Hz),
    8 levels of 16 codes at its largest bandwidth (each level costs sample_rate / 320 x 4 bits
    per second). ``ratios``: its up-sampling ratios, whose product is the hop (the encoder
    strides by them in reverse order). Untrained: its codes carry no learned structure."""
    import torch
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(seed)
    config = EncodecConfig(num_filters=4, hidden_size=8, codebook_size=16, num_lstm_layers=1,
                           sampling_rate=sample_rate, upsampling_ratios=list(ratios),
                           target_bandwidths=list(bandwidths))
    model = EncodecModel(config).eval()
    # Codecs zero their codebooks at initialisation: seed each level's codebook with residuals
    # of random audio at that level (k-means-like), so that the codes vary.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        residual = model.encoder(torch.randn(1, 1, 48000, generator=generator))
        for layer in model.quantizer.layers:
            vectors = residual[0].T  # [frames, dim]
            picked = vectors[torch.randperm(len(vectors), generator=generator)[: config.codebook_size]]
            layer.codebook.embed.copy_(picked)
            residual = residual - layer.decode(layer.encode(residual))
    model.save_pretrained(directory)
    return Path(directory)


def _step(started: float, message: str) -> None:
    """A progress line that says how long the demo has run so far."""
    _say(f"[{duration(time.perf_counter() - started)}] {message}")
