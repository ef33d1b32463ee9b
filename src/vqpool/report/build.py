"""``write_report``: results files -> report.md, tables.csv, results.json and one bar chart per
table, and where frames were pooled with several code sources frames_codes.csv.

report.md embeds the bar charts and every other figure in the folder (frame weights, t-SNE), by
relative links, so the folder can be moved or published as it is.
"""

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from vqpool.errors import VqpoolError
from vqpool.io import atomic_path, atomic_write_text
from vqpool.report.figures import plot_accuracy_bars
from vqpool.report.frames_codes import (
    FRAMES_CODES_COLUMNS,
    FramesCodes,
    build_frames_codes,
    frames_codes_markdown,
    frames_codes_rows,
)
from vqpool.report.results import Results, load_results, parse_timestamp
from vqpool.report.tables import Table, build_tables, column_label, long_rows, to_markdown

CSV_COLUMNS = ("protocol", "upstream", "codes", "task", "variant", "method", "ours", "std",
               "ci95_low", "ci95_high", "paper", "store")


@dataclass
class ReportFiles:
    markdown: Path
    csv: Path
    json: Path
    bars: list[Path]  # aligned with tables
    tables: list[Table]
    results: Results
    figures: list[Path]  # the other PNGs report.md shows (frame weights, t-SNE, ...)
    frames_codes: list[FramesCodes]  # "frames x codes" tables (none without a code comparison)
    frames_codes_csv: Path | None  # their cells; None when there are none


