"""The "frames x codes" tables: which codes pool which frames best.

A store pairs one upstream's frames with one source of codes (the upstream's own codebook or
quantizer, or codes from elsewhere: a codec, another upstream's k-means, unit files). For each
protocol and task where some frames were pooled with codes of more than one source, one table
shows every method so compared: a row per (method, frames), a column per code source, each cell
the accuracy with its uncertainty. A code source with several stores (or settings) for the same
frames gets one column per store, named after it, as the main tables do for tasks.
"""

from dataclasses import dataclass

from vqpool.evaluate.results import codes_label, frames_label, header_summary
from vqpool.report.paper_tables import PROTOCOL_TITLES, method_label, method_order, task_label
from vqpool.report.tables import (
    Cell,
    _ci95,
    _order,
    _task_columns,
    aligned,
    cell_value,
    markdown_grid,
)

NO_CODES = "no codes"


@dataclass
class FramesCodes:
    protocol: str
    task: str
    lines: list[tuple[str, str]]  # (method, frames), the rows, methods in the paper's order
    codes: list[str]  # the columns: code sources (with the store where one has several)
    cells: dict[tuple[str, str, str], Cell]  # (method, frames, codes column)
    stores: dict[tuple[str, str, str], str | None]  # the store behind each cell

    @property
    def title(self) -> str:
        protocol = PROTOCOL_TITLES.get(self.protocol, self.protocol)
        return f"Frames x codes, {protocol}: {task_label(self.task)}"

    def best(self, method: str, frames: str) -> set[str]:
        """The code sources with the row's best (2-decimal rounded) score; none in a row of
        one measured cell, which is compared with nothing."""
        scores = {c: round(self.cells[method, frames, c].ours, 2) for c in self.codes
                  if (method, frames, c) in self.cells}
        if len(scores) < 2:
            return set()
        top = max(scores.values())
        return {column for column, score in scores.items() if score == top}


def frames_of(row: dict) -> str:
    """The frames a row pooled: its upstream and layers (``"ge2e mean"``)."""
    layers = header_summary(row.get("store_header") or {}).get("layers")
    return frames_label(row["upstream"] or "unknown upstream", layers)


def _columns(rows: list[dict]) -> dict[int, str]:
    """``{id(row): column}``: the row's code source, split by store (and settings) only for a
    source that has several runs of one method on the same frames."""
    placed: dict[int, str] = {}
    labels = list(dict.fromkeys(codes_label(row) or NO_CODES for row in rows))
    for label in labels:
        mine = [row for row in rows if (codes_label(row) or NO_CODES) == label]
        cells = [(row["method"], frames_of(row)) for row in mine]
        if len(set(cells)) == len(cells):
            placed.update((id(row), label) for row in mine)
        else:
            placed.update((key, column) for key, (column, _) in _task_columns(label, mine).items())
    return placed


def build_frames_codes(rows: list[dict]) -> list[FramesCodes]:
    """One table per (protocol, task) where some frames were pooled with more than one code
    source; each shows the methods so compared, for every frames upstream they ran on."""
    tables = []
    protocols = _order(list(dict.fromkeys(row["protocol"] for row in rows)), tuple(PROTOCOL_TITLES))
    for protocol in protocols:
        for task in dict.fromkeys(row["task"] for row in rows if row["protocol"] == protocol):
            mine = [row for row in rows if row["protocol"] == protocol and row["task"] == task]
            column_of = _columns(mine)
            placed = {(row["method"], frames_of(row), column_of[id(row)]): row for row in mine}
            compared = {m for m, f, _ in placed
                        if len({c for m2, f2, c in placed if (m2, f2) == (m, f)}) > 1}
            if not compared:
                continue
            methods = _order(sorted(compared), method_order(protocol))
            frames = list(dict.fromkeys(f for _, f, _ in placed))
            lines = [(m, f) for m in methods for f in frames
                     if any((m, f) == (m2, f2) for m2, f2, _ in placed)]
            codes = list(dict.fromkeys(c for m, _, c in placed if m in compared))
            chosen = {key: row for key, row in placed.items() if key[0] in compared}
            cells = {key: Cell(row["accuracy"], row.get("std"), None, _ci95(row))
                     for key, row in chosen.items()}
            stores = {key: row.get("store") for key, row in chosen.items()}
            tables.append(FramesCodes(protocol, task, lines, codes, cells, stores))
    return tables


def _header(table: FramesCodes) -> list[str]:
    return ["Method", "Frames", *table.codes]


def _grid(table: FramesCodes, *, markdown: bool) -> list[list[str]]:
    grid = []
    for method, frames in table.lines:
        best = table.best(method, frames) if markdown else set()
        grid.append([method_label(method), frames] + [
            cell_value(cell, column in best) if (cell := table.cells.get((method, frames, column)))
            else "-" for column in table.codes])
    return grid


def frames_codes_notes(table: FramesCodes) -> list[str]:
    notes = ["Rows: the frames pooled (upstream and layers); columns: where their codes came "
             "from. Accuracy in %, ± the standard deviation over seeds where a probe ran "
             "several, else half the 95% bootstrap interval over test utterances "
             "(frames_codes.csv holds the interval); - not measured."]
    if "ap" in {method for method, _ in table.lines}:
        notes.append("AP uses no codes: across its row the frames are the same and only the "
                     "store differs.")
    return notes


def frames_codes_markdown(table: FramesCodes) -> str:
    """The Markdown table, each row's best code source in bold, with its notes."""
    lines = markdown_grid(_header(table), _grid(table, markdown=True), left=2)
    return "\n".join(lines) + "\n\n" + "  \n".join(frames_codes_notes(table))


def frames_codes_text(table: FramesCodes) -> str:
    lines = aligned([_header(table), *_grid(table, markdown=False)], left=2)
    return "\n".join([table.title, *lines, *frames_codes_notes(table)])


FRAMES_CODES_COLUMNS = ("protocol", "task", "method", "frames", "codes", "ours", "std",
                        "ci95_low", "ci95_high", "store")


def frames_codes_rows(tables: list[FramesCodes]) -> list[dict]:
    """frames_codes.csv's rows: one per cell, full precision."""
    return [
        {"protocol": table.protocol, "task": table.task, "method": method, "frames": frames,
         "codes": column, "ours": cell.ours, "std": cell.std,
         "ci95_low": cell.ci95[0] if cell.ci95 else None,
         "ci95_high": cell.ci95[1] if cell.ci95 else None,
         "store": table.stores[method, frames, column]}
        for table in tables
        for method, frames in table.lines
        for column in table.codes
        if (cell := table.cells.get((method, frames, column))) is not None
    ]
