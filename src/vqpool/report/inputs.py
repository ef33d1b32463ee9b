"""Where the figures' inputs come from: one audio file through an upstream (Figure 3), a feature store (Figure 2).

Methods that cannot be drawn from what the user gave (no codes, no corpus statistics, a head
that needs training) are skipped with the reason, not failed: the other panels are still useful.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vqpool.audio import load_audio
from vqpool.errors import BadAudioError, ParameterError, VqpoolError
from vqpool.report.figures import check_tsne_points, plot_frame_weights, plot_tsne, png_source

if TYPE_CHECKING:
    from vqpool.pooling import Available, CorpusStats
    from vqpool.store import FeatureStore

@dataclass
class Drawn:
    png: Path
    methods: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it was left out


def _drawable(methods: Sequence[str], available: "Available") -> tuple[list[str], dict[str, str]]:
    """The methods that can be drawn, and why each other one cannot; an error when none can.
    A figure is still useful without some panels, so the others are skipped, not failed."""
    from vqpool.pooling import select_methods
    from vqpool.pooling.registry import MISSING

    selection = select_methods(methods, available)
    skipped = {method: f"needs {MISSING[missing]}" for method, missing in selection.skipped.items()}
    if not selection.methods:
        reasons = "; ".join(f"{method}: {why}" for method, why in skipped.items())
        raise VqpoolError(f"none of the methods can be drawn ({reasons})")
    return selection.methods, skipped


def _load_stats(path: str | os.PathLike | None) -> "CorpusStats | None":
    from vqpool.pooling import CorpusStats

    return None if path is None else CorpusStats.load(path)


def draw_frame_weights(
    audio: str | os.PathLike,
    upstream: str,
    out_png: str | os.PathLike,
    methods: Sequence[str] | None = None,
    *,
    codebook: str | os.PathLike | None = None,
    stats: str | os.PathLike | None = None,
    device: str = "cpu",
    label: str | None = None,
    **pool_options,
) -> Drawn:
    """Figure 3 for any file: run ``upstream`` on ``audio`` and draw each method's frame weights.

    Weights depend on codes only (from the model's quantizer or ``codebook``), so the frame
    layers are not an option here. ``label`` (the utterance's class, when known) goes into the
    title.
    """
    import torch

    from vqpool.encode import Encoder
    from vqpool.pooling import Available, frame_weights, method_names

    # The encoder's path: the same audio handling, batching and fp16 frames as extract.
    encoder = Encoder(upstream, "ap", codebook=codebook, device=device)
    model = encoder.upstream
    corpus_stats = _load_stats(stats)
    if methods is None:  # Figure 3's panels
        methods = method_names(tag="frame-weights")
        if corpus_stats is not None:
            methods += method_names(tag="frame-weights-stats")
    try:
        waveform = load_audio(audio, model.sample_rate, min_samples=model.min_samples)
    except BadAudioError as error:  # one file to draw: there is nothing to skip to
        raise error.without_hint() from None
    ((frames, codes),) = encoder.frames([waveform], sample_rate=model.sample_rate)
    chosen, skipped = _drawable(
        methods,
        Available(codes=codes is not None, stats=corpus_stats is not None, frame_weights=True),
    )
    length = frames.shape[0]
    lengths = torch.tensor([length])
    weights = {
        method: frame_weights(
            lengths, None if codes is None else codes[None], method=method, stats=corpus_stats,
            **pool_options,
        )[0, :length].float().cpu().numpy()
        for method in chosen
    }
    said = f", label {label!r}" if label not in (None, "") else ""
    title = f"Frame weights of {Path(audio).name}{said} ({model.name}, {length} frames)"
    png = plot_frame_weights(
        waveform, model.sample_rate, weights, model.frame_rate, out_png, title=title
    )
    return Drawn(png, chosen, skipped)


def _split_indices(
    store: "FeatureStore", split: str, classes: Sequence[str] | None, path: str | os.PathLike
) -> list[int]:
    rows = store.meta
    indices = store.indices(split)
    if not indices:
        splits = sorted({str(row.get("split")) for row in rows})
        raise VqpoolError(f"{path}: no utterances in split {split!r} (it has: {', '.join(splits)})")
    if classes is None:
        return indices
    classes = [str(name) for name in classes]
    present = {str(rows[i].get("label")) for i in indices}
    unknown = [name for name in classes if name not in present]
    if unknown:
        raise VqpoolError(f"{path}: class(es) {', '.join(unknown)} not in the {split} split")
    return [i for i in indices if str(rows[i].get("label")) in classes]


@dataclass
class StoreVectors:
    vectors: dict[str, np.ndarray]  # method -> fp32 [N, D'], rows follow ``indices``
    labels: list[str]
    indices: list[int]  # store positions
    skipped: dict[str, str]  # method -> why it was left out
    splits: list[str] = field(default_factory=list)  # each row's split


def store_vectors(
    store_path: str | os.PathLike,
    methods: Sequence[str],
    *,
    split: str = "test",
    classes: Sequence[str] | None = None,
    max_points: int | None = None,
    seed: int = 0,
    stats: str | os.PathLike | None = None,
    reference: str | None = None,
    **pool_options,
) -> StoreVectors:
    """Pool the utterances of ``split`` (of ``classes``; a seeded subset of ``max_points``),
    and with ``reference`` (e.g. "train", what 1-NN searches) that split's too, the subset then
    drawn from both.

    Corpus statistics come from ``stats`` or are fitted on the store's train split, and the
    vectors come from the benchmark's own pooler: for a pooled-only store, what the benchmark
    can get from it (its pooled methods, and the transforms of its AP vectors).
    """
    from vqpool.pooling import PoolOptions
    from vqpool.store import open_store
    from vqpool.vectors import Fold, FoldPooler, store_offers

    options = PoolOptions.of(**pool_options)  # checked before any store is read
    if max_points is not None and max_points < 1:
        raise ParameterError("max_points", f"is {max_points}: pick at least one utterance")
    store = open_store(store_path)
    indices = _split_indices(store, split, classes, store_path)
    if reference is not None and reference != split:  # a store without one maps ``split`` alone
        wanted = {str(row.get("label")) for row in map(store.meta.__getitem__, indices)}
        indices = sorted(indices + [i for i in store.indices(reference)
                                    if str(store.meta[i].get("label")) in wanted])
    if max_points is not None and len(indices) > max_points:  # pool only what will be drawn
        indices = sorted(
            np.random.default_rng(seed).choice(indices, max_points, replace=False).tolist()
        )
    train = store.indices("train")
    corpus_stats = _load_stats(stats)
    offers = store_offers(store)
    chosen, skipped = _drawable(methods, replace(offers, stats=corpus_stats is not None or bool(train)))
    # The benchmark's own pooler: the figure shows the vectors that bench scores.
    pooler = FoldPooler(store, chosen, options, stats=corpus_stats)
    pooled = pooler.vectors(Fold(1, train, [], indices), indices)
    vectors = {method: pooled[method][indices].numpy() for method in chosen}
    labels = [str(store.meta[i].get("label")) for i in indices]
    splits = [str(store.meta[i].get("split")) for i in indices]
    return StoreVectors(vectors, labels, indices, skipped, splits)


def draw_tsne(
    store_path: str | os.PathLike,
    out_png: str | os.PathLike,
    methods: Sequence[str] | None = None,
    *,
    split: str = "test",
    classes: Sequence[str] | None = None,
    max_points: int = 1000,
    seed: int = 0,
    stats: str | os.PathLike | None = None,
    reference: str | None = "train",
    **pool_options,
) -> Drawn:
    """Figure 2 from a feature store: pool ``split`` and the ``reference`` split (the training
    utterances 1-NN searches; None: ``split`` alone) with each method (``store_vectors``; by
    default the paper's, ap and vq-lp) and map them, each split with its own marker."""
    from vqpool.pooling import PoolOptions, method_names

    check_tsne_points(max_points)  # before minutes of pooling
    PoolOptions.of(**pool_options)
    if methods is None:
        methods = method_names(tag="map")
    pooled = store_vectors(
        store_path,
        methods,
        split=split,
        classes=classes,
        max_points=max_points,
        seed=seed,
        stats=stats,
        reference=reference,
        **pool_options,
    )
    shown = split if reference in (None, split) else f"{reference} and {split}"
    title = f"{Path(store_path).resolve().name}, {shown} splits"
    png = plot_tsne(
        pooled.vectors,
        pooled.labels,
        out_png,
        classes=classes,
        max_points=max_points,
        seed=seed,
        title=title,
        splits=pooled.splits,
        source=str(Path(store_path).resolve()),
    )
    return Drawn(png, list(pooled.vectors), pooled.skipped)


def tsne_png(out_dir: str | os.PathLike, store_path: str | os.PathLike, split: str) -> Path:
    """Where the t-SNE map of a store goes: named after the store, so that maps of several
    stores share a folder; a same-named map of another store (its PNG says what it was drawn
    from) is kept, and this one gets a number."""
    import re

    source = str(Path(store_path).resolve())
    stem = re.sub(r"[^A-Za-z0-9.]+", "-", f"tsne-{Path(source).name}-{split}").strip("-.")
    for count in range(1, 1000):
        path = Path(out_dir) / (f"{stem}.png" if count == 1 else f"{stem}-{count}.png")
        if not path.exists() or png_source(path) == source:
            return path
    raise VqpoolError(f"{out_dir}: too many t-SNE maps named {stem}")
