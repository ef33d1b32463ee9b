"""The report's PNG figures: accuracy bars, frame weights over a waveform (paper Figure 3), t-SNE (Figure 2).

Figures are built on ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot): no global
state, no display needed, safe in threads and on servers.
"""

import math
import os
import textwrap
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


def _save(figure: Figure, out_png: str | os.PathLike, source: str | None = None) -> Path:
    """Write the PNG atomically; ``source`` (what it was drawn from) goes into its metadata."""
    metadata = {"Source": source} if source else None
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata=metadata)  # tmp has no .png suffix
    return Path(out_png)


def _colors(count: int) -> list:
    """Distinct colours: tab10 while it lasts, then tab20's dark shades before its light ones,
    then evenly spaced hues."""
    if count <= 10:
        return [colormaps["tab10"](i) for i in range(count)]
    if count <= 20:
        return [colormaps["tab20"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)][:count]]
    return [colormaps["turbo"](i / (count - 1)) for i in range(count)]


def method_colors(methods: Sequence[str] = ()) -> dict[str, tuple]:
    """One colour per method, the same in every figure: by the method's place in the registry
    (built-ins, then plugins, in registration order), then ``methods`` it does not know (a
    results row of a plugin not installed here), by name."""
    from vqpool.pooling import method_names

    known = list(method_names(trained=None))
    names = known + sorted(set(methods) - set(known))
    # tab20's dark shades, then its light ones; no grey: figures draw the waveform in grey
    palette = [colormaps["tab20"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)]
               if i not in (14, 15)]
    return {name: palette[i] if i < len(palette) else colormaps["turbo"]((i * 0.61803) % 1.0)
            for i, name in enumerate(names)}


def is_trained(method: str) -> bool:
    """A supervised head (trained with the probe); unknown methods count as training-free."""
    from vqpool.pooling import method_names

    return method in method_names(trained=True)


def _nice_floor(value: float, span: float) -> float:
    step = 1.0 if span <= 10 else 2.0 if span <= 20 else 5.0 if span <= 50 else 10.0
    return math.floor(value / step) * step


def y_range(cells: Sequence[Cell]) -> tuple[float, float]:
    """The accuracy axis for ``cells``: from 0 when the values reach down near it, else from a
    round number a little below the lowest (bar minus its error, or the paper's figure), so
    that differences of a point are visible; the top leaves room for the value labels."""
    lows = [cell.ours - (cell.error or (0.0, 0.0))[0] for cell in cells]
    highs = [cell.ours + (cell.error or (0.0, 0.0))[1] for cell in cells]
    papers = [cell.paper for cell in cells if cell.paper is not None]
    low, high = min(lows + papers), max(highs + papers)
    span = max(high - low, 2.0)
    bottom = 0.0 if low - 0.3 * span <= span else max(0.0, _nice_floor(low - 0.3 * span, span))
    return bottom, high + 0.3 * max(high - bottom, span)  # never empty: all-0 bars get 0-0.6


def plot_accuracy_bars(table: Table, out_png: str | os.PathLike) -> Path:
    """`accuracy_bars_figure` as a PNG."""
    return _save(accuracy_bars_figure(table), out_png)


