"""The report's PNG figures: accuracy bars, frame weights over a waveform (paper Figure 3), t-SNE (Figure 2).

Figures are built on ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot): no global
state, no display needed, safe in threads and on servers.
"""

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vqpool.errors import ParameterError, VqpoolError
from vqpool.io import atomic_path
from vqpool.report.paper_tables import method_label
from vqpool.report.tables import Cell, Table, column_label

DPI = 120
MIN_TSNE_POINTS = 4  # t-SNE's perplexity must stay below the number of points; fewer says nothing


def _save(figure: Figure, out_png: str | os.PathLike) -> Path:
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)  # the tmp name has no .png suffix
    return Path(out_png)


def _colors(count: int) -> list:
    """Distinct colours: tab10/tab20 while they last, then evenly spaced hues."""
    if count <= 10:
        return [colormaps["tab10"](i) for i in range(count)]
    if count <= 20:
        return [colormaps["tab20"](i) for i in range(count)]
    return [colormaps["turbo"](i / (count - 1)) for i in range(count)]


def _label_base(cell: Cell, span: float) -> float:
    """Where a bar's value label starts: above the bar, or above the paper's tick if it would cross."""
    above = cell.ours + (cell.std or 0.0)
    if cell.paper is not None and above - 0.5 < cell.paper < above + span:
        return cell.paper
    return above


def plot_accuracy_bars(table: Table, out_png: str | os.PathLike) -> Path:
    """Grouped bars: one group per task (and AVG), one bar per method; the paper's figure as a tick.

    Each bar carries its value (one decimal, upright above the bar) so that differences of a
    point or two are read, not guessed from bar heights.
    """
    columns = table.columns()
    width = 0.8 / len(table.methods)
    centres = np.arange(len(columns))
    drawn = [cell for key, cell in table.cells.items() if key[1] in columns]
    top = max(max(cell.ours + (cell.std or 0.0), cell.paper or 0.0) for cell in drawn)
    ylim = max(top, 1.0) * 1.15  # room for the labels above the tallest bar
    figure = Figure(
        figsize=(max(6.0, 2.0 + len(columns) * (0.14 * len(table.methods) + 0.5)), 4.5),
        layout="constrained",
    )
    axes = figure.add_subplot()
    paper_drawn = False
    for i, (method, color) in enumerate(
        zip(table.methods, _colors(len(table.methods)), strict=True)
    ):
        cells = [table.cells.get((method, column)) for column in columns]
        positions = centres - 0.4 + width * (i + 0.5)
        heights = [np.nan if cell is None else cell.ours for cell in cells]
        errors = [np.nan if cell is None or cell.std is None else cell.std for cell in cells]
        has_std = not np.isnan(errors).all()
        axes.bar(
            positions,
            heights,
            width,
            yerr=errors if has_std else None,
            capsize=2,
            color=color,
            label=method_label(method),
        )
        for x, cell in zip(positions, cells, strict=True):
            if cell is not None:
                axes.annotate(
                    f"{cell.ours:.1f}",
                    (x, _label_base(cell, 0.1 * ylim)),
                    xytext=(0, 2),
                    textcoords="offset points",
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=6,
                )
        paper = [
            (x, cell.paper)
            for x, cell in zip(positions, cells, strict=True)
            if cell is not None and cell.paper is not None
        ]
        if paper:
            xs, ys = np.array(paper).T
            axes.hlines(
                ys,
                xs - width / 2,
                xs + width / 2,
                colors="black",
                linewidth=2,
                zorder=3,
                label=None if paper_drawn else "paper",
            )
            paper_drawn = True
    axes.set_ylim(0, ylim)
    axes.set_xticks(centres, [column_label(table, column) for column in columns])
    axes.set_ylabel("accuracy (%)")
    axes.set_title(f"{table.protocol_title}\n{table.upstream_title}", fontsize="medium")
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return _save(figure, out_png)


