"""Figures a reviewer accepts: names on the axis, one colour per method, grouped heads, an axis
near the data, error bars, t-SNE maps of train and test that never overwrite each other, and
frame weights that name the label and stop at the last frame."""

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import StepPatch

from vqpool.pooling import method_names, options, registry
from vqpool.report import build_tables, load_results, plot_tsne, tsne_png, write_report
from vqpool.report.figures import (
    accuracy_bars_figure,
    frame_weights_figure,
    method_colors,
    png_source,
    y_range,
)
from vqpool.report.tables import Cell


def row(protocol, method, accuracy, *, std=None, ci95=None, store="/stores/a", task="synth"):
    result = {
        "protocol": protocol, "method": method, "task": task, "corpus": task, "upstream": "ge2e",
        "paper_upstream": None, "accuracy": accuracy, "std": std, "per_fold": [accuracy],
        "per_seed": None, "num_train": 100, "num_test": 40, "settings": {}, "store": store,
        "store_header": {}, "versions": {}, "seconds": 1.0, "timestamp": "2026-11-20T10:00:00Z",
    }
    if ci95 is not None:
        result["ci95"] = ci95
    return result


def tables_of(tmp_path: Path, rows: list[dict]):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return build_tables(load_results([path]).rows)


def test_each_method_keeps_its_colour_in_every_figure_and_plugins_get_one(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(options, "_DECLARED", dict(options._DECLARED))
    before = method_colors(["ap", "vq-lp"])
    registry.register_method("vq-mine", weights=lambda lengths, codes, stats=None: None)
    after = method_colors(["vq-lp", "sap", "not-installed"])
    # the colour comes from the registry's order, not from which methods a figure shows
    assert before["vq-lp"] == after["vq-lp"] and before["ap"] == after["ap"]
    assert len({after[m] for m in (*method_names(trained=None), "not-installed")}) == len(
        method_names(trained=None)) + 1
    assert "vq-mine" in after


def test_the_axis_starts_near_the_data_unless_it_reaches_zero():
    high = [Cell(95.0, ci95=(93.2, 96.8)), Cell(98.6, ci95=(97.5, 99.5)), Cell(92.1, std=1.0)]
    bottom, top = y_range(high)
    assert 80 <= bottom <= 91.1 and bottom == int(bottom) and top > 99.5
    assert y_range([Cell(14.0), Cell(60.0)])[0] == 0.0  # a spread reaching down to 0 keeps 0
    assert y_range([Cell(0.0), Cell(0.0)]) == (0.0, 0.6)  # all wrong: still an axis to draw on
    assert Cell(50.0, std=2.0, ci95=(40.0, 55.0)).error == (2.0, 2.0)  # seeds: their std
    assert Cell(50.0, ci95=(40.0, 55.0)).error == (10.0, 5.0)  # else the interval
    assert Cell(50.0).error is None  # an old row without one


def test_bars_name_methods_on_the_axis_group_heads_and_draw_error_bars(tmp_path):
    rows = [row("probe", "ap", 96.0, ci95=[94.0, 97.5]), row("probe", "vq-lp", 98.0, std=0.5),
            row("probe", "sap", 93.0, ci95=[91.0, 95.0]), row("probe", "vap", 99.0),  # no ci95
            row("probe", "sp", 97.0, ci95=[95.5, 98.0])]
    (table,) = tables_of(tmp_path, rows)
    figure = accuracy_bars_figure(table)
    (axis,) = figure.axes
    labels = [tick.get_text() for tick in axis.get_xticklabels()]
    assert labels == ["AP", "SP", "VQ-LP", "SAP", "VAP"]  # training-free first, then the heads
    assert axis.get_legend() is None and not figure.legends  # names on the axis, no legend
    low, high = axis.get_ylim()
    assert 85 <= low <= 91 and "axis from" in axis.get_ylabel()
    bars = axis.patches
    colours = method_colors()
    heights = {tuple(bar.get_facecolor()): bar.get_y() + bar.get_height() for bar in bars
               if bar.get_height() > 0 and bar.get_width() < 1}
    assert heights[tuple(colours["vq-lp"])] == pytest.approx(98.0)
    # the heads sit on a shaded band, apart from the training-free methods
    ticks = dict(zip(labels, axis.get_xticks(), strict=True))
    assert ticks["SAP"] - ticks["VQ-LP"] > ticks["SP"] - ticks["AP"] + 0.5
    texts = [text.get_text() for text in axis.texts]
    assert "training-free" in texts and "trained heads" in texts
    caps = [line for line in axis.lines if line.get_marker() == "_"]
    assert caps  # error bars: vap has none, the others have the std or the interval
    assert "95% bootstrap" in figure.get_supxlabel()

    # One colour per method across the report's figures: 1-NN and probe charts agree.
    files = write_report([tmp_path / "r.jsonl"], tmp_path / "out")
    assert [bar.name for bar in files.bars] == ["bars-probe-ge2e.png"]


def test_tsne_maps_train_and_test_with_a_legend_and_its_source(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 12)
    splits = np.tile(["train"] * 9 + ["test"] * 3, 3)
    vectors = {"ap": rng.normal(size=(3, 6))[np.repeat(np.arange(3), 12)] * 4
               + rng.normal(size=(36, 6))}
    png = plot_tsne(vectors, labels, tmp_path / "m.png", splits=splits, source="/stores/a")
    assert png_source(png) == "/stores/a"
    with pytest.raises(ValueError, match="splits names 3 points for 36 labels"):
        plot_tsne(vectors, labels, tmp_path / "bad.png", splits=["train"] * 3)


def test_tsne_files_are_named_after_the_store_and_never_overwrite_another(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    first, second = tmp_path / "base" / "store", tmp_path / "large" / "store"
    for store in (first, second):
        store.mkdir(parents=True)
    name = tsne_png(out, first, "test")
    assert name.name == "tsne-store-test.png"
    plot_tsne({"ap": np.eye(6)}, list("aabbcc"), name, source=str(first.resolve()))
    assert tsne_png(out, first, "test") == name  # the same store's map is redrawn in place
    other = tsne_png(out, second, "test")  # another store of the same folder name
    assert other.name == "tsne-store-test-2.png"


def test_frame_weights_name_the_label_and_stop_at_the_last_frame():
    waveform = np.sin(np.arange(8000) / 5).astype(np.float32)
    weights = {"vq-lp": np.full(25, 1 / 25), "ap": np.full(25, 1 / 25)}
    figure = frame_weights_figure(waveform, 16000, weights, 50.0,
                                  title="Frame weights of x.wav, label 'yes'")
    assert "label 'yes'" in figure.axes[0].get_title()
    steps = [patch for axis in figure.axes for patch in axis.patches if isinstance(patch, StepPatch)]
    assert len(steps) == 2 and all(step.get_data().baseline is None for step in steps)
    colours = method_colors()
    assert {tuple(step.get_edgecolor()) for step in steps} == {
        tuple(colours["vq-lp"]), tuple(colours["ap"])}


def test_cli_frame_weights_title_names_the_label(fsdd_root, tmp_path, monkeypatch, capsys):
    from vqpool.cli import main
    from vqpool.report import inputs

    titles = []
    real = inputs.plot_frame_weights

    def spy(*args, title=None, **kwargs):
        titles.append(title)
        return real(*args, title=title, **kwargs)

    monkeypatch.setattr(inputs, "plot_frame_weights", spy)
    audio = fsdd_root / "3_jackson_0.wav"
    assert main(["report", "--weights", str(audio), "--upstream", "logmel", "--methods", "ap",
                 "--label", "3", "--out", str(tmp_path)]) == 0
    assert titles == ["Frame weights of 3_jackson_0.wav, label '3' (logmel, 47 frames)"]