def accuracy_bars_figure(table: Table) -> Figure:
    """One panel per column (task, task on one store, AVG), one bar per method with its name on
    the x-axis, in the method's own colour (`method_colors`, the same in every figure of a
    report); training-free methods first, then the trained heads on a shaded background. Error
    bars are the std over seeds where there are seeds, else the 95% bootstrap interval; the
    paper's figure is a black tick. Each task's accuracy axis (shared by its columns) starts
    near its data (from 0 only when the data reach down near 0) and says where it starts.
    """
    columns = table.columns()
    colors = method_colors(table.methods)
    free = [m for m in table.methods if not is_trained(m)]
    heads = [m for m in table.methods if is_trained(m)]
    # x positions: the training-free group, a gap, the heads
    positions = {m: float(i) for i, m in enumerate(free)}
    positions.update({m: len(free) + 0.6 + i for i, m in enumerate(heads)})
    width = max(3.0, 0.42 * len(table.methods) + 1.2)
    figure = Figure(figsize=(max(6.4, width * len(columns) + 0.6), 4.8), layout="constrained")
    axes = figure.subplots(1, len(columns), squeeze=False)[0]
    paper_shown = False
    for axis, column in zip(axes, columns, strict=True):
        drawn = [m for m in table.methods if (m, column) in table.cells]
        cells = [table.cells[m, column] for m in drawn]
        # the columns of one task (its stores) share an axis, so that they compare at a glance
        bottom, top = y_range([cell for (_, c), cell in table.cells.items()
                               if c in columns and table.task_of(c) == table.task_of(column)])
        xs = [positions[m] for m in drawn]
        errors = [cell.error for cell in cells]
        yerr = np.array([[e[0] if e else np.nan for e in errors],
                         [e[1] if e else np.nan for e in errors]])
        axis.bar(xs, [cell.ours - bottom for cell in cells], 0.8, bottom=bottom,
                 color=[colors[m] for m in drawn], zorder=2)
        if not np.isnan(yerr).all():
            axis.errorbar(xs, [cell.ours for cell in cells], yerr=yerr, fmt="none",
                          ecolor="0.15", elinewidth=1, capsize=3, zorder=3)
        for x, cell, error in zip(xs, cells, errors, strict=True):
            above = cell.ours + (error[1] if error else 0.0)
            if cell.paper is not None:
                axis.hlines(cell.paper, x - 0.4, x + 0.4, colors="black", linewidth=2.2, zorder=4)
                paper_shown = True
                above = max(above, cell.paper)
            axis.annotate(f"{cell.ours:.1f}", (x, above), xytext=(0, 3), textcoords="offset points",
                          rotation=90, ha="center", va="bottom", fontsize=7)
        if heads and any(m in heads for m in drawn):
            axis.axvspan(len(free) + 0.1, len(free) + 0.6 + len(heads) - 0.5, color="0.93", zorder=0)
        axis.set_xticks(xs, [method_label(m) for m in drawn], rotation=45, ha="right",
                        rotation_mode="anchor", fontsize=8)
        axis.set_xlim(-0.7, max(positions.values()) + 0.7)
        axis.set_ylim(bottom, top)
        axis.set_yticks([t for t in axis.get_yticks() if bottom <= t <= min(top, 100.0)])
        axis.grid(axis="y", alpha=0.3, zorder=1)
        axis.set_axisbelow(True)
        axis.set_title(column_label(table, column), fontsize="medium")
        axis.set_ylabel("accuracy (%)" + ("" if bottom == 0 else f", axis from {bottom:g}"),
                        fontsize="small")
        _group_labels(axis, free, heads, positions)
    notes = ["bars: ours"]
    if paper_shown:
        notes.append("black tick: the paper's figure")
    if any(cell.std is not None for cell in table.cells.values()):
        notes.append("error bars: std over seeds" + (
            ", else 95% bootstrap interval" if any(
                cell.std is None and cell.ci95 is not None for cell in table.cells.values())
            else ""))
    elif any(cell.ci95 is not None for cell in table.cells.values()):
        notes.append("error bars: 95% bootstrap interval over test utterances")
    # wrapped to the figure's width (about 11 characters an inch), so a long upstream path fits
    wrap = int(figure.get_figwidth() * 11)
    figure.suptitle(textwrap.fill(f"{table.protocol_title}: {table.upstream_title}", wrap),
                    fontsize="medium")
    figure.supxlabel(textwrap.fill("; ".join(notes), int(wrap * 1.2)), fontsize="small", color="0.3")
    return figure


def _group_labels(axis, free: list[str], heads: list[str], positions: dict[str, float]) -> None:
    """"training-free" and "trained heads" at the top of their groups, when both are there."""
    if not (free and heads):
        return
    for group, text in ((free, "training-free"), (heads, "trained heads")):
        centre = sum(positions[m] for m in group) / len(group)
        axis.annotate(text, (centre, 1.0), xycoords=("data", "axes fraction"), xytext=(0, -2),
                      textcoords="offset points", ha="center", va="top", fontsize=7,
                      color="0.35", style="italic")


def plot_frame_weights(
    waveform: np.ndarray,
    sample_rate: int,
    weights: dict[str, np.ndarray],
    frame_rate: float,
    out_png: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """`frame_weights_figure` as a PNG."""
    return _save(frame_weights_figure(waveform, sample_rate, weights, frame_rate, title), out_png)


def frame_weights_figure(
    waveform: np.ndarray,
    sample_rate: int,
    weights: dict[str, np.ndarray],
    frame_rate: float,
    title: str | None = None,
) -> Figure:
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
    colors = method_colors(list(weights))
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
        # baseline=None: no drop to 0 after the last frame (nor a rise before the first)
        axis.stairs(values, edges, baseline=None, color=colors[method], linewidth=1.4,
                    label="weight")
        axis.axhline(
            1 / values.size, color="0.4", linestyle="--", linewidth=0.8, label="uniform 1/T"
        )
        axis.set_ylabel(f"{method_label(method)}\nweight", fontsize="small")
        axis.set_ylim(0, top * 1.08)
        end = max(end, edges[-1])
    handles, names = axes[1].get_legend_handles_labels()
    handles[names.index("weight")] = Line2D([], [], color="0.15", linewidth=1.4)
    names[names.index("weight")] = "weight (in the method's colour)"
    figure.legend(
        handles,
        names,
        loc="outside lower center",
        ncols=3,
        fontsize="small",
        frameon=False,
    )
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, end)
    return figure