BAR_PREFIX = "bars-"
# Captions for the figures `vqpool report` and the demo name by prefix; others show their name.
FIGURE_CAPTIONS = {
    "weights-": "Frame weights (paper Figure 3)",
    "tsne-": "t-SNE of pooled vectors (paper Figure 2)",
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-.") or "upstream"


def _bar_names(tables: list[Table]) -> list[str]:
    """One file name per table; upstream paths are flattened, so clashes get a number."""
    names: list[str] = []
    for table in tables:
        stem = f"{BAR_PREFIX}{_slug(table.protocol)}-{_slug(table.upstream)}"
        stem += "" if table.codes is None else f"-codes-{_slug(table.codes)}"
        name, count = f"{stem}.png", 1
        while name in names:
            count += 1
            name = f"{stem}-{count}.png"
        names.append(name)
    return names


def _runs_line(table: Table) -> str:
    """Which corpus and how many utterances stand behind each column: what a reader checks first."""
    parts = []
    for column in table.tasks:
        row = table.column_rows[column][0]
        sizes = (
            f"{row['num_train']} train / {row['num_test']} test"
            if row.get("num_train") is not None
            else ""
        )
        corpus = row.get("corpus") or ""
        store = f"store {row['store']}" if table.has_variants and row.get("store") else ""
        detail = ", ".join(filter(None, [corpus, sizes, store]))
        label = column_label(table, column)
        parts.append(f"{label} ({detail})" if detail else label)
    newest = max(table.rows, key=parse_timestamp)["timestamp"]
    return f"Tasks: {'; '.join(parts)}. {_semantics(table)}Newest run: {newest}."


def _semantics(table: Table) -> str:
    """Which semantics the rows used: some of the paper's figures came from the reference one."""
    methods: dict[str, list[str]] = {}
    for row in table.rows:
        value = row.get("settings", {}).get("semantics")
        if value is not None and row["method"] not in methods.setdefault(value, []):
            methods[value].append(row["method"])
    if not methods:
        return ""
    if len(methods) == 1:
        return f"Semantics: {next(iter(methods))}. "
    return (
        "Semantics: "
        + "; ".join(f"{value} ({', '.join(names)})" for value, names in methods.items())
        + ". "
    )


def _summary(results: Results) -> str:
    sources = ", ".join(f"`{path}`" for path in results.sources)
    text = (f"{results.read} result rows read from {sources}; {len(results.rows)} kept, one per "
            "(protocol, upstream, code source, task, method) of each store and settings.")
    if results.superseded:
        text += (
            f" {len(results.superseded)} older row(s) were superseded by a newer run of the same"
            " (protocol, upstream, code source, task, method) on the same store with the same"
            " settings: the newest timestamp wins."
        )
    if results.skipped:
        text += f" {len(results.skipped)} line(s) that are not result rows were skipped."
    return text


def _link(path: Path, out: Path) -> str:
    """A relative, URL-quoted link from report.md to ``path``."""
    return quote(path.relative_to(out).as_posix())


def _caption(path: Path) -> str:
    kind = next(
        (text for prefix, text in FIGURE_CAPTIONS.items() if path.name.startswith(prefix)), None
    )
    return f"{kind}: {path.name}" if kind else path.name


def _collect_figures(
    out: Path, figures: Sequence[str | os.PathLike], bars: list[Path]
) -> list[Path]:
    """``figures`` (copied into ``out`` when outside it), then the other PNGs already in ``out``.

    Bar charts of earlier runs are left out: their tables may be gone from this report.
    """
    chosen: list[Path] = []
    for figure in map(Path, figures):
        if not figure.is_file():
            raise VqpoolError(f"{figure}: no such figure to embed")
        if not figure.resolve().is_relative_to(out.resolve()):
            with atomic_path(out / figure.name) as tmp:
                shutil.copyfile(figure, tmp)
            figure = out / figure.name
        chosen.append(out / figure.resolve().relative_to(out.resolve()))
    present = sorted(path for path in out.glob("*.png") if not path.name.startswith(BAR_PREFIX))
    return [path for path in dict.fromkeys(chosen + present) if path not in bars]


def render_markdown(
    tables: list[Table], bars: list[Path], results: Results, figures: list[Path], out: Path,
    frames_codes: Sequence[FramesCodes] = (), notes: Sequence[str] = (),
) -> str:
    parts = ["# vqpool report", "", _summary(results), "", *(f"{note}\n" for note in notes)]
    if frames_codes:
        parts += ["## Frames x codes", "",
                  "Each row's frames pooled with codes from each source (best of a row in bold).",
                  ""]
    for table in frames_codes:
        parts += [f"### {table.title}", "", frames_codes_markdown(table), ""]
    for table, bar in zip(tables, bars, strict=True):
        parts += [
            f"## {table.title}",
            "",
            to_markdown(table),
            "",
            _runs_line(table),
            "",
            f"![accuracy per method and task]({_link(bar, out)})",
            "",
        ]
    if figures:
        parts += ["## Figures", ""]
    for figure in figures:
        parts += [f"### {_caption(figure)}", "", f"![{_caption(figure)}]({_link(figure, out)})", ""]
    return "\n".join(parts)


def _csv_text(columns: Sequence[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)  # None becomes an empty field
    return buffer.getvalue()


def write_report(
    results_paths: list[str | os.PathLike],
    out_dir: str | os.PathLike = "vqpool-report",
    *,
    figures: Sequence[str | os.PathLike] = (),
    notes: Sequence[str] = (),
) -> ReportFiles:
    """Merge the results files (a rerun of a store and settings supersedes its older rows) and
    write the report's files into ``out_dir``.

    report.md shows ``notes`` (paragraphs of Markdown, e.g. what a store's codes are), the
    "frames x codes" tables where frames were pooled with codes of several sources, the tables
    with their bar charts, then ``figures`` (PNGs outside ``out_dir`` are copied in) and every
    other PNG already in ``out_dir``: draw frame weights and t-SNE maps into ``out_dir`` first,
    or pass them here (or call `update_report` after).
    """
    return _write(load_results(results_paths), Path(out_dir), figures, notes)


def update_report(
    out_dir: str | os.PathLike, *, figures: Sequence[str | os.PathLike] = ()
) -> ReportFiles | None:
    """Write report.md (and its tables and bars) again from the rows of the report already in
    ``out_dir`` (its results.json), so that it shows figures drawn there since; None when the
    folder holds no report."""
    out = Path(out_dir)
    merged = out / "results.json"
    if not merged.is_file():
        return None
    try:
        rows = json.loads(merged.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise VqpoolError(f"{merged}: not the results.json a report writes ({error})") from error
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise VqpoolError(f"{merged}: not the results.json a report writes (a list of rows)")
    return _write(Results(rows, [merged], len(rows)), out, figures)


def _write(results: Results, out: Path, figures: Sequence[str | os.PathLike],
           notes: Sequence[str] = ()) -> ReportFiles:
    tables = build_tables(results.rows)
    names = _bar_names(tables)
    bars = [
        plot_accuracy_bars(table, out / name) for table, name in zip(tables, names, strict=True)
    ]
    shown = _collect_figures(out, figures, bars)
    compared = build_frames_codes(results.rows)
    files = ReportFiles(
        out / "report.md", out / "tables.csv", out / "results.json", bars, tables, results, shown,
        compared, out / "frames_codes.csv" if compared else None,
    )
    merged = [row for table in tables for row in table.rows]  # table order: what the report shows
    atomic_write_text(files.json, json.dumps(merged, indent=1) + "\n")
    atomic_write_text(files.csv, _csv_text(CSV_COLUMNS, long_rows(tables)))
    if files.frames_codes_csv is not None:
        atomic_write_text(files.frames_codes_csv,
                          _csv_text(FRAMES_CODES_COLUMNS, frames_codes_rows(compared)))
    else:  # a comparison of an earlier report in this folder is gone from this one
        (out / "frames_codes.csv").unlink(missing_ok=True)
    atomic_write_text(files.markdown,
                      render_markdown(tables, bars, results, shown, out, compared, notes))
    return files
