"""Reports: the paper's tables with its own figures beside ours, and the paper's figures as PNG.

``write_report`` turns results files into report.md, tables.csv, results.json and bar charts
(report.md embeds them and every other figure in its folder), and ``build_frames_codes`` the
"frames x codes" tables of frames pooled with codes of several sources;
``plot_frame_weights`` (Figure 3) and ``plot_tsne`` (Figure 2) draw from arrays, and
``draw_frame_weights`` / ``draw_tsne`` feed them from an audio file or a feature store
(``store_vectors`` gives the pooled vectors themselves).
"""

from vqpool.report.build import ReportFiles, update_report, write_report
from vqpool.report.figures import (
    check_tsne_points,
    method_colors,
    plot_accuracy_bars,
    plot_frame_weights,
    plot_tsne,
)
from vqpool.report.frames_codes import FramesCodes, build_frames_codes, frames_codes_text
from vqpool.report.inputs import (
    Drawn,
    StoreVectors,
    draw_frame_weights,
    draw_tsne,
    store_vectors,
    tsne_png,
)
from vqpool.report.results import Results, Skipped, load_results, skipped_lines
from vqpool.report.tables import Cell, Table, build_tables, to_markdown, to_text

__all__ = [
    "Cell",
    "Drawn",
    "FramesCodes",
    "ReportFiles",
    "StoreVectors",
    "Results",
    "Skipped",
    "Table",
    "build_frames_codes",
    "build_tables",
    "check_tsne_points",
    "draw_frame_weights",
    "draw_tsne",
    "frames_codes_text",
    "load_results",
    "method_colors",
    "plot_accuracy_bars",
    "plot_frame_weights",
    "plot_tsne",
    "skipped_lines",
    "store_vectors",
    "to_markdown",
    "to_text",
    "tsne_png",
    "update_report",
    "write_report",
]