def check_tsne_points(max_points: int) -> None:
    if max_points < MIN_TSNE_POINTS:
        raise ParameterError(
            "max_points", f"is {max_points}: t-SNE needs at least {MIN_TSNE_POINTS} points"
        )


# Split -> marker in t-SNE maps: the 1-NN reference set small and faint, the queries bold.
SPLIT_MARKERS = {"train": ("o", 10, 0.35), "validation": ("s", 14, 0.6), "test": ("^", 26, 0.95)}
LEGEND_CLASSES = 12  # more classes than this get no legend: it would not be readable


def plot_tsne(
    vectors: dict[str, np.ndarray],
    labels: Sequence,
    out_png: str | os.PathLike,
    classes: Sequence | None = None,
    max_points: int = 1000,
    seed: int = 0,
    title: str | None = None,
    splits: Sequence[str] | None = None,
    source: str | None = None,
) -> Path:
    """The paper's Figure 2: a 2-D t-SNE map of pooled vectors, one panel per method, coloured by class.

    The same (seeded) subset of points is drawn in every panel so that panels compare methods,
    not samples. Cosine distance, as the 1-NN benchmark uses. ``splits`` (aligned with
    ``labels``) gives each point's split, drawn with its own marker: training points (what 1-NN
    searches) small and faint, test points (its queries) as bold triangles. Up to
    `LEGEND_CLASSES` classes get a legend. ``source`` is recorded in the PNG's metadata.
    """
    check_tsne_points(max_points)
    # Imported here: sklearn is slow to import and only t-SNE needs it.
    from sklearn.manifold import TSNE

    labels = np.array([str(label) for label in labels])
    point_splits = np.array(["test"] * labels.size if splits is None else [str(s) for s in splits])
    if point_splits.size != labels.size:
        raise ValueError(f"splits names {point_splits.size} points for {labels.size} labels")
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
    figure = Figure(figsize=(4.2 * columns + 1.8, 4.0 * rows + 0.3), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    colors = dict(zip(classes, _colors(len(classes)), strict=True))
    present = [name for name in SPLIT_MARKERS if name in set(point_splits[keep])]
    present += sorted(set(point_splits[keep]) - set(present))
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
        for split in present:  # the reference set first, the queries on top
            marker, size, alpha = SPLIT_MARKERS.get(split, ("D", 14, 0.7))
            for name in classes:
                mask = (labels[keep] == name) & (point_splits[keep] == split)
                edge = {"edgecolors": "0.1", "linewidths": 0.4} if split == "test" else {
                    "linewidths": 0}
                axis.scatter(*points[mask].T, s=size, marker=marker, color=colors[name],
                             alpha=alpha, **edge)
        axis.set_title(method_label(method), fontsize="medium")
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes[len(vectors) :]:
        axis.set_visible(False)
    heading = title or "t-SNE of pooled vectors"
    counts = ", ".join(f"{int((point_splits[keep] == split).sum())} {split}" for split in present)
    labelled = "" if len(classes) <= LEGEND_CLASSES else (
        f"; too many classes to label: choose up to {LEGEND_CLASSES}")
    figure.suptitle(f"{heading} ({counts} points, {len(classes)} classes{labelled})",
                    fontsize="medium")
    handles = []
    if len(classes) <= LEGEND_CLASSES:
        handles += [Line2D([], [], marker="o", linestyle="", color=colors[name], label=name)
                    for name in classes]
    if len(present) > 1 or splits is not None:
        handles += [Line2D([], [], marker=SPLIT_MARKERS.get(split, ("D",))[0], linestyle="",
                           color="0.3", label=f"{split}{_SPLIT_ROLES.get(split, '')}")
                    for split in present]
    if handles:
        figure.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)
    return _save(figure, out_png, source=source)


_SPLIT_ROLES = {"train": " (1-NN reference)", "test": " (1-NN queries)"}


def png_source(path: str | os.PathLike) -> str | None:
    """What a PNG this module wrote was drawn from (its ``Source`` metadata), if it says."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.info.get("Source")
    except (OSError, ValueError):
        return None
