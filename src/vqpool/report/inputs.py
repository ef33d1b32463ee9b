"""Where the figures' inputs come from: one audio file through an upstream (Figure 3), a feature store (Figure 2).

Methods that cannot be drawn from what the user gave (no codes, no corpus statistics, a head
that needs training) are skipped with the reason, not failed: the other panels are still useful.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vqpool.audio import load_audio
from vqpool.errors import VqpoolError
from vqpool.report.figures import check_tsne_points, plot_frame_weights, plot_tsne

if TYPE_CHECKING:
    from vqpool.pooling import CorpusStats
    from vqpool.store import FeatureStore

# Figure 3's default panels; the corpus-statistics methods join them when statistics are given.
WEIGHT_METHODS = ("vq-squash-and", "vq-allsquash-or", "vq-lp")
WEIGHT_STATS_METHODS = ("vq-gp", "vq-bp")


@dataclass
class Drawn:
    png: Path
    methods: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it was left out


def _usable(
    methods: Sequence[str],
    *,
    needs_weights: bool,
    has_codes: bool,
    has_stats: bool,
    pooled_only: Sequence[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The methods that can be drawn, and why each other one cannot; an error when none can.

    ``pooled_only`` lists what a store without frames can give (its pooled methods and the
    AP transforms).
    """
    from vqpool.evaluate.pooled import check_methods
    from vqpool.pooling import CODE_METHODS, HEADS, METHODS, STATS_METHODS, WEIGHTED_METHODS

    methods = check_methods(methods, (*METHODS, *HEADS))
    skipped = {}
    for method in methods:
        if pooled_only is not None and method not in pooled_only:
            skipped[method] = (
                f"needs frames: the store keeps pooled vectors only ({', '.join(pooled_only)})"
            )
        elif method in HEADS:
            skipped[method] = "a supervised head: it needs training (see vqpool probe)"
        elif needs_weights and method not in WEIGHTED_METHODS:
            skipped[method] = "not a weighted average of frames, so it has no frame weights"
        elif method in CODE_METHODS and not has_codes:
            skipped[method] = "needs codes: this upstream has no quantizer (pass --codebook)"
        elif method in STATS_METHODS and not has_stats:
            skipped[method] = "needs corpus statistics (pass --stats FILE)"
    chosen = [method for method in methods if method not in skipped]
    if not chosen:
        reasons = "; ".join(f"{method}: {why}" for method, why in skipped.items())
        raise VqpoolError(f"none of the methods can be drawn ({reasons})")
    return chosen, skipped


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
    **pool_options,
) -> Drawn:
    """Figure 3 for any file: run ``upstream`` on ``audio`` and draw each method's frame weights.

    Weights depend on codes only (from the model's quantizer or ``codebook``), so the frame
    layers are not an option here.
    """
    import torch

    from vqpool.pooling import frame_weights
    from vqpool.upstream import load_upstream

    model = load_upstream(upstream, codebook=codebook, device=device)
    corpus_stats = _load_stats(stats)
    if methods is None:
        methods = WEIGHT_METHODS + (WEIGHT_STATS_METHODS if corpus_stats is not None else ())
    waveform = load_audio(audio, model.sample_rate, min_samples=model.min_samples)
    output = model(torch.from_numpy(waveform)[None], torch.tensor([waveform.size]))
    chosen, skipped = _usable(
        methods,
        needs_weights=True,
        has_codes=output.codes is not None,
        has_stats=corpus_stats is not None,
    )
    length = int(output.frame_lengths[0])
    weights = {
        method: frame_weights(
            output.frame_lengths, output.codes, method=method, stats=corpus_stats, **pool_options
        )[0, :length]
        .float()
        .cpu()
        .numpy()
        for method in chosen
    }
    title = f"Frame weights of {Path(audio).name} ({model.name}, {length} frames)"
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


def store_vectors(
    store_path: str | os.PathLike,
    methods: Sequence[str],
    *,
    split: str = "test",
    classes: Sequence[str] | None = None,
    max_points: int | None = None,
    seed: int = 0,
    stats: str | os.PathLike | None = None,
    **pool_options,
) -> StoreVectors:
    """Pool the utterances of ``split`` (of ``classes``; a seeded subset of ``max_points``).

    Corpus statistics come from ``stats`` or are fitted on the store's train split, as the
    benchmark does. Pooled-only stores give what the benchmark can get from them (their pooled
    methods, and whitening/softdecay fitted on the train split; ``stats`` is not used there).
    """
    from vqpool.evaluate.pooled import (
        AP_TRANSFORMS,
        FoldPooler,
        PoolOptions,
        fit_stats,
        open_store,
        pool_split,
        store_batches,
    )
    from vqpool.evaluate.splits import Fold
    from vqpool.pooling import STATS_METHODS

    if max_points is not None and max_points < 1:
        raise VqpoolError(f"max_points is {max_points}: pick at least one utterance")
    store = open_store(store_path)
    indices = _split_indices(store, split, classes, store_path)
    if max_points is not None and len(indices) > max_points:  # pool only what will be drawn
        indices = sorted(
            np.random.default_rng(seed).choice(indices, max_points, replace=False).tolist()
        )
    train = store.indices("train")
    corpus_stats = _load_stats(stats)
    chosen, skipped = _usable(
        methods,
        needs_weights=False,
        has_codes=store.num_codebooks is not None,
        has_stats=corpus_stats is not None or bool(train),
        pooled_only=None if store.has_frames else (*store.pooled_methods, *AP_TRANSFORMS),
    )
    options = PoolOptions(**pool_options)
    if not store.has_frames:  # the evaluation's pooler knows what a pooled-only store can give
        pooled = FoldPooler(store, chosen, options).vectors(Fold(1, train, [], indices))
        vectors = {method: pooled[method][indices].numpy() for method in chosen}
    else:
        if corpus_stats is None and any(method in STATS_METHODS for method in chosen):
            corpus_stats = fit_stats(store, train)
        pooled = pool_split(
            store_batches(store, indices, "pooling"), chosen, indices, corpus_stats, options
        )
        vectors = {method: pooled[method].numpy() for method in chosen}
    labels = [str(store.meta[i].get("label")) for i in indices]
    return StoreVectors(vectors, labels, indices, skipped)


def draw_tsne(
    store_path: str | os.PathLike,
    out_png: str | os.PathLike,
    methods: Sequence[str],
    *,
    split: str = "test",
    classes: Sequence[str] | None = None,
    max_points: int = 1000,
    seed: int = 0,
    stats: str | os.PathLike | None = None,
    **pool_options,
) -> Drawn:
    """Figure 2 from a feature store: pool ``split`` with each method (``store_vectors``) and map it."""
    check_tsne_points(max_points)  # before minutes of pooling
    pooled = store_vectors(
        store_path,
        methods,
        split=split,
        classes=classes,
        max_points=max_points,
        seed=seed,
        stats=stats,
        **pool_options,
    )
    title = f"{Path(store_path).name}, {split} split"
    png = plot_tsne(
        pooled.vectors,
        pooled.labels,
        out_png,
        classes=classes,
        max_points=max_points,
        seed=seed,
        title=title,
    )
    return Drawn(png, list(pooled.vectors), pooled.skipped)