def plot_frame_weights(
    waveform: np.ndarray,
    sample_rate: int,
    weights: dict[str, np.ndarray],
    frame_rate: float,
    out_png: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """The paper's Figure 3: the waveform on top, then each method's frame weights as steps over time.

    Frame ``t`` covers ``[t, t + 1) / frame_rate`` seconds; each weight panel also shows the
    waveform's envelope (scaled to the panel) so weights can be read against the sound, and a
    dashed line at ``1/T``, the uniform weight of average pooling.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise ValueError(f"waveform must be a non-empty 1-D array, got shape {waveform.shape}")
    if not weights:
        raise ValueError("no frame weights to draw")
    time = np.arange(waveform.size) / sample_rate
    envelope = np.abs(waveform) / max(float(np.abs(waveform).max()), 1e-12)
    figure = Figure(figsize=(9.0, 1.6 + 1.4 * len(weights)), layout="constrained")
    axes = figure.subplots(len(weights) + 1, 1, sharex=True, squeeze=False)[:, 0]
    axes[0].plot(time, waveform, linewidth=0.5, color="0.25")
    axes[0].set_ylabel("waveform")
    axes[0].set_title(title or "Frame weights", fontsize="medium")
    end = time[-1]
    for axis, (method, values) in zip(axes[1:], weights.items(), strict=True):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(
                f"weights of {method!r} must be a non-empty 1-D array, got shape {values.shape}"
            )
        edges = np.arange(values.size + 1) / frame_rate
        top = float(values.max()) or 1.0
        axis.fill_between(time, 0, envelope * top, color="0.8", linewidth=0, label="|waveform|")
        axis.stairs(values, edges, color="C3", linewidth=1.4, label="weight")
        axis.axhline(
            1 / values.size, color="0.4", linestyle="--", linewidth=0.8, label="uniform 1/T"
        )
        axis.set_ylabel(f"{method_label(method)}\nweight", fontsize="small")
        axis.set_ylim(0, top * 1.08)
        end = max(end, edges[-1])
    figure.legend(
        *axes[1].get_legend_handles_labels(),
        loc="outside lower center",
        ncols=3,
        fontsize="small",
        frameon=False,
    )
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, end)
    return _save(figure, out_png)


def check_tsne_points(max_points: int) -> None:
    if max_points < MIN_TSNE_POINTS:
        raise ParameterError(
            "max_points", f"is {max_points}: t-SNE needs at least {MIN_TSNE_POINTS} points"
        )


def plot_tsne(
    vectors: dict[str, np.ndarray],
    labels: Sequence,
    out_png: str | os.PathLike,
    classes: Sequence | None = None,
    max_points: int = 1000,
    seed: int = 0,
    title: str | None = None,
) -> Path:
    """The paper's Figure 2: a 2-D t-SNE map of pooled vectors, one panel per method, coloured by class.

    The same (seeded) subset of points is drawn in every panel so that panels compare methods,
    not samples. Cosine distance, as the 1-NN benchmark uses.
    """
    check_tsne_points(max_points)
    # Imported here: sklearn is slow to import and only t-SNE needs it.
    from sklearn.manifold import TSNE

    labels = np.array([str(label) for label in labels])
    if classes is None:
        classes = sorted(set(labels))
    else:
        classes = [str(name) for name in classes]
        unknown = sorted(set(classes) - set(labels))
        if unknown:
            raise VqpoolError(f"classes not found among the labels: {', '.join(unknown)}")
    keep = np.flatnonzero(np.isin(labels, classes))
    if keep.size > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(keep, max_points, replace=False))
    if keep.size < MIN_TSNE_POINTS:
        raise VqpoolError(f"t-SNE needs at least {MIN_TSNE_POINTS} points, {keep.size} selected")
    if not vectors:
        raise ValueError("no vectors to draw")
    columns = len(vectors) if len(vectors) <= 3 else math.ceil(math.sqrt(len(vectors)))
    rows = math.ceil(len(vectors) / columns)
    figure = Figure(figsize=(4.2 * columns + 1.6, 4.0 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    colors = dict(zip(classes, _colors(len(classes)), strict=True))
    for axis, (method, matrix) in zip(axes, vectors.items(), strict=False):
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != labels.size:
            raise ValueError(
                f"vectors of {method!r} must be [{labels.size}, D], got {matrix.shape}"
            )
        points = TSNE(
            2,
            perplexity=min(30.0, (keep.size - 1) / 3),
            metric="cosine",
            init="pca",
            random_state=seed,
        ).fit_transform(matrix[keep])
        for name in classes:
            mask = labels[keep] == name
            axis.scatter(*points[mask].T, s=12, color=colors[name], alpha=0.8, linewidths=0)
        axis.set_title(method_label(method), fontsize="medium")
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes[len(vectors) :]:
        axis.set_visible(False)
    heading = title or "t-SNE of pooled vectors"
    figure.suptitle(f"{heading} ({keep.size} points, {len(classes)} classes)", fontsize="medium")
    if len(classes) <= 20:  # beyond that a legend is unreadable; colours still separate classes
        handles = [
            Line2D([], [], marker="o", linestyle="", color=colors[name], label=name)
            for name in classes
        ]
        figure.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)
    return _save(figure, out_png)
