"""Results -> tables in the paper's layout: one per (protocol, upstream), methods as rows, tasks as columns.

Each cell holds our accuracy, its standard deviation over seeds (when there is one), its 95%
bootstrap interval (rows written before vqpool kept one have none) and, where the row is really
comparable (the paper's upstream, task and corpus), the paper's own figure, so that renderers only
format. Where it is not, the table says why. A task measured on several stores (or with several
settings) gets one column for each, side by side, named after the store.
"""

import json
from dataclasses import dataclass, field
from pathlib import PurePath

from vqpool.evaluate.results import codes_label, header_summary, sources_title
from vqpool.report.paper_tables import (
    CAVEATS,
    PAPER_TASKS,
    PAPER_UPSTREAM_TITLES,
    PROTOCOL_TITLES,
    method_label,
    method_order,
    paper_figures,
    paper_task_mismatch,
    paper_upstream_of,
    task_label,
)

AVG = "avg"


@dataclass(frozen=True)
class Cell:
    ours: float
    std: float | None = None
    paper: float | None = None
    ci95: tuple[float, float] | None = None

    @property
    def diff(self) -> float | None:
        return None if self.paper is None else self.ours - self.paper

    @property
    def error(self) -> tuple[float, float] | None:
        """How far the uncertainty reaches below and above ``ours``: ± the std over seeds where
        there are seeds, else the 95% bootstrap interval; None when the row has neither."""
        if self.std is not None:
            return self.std, self.std
        if self.ci95 is not None:
            return max(0.0, self.ours - self.ci95[0]), max(0.0, self.ci95[1] - self.ours)
        return None


@dataclass
class Table:
    protocol: str
    upstream: str
    paper_upstream: str | None
    tasks: list[str]  # columns, without AVG
    methods: list[str]  # rows
    cells: dict[tuple[str, str], Cell]  # (method, task or AVG)
    avg_tasks: dict[str, list[str]]  # the tasks behind each method's AVG
    rows: list[dict]  # the results behind the table
    no_paper: list[str]  # why paper figures are missing (for the upstream, or some tasks)
    codes: str | None = None  # what the frames were pooled with (`codes_label`): "kmeans(ge2e) x2"
    # A column is a task, or "task · variant" when the task ran on several stores or settings.
    column_task: dict[str, str] = field(default_factory=dict)
    column_variant: dict[str, str] = field(default_factory=dict)
    column_rows: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def protocol_title(self) -> str:
        return PROTOCOL_TITLES.get(self.protocol, self.protocol)

    @property
    def upstream_title(self) -> str:
        """``"frames: ge2e mean; codes: kmeans(logmel) x2"``, or the upstream alone for rows
        without codes; the paper's model named after it when it is that model."""
        title = self.upstream
        if self.codes is not None:
            layers = header_summary(self.rows[0].get("store_header") or {}).get("layers")
            title = sources_title(self.upstream, layers, self.codes)
        if self.paper_upstream is None:
            return title
        return f"{title} (paper: {PAPER_UPSTREAM_TITLES.get(self.paper_upstream, self.paper_upstream)})"

    @property
    def title(self) -> str:
        return f"{self.protocol_title}: {self.upstream_title}"

    @property
    def has_paper(self) -> bool:
        return any(cell.paper is not None for cell in self.cells.values())

    @property
    def has_variants(self) -> bool:
        """Whether some task has several columns (stores or settings)."""
        return bool(self.column_variant)

    def columns(self) -> list[str]:
        """The tasks, then AVG when there is more than one task to average (and no task has
        several columns: their mean would count one task twice)."""
        if len(self.tasks) > 1 and not self.has_variants:
            return [*self.tasks, AVG]
        return list(self.tasks)

    def task_of(self, column: str) -> str:
        return self.column_task.get(column, column)

    def best(self, column: str) -> set[str]:
        """Methods with the best (2-decimal rounded, so ties shown equal are all marked) score.

        For AVG only methods averaged over every column compete: a partial mean is not comparable.
        """
        scores = {
            method: round(self.cells[method, column].ours, 2)
            for method in self.methods
            if (method, column) in self.cells
            and (column != AVG or len(self.avg_tasks[method]) == len(self.tasks))
        }
        top = max(scores.values(), default=None)
        return {method for method, score in scores.items() if score == top}

    @property
    def avg_is_paper_avg(self) -> bool:
        """Whether the AVG column means what the paper's does: the mean over its four tasks."""
        return sorted(self.tasks) == sorted(PAPER_TASKS)


def _order(items: list[str], preferred: tuple[str, ...]) -> list[str]:
    known = [item for item in preferred if item in items]
    return known + [item for item in items if item not in preferred]


def _average(values: list[float]) -> float:
    return sum(values) / len(values)


def _paper_avg(paper: dict[str, float], printed: float | None, tasks: list[str]) -> float | None:
    """The paper's AVG over the same tasks as ours: its printed AVG for all four, else recomputed."""
    if not tasks or any(task not in paper for task in tasks):
        return None
    if sorted(tasks) == sorted(PAPER_TASKS):
        return printed
    return _average([paper[task] for task in tasks])


def _paper_upstream(rows: list[dict]) -> tuple[str | None, list[str]]:
    """The paper's name for the table's upstream when every row agrees on it, else why not."""
    verdicts = {paper_upstream_of(row) for row in rows}
    if len(verdicts) > 1:
        return None, ["the rows of this upstream come from stores with different model headers"]
    name, why = verdicts.pop()
    return name, [why] if why else []


def _short_stores(stores: list[str | None]) -> list[str]:
    """The shortest trailing parts of the store paths that tell them apart."""
    parts = [PurePath(store).parts if store else ("no store",) for store in stores]
    depth = 1
    while True:
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(set(parts)) or depth >= max(map(len, parts)):
            return names
        depth += 1


def _task_columns(task: str, rows: list[dict]) -> dict[int, tuple[str, str | None]]:
    """``{id(row): (column, variant)}`` for the rows of one task. One column, the task, unless
    some method ran on several stores or with several settings: then one column per store, and
    within a store one per value of the settings in which some method's runs differ."""
    from vqpool.report.results import settings_of

    stores = list(dict.fromkeys(row.get("store") for row in rows))
    names = dict(zip(stores, _short_stores(stores), strict=True))
    differing: dict[str | None, list[str]] = {}
    for store in stores:
        runs: dict[str, list[dict]] = {}
        for row in rows:
            if row.get("store") == store:
                runs.setdefault(row["method"], []).append(settings_of(row))
        differing[store] = sorted({key for mine in runs.values() for one in mine for key in one
                                   if any(one.get(key) != other.get(key) for other in mine)})
    if len(stores) == 1 and not differing[stores[0]]:
        return {id(row): (task, None) for row in rows}
    placed = {}
    for row in rows:
        store, keys = row.get("store"), differing[row.get("store")]
        settings = settings_of(row)
        parts = [names[store]] if len(stores) > 1 else []
        parts += [f"{key}={_shown(settings.get(key))}" for key in keys]
        variant = ", ".join(parts)
        placed[id(row)] = (f"{task} · {variant}", variant)
    return placed


def _shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _columns(rows: list[dict]) -> tuple[list[str], dict[str, str], dict[str, str], dict[int, str]]:
    """Columns in the paper's task order; ``{column: task}``, ``{column: variant}`` (only for
    tasks with several columns) and ``{id(row): column}``."""
    columns: list[str] = []
    task_of: dict[str, str] = {}
    variant_of: dict[str, str] = {}
    column_of: dict[int, str] = {}
    for task in _order(sorted({row["task"] for row in rows}), PAPER_TASKS):
        mine = [row for row in rows if row["task"] == task]
        for row_id, (column, variant) in _task_columns(task, mine).items():
            column_of[row_id] = column
            if column not in task_of:
                columns.append(column)
                task_of[column] = task
                if variant is not None:
                    variant_of[column] = variant
    return columns, task_of, variant_of, column_of


def _ci95(row: dict) -> tuple[float, float] | None:
    value = row.get("ci95")
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]), float(value[1])
    return None  # rows written before vqpool kept an interval


def build_table(protocol: str, upstream: str, rows: list[dict], codes: str | None = None) -> Table:
    paper_upstream, no_paper = _paper_upstream(rows)
    columns, task_of, variant_of, column_of = _columns(rows)
    methods = _order(list(dict.fromkeys(row["method"] for row in rows)), method_order(protocol))
    cells: dict[tuple[str, str], Cell] = {}
    avg_tasks: dict[str, list[str]] = {}
    for method in methods:
        paper = paper_figures(protocol, paper_upstream, method)
        comparable: dict[str, float] = {}  # the paper's figures for the tasks we may compare
        for row in rows:
            if row["method"] != method:
                continue
            mismatch = paper_task_mismatch(row["task"], row.get("corpus"))
            if paper and mismatch is not None and mismatch not in no_paper:
                no_paper.append(mismatch)
            if mismatch is None and row["task"] in paper:
                comparable[row["task"]] = paper[row["task"]]
            cells[method, column_of[id(row)]] = Cell(
                row["accuracy"], row.get("std"), comparable.get(row["task"]), _ci95(row)
            )
        avg_tasks[method] = [column for column in columns if (method, column) in cells]
        ours = _average([cells[method, column].ours for column in avg_tasks[method]])
        paper_avg = _paper_avg(comparable, paper.get(AVG), avg_tasks[method])
        cells[method, AVG] = Cell(ours, None, paper_avg)
    column_rows = {c: [row for row in rows if column_of[id(row)] == c] for c in columns}
    return Table(
        protocol, upstream, paper_upstream, columns, methods, cells, avg_tasks, rows, no_paper,
        codes, task_of, variant_of, column_rows,
    )


def build_tables(rows: list[dict]) -> list[Table]:
    """One table per (protocol, upstream, code source): known protocols first, upstreams in the
    order read."""
    groups: dict[tuple[str, str, str | None], list[dict]] = {}
    for row in rows:  # the schema allows a null upstream (a store header that named none)
        key = (row["protocol"], row["upstream"] or "unknown upstream", codes_label(row))
        groups.setdefault(key, []).append(row)
    protocols = _order(
        list(dict.fromkeys(protocol for protocol, _, _ in groups)), tuple(PROTOCOL_TITLES)
    )
    return [
        build_table(protocol, upstream, group, codes)
        for protocol in protocols
        for (p, upstream, codes), group in groups.items()
        if p == protocol
    ]


# ---- rendering ------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.2f}"


def _signed(value: float) -> str:
    return f"{value:+.2f}"


def cell_value(cell: Cell, bold: bool = False) -> str:
    """``"95.00 ± 1.79"``: ours, ± the std over seeds or else half the 95% interval."""
    text = _number(cell.ours)
    if bold:
        text = f"**{text}**"
    if cell.std is not None:
        text += f" ± {_number(cell.std)}"
    elif cell.ci95 is not None:  # half the interval; the interval itself is in the CSV
        text += f" ± {_number((cell.ci95[1] - cell.ci95[0]) / 2)}"
    return text


def _cell_text(table: Table, method: str, column: str, bold: bool) -> str:
    cell = table.cells.get((method, column))
    if cell is None:
        return "-"
    text = cell_value(cell, bold)
    if column == AVG and len(table.avg_tasks[method]) < len(table.tasks):
        text += " †"
    if table.has_paper:
        text += " / -" if cell.paper is None else f" / {_number(cell.paper)} ({_signed(cell.diff)})"
    return text


def column_label(table: Table, column: str) -> str:
    if column != AVG:
        variant = table.column_variant.get(column)
        task = task_label(table.task_of(column))
        return f"{task} · {variant}" if variant else task
    return "AVG" if table.avg_is_paper_avg else "AVG*"


def _header(table: Table) -> list[str]:
    return ["Method", *(column_label(table, column) for column in table.columns())]


def _grid(table: Table, *, markdown: bool) -> list[list[str]]:
    best = {column: table.best(column) for column in table.columns()} if markdown else {}
    return [
        [method_label(method)]
        + [
            _cell_text(table, method, column, method in best.get(column, ()))
            for column in table.columns()
        ]
        for method in table.methods
    ]


def table_notes(table: Table) -> list[str]:
    """What the marks in a table mean; shared by the Markdown and the terminal renderings."""
    notes = []
    if table.has_paper:
        notes.append("Cells: ours / paper (ours - paper), accuracy in %.")
    else:
        notes.append("Accuracy in %.")
    notes += _error_notes(table)
    if table.has_variants:
        notes.append(
            "A task with several columns ran on several stores or settings: each column is one, "
            "named after the task by its store and the settings that differ."
        )
    if AVG in table.columns() and not table.avg_is_paper_avg:
        tasks = ", ".join(map(task_label, table.tasks))
        notes.append(
            f"AVG* is the mean over {len(table.tasks)} task(s) ({tasks}), not the paper's four."
        )
    if AVG in table.columns() and any(
        len(tasks) < len(table.tasks) for tasks in table.avg_tasks.values()
    ):
        notes.append(
            "† mean over only the tasks this method has results for (not in the best-AVG contest)."
        )
    if table.no_paper:
        where = "Paper figures left out" if table.has_paper else "No paper figures"
        notes.append(f"{where}: {'; '.join(table.no_paper)}.")
    notes += [
        f"Note: {CAVEATS[key]}"
        for method in table.methods
        if table.has_paper and (key := (table.protocol, table.paper_upstream, method)) in CAVEATS
    ]
    return notes


def _error_notes(table: Table) -> list[str]:
    """What ± means in this table: the std over seeds, half a 95% bootstrap interval, or both."""
    cells = [table.cells[key] for key in table.cells if key[1] != AVG]
    std = sorted({m for (m, c), cell in table.cells.items() if c != AVG and cell.std is not None},
                 key=table.methods.index)
    ci = any(cell.std is None and cell.ci95 is not None for cell in cells)
    ci_text = ("half the 95% bootstrap interval over test utterances (tables.csv holds the "
               "interval)")
    if std and ci:
        return [f"± is the standard deviation over seeds for {', '.join(map(method_label, std))}; "
                f"for the others, {ci_text}."]
    if std:
        return ["± is the standard deviation over seeds."]
    if ci:
        return [f"± is {ci_text}."]
    return []


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table, best per column in bold, with its notes."""
    lines = markdown_grid(_header(table), _grid(table, markdown=True))
    # Two trailing spaces: a Markdown line break, so each note stays on its own line.
    return "\n".join(lines) + "\n\n" + "  \n".join(table_notes(table))


def aligned(grid: list[list[str]], left: int = 1) -> list[str]:
    """A header row and rows as aligned lines, the first ``left`` columns to the left and the
    rest (numbers) to the right, with a rule under the header."""
    widths = [max(len(row[i]) for row in grid) for i in range(len(grid[0]))]
    lines = [
        "  ".join(
            text.ljust(width) if i < left else text.rjust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in grid
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def markdown_grid(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """A GitHub-flavoured Markdown table: the first ``left`` columns text, the rest numbers."""
    lines = [
        "| " + " | ".join(map(_escape, header)) + " |",
        "| " + " | ".join(["---"] * left + ["---:"] * (len(header) - left)) + " |",
    ]
    return lines + ["| " + " | ".join(map(_escape, row)) + " |" for row in rows]


def to_text(table: Table) -> str:
    """A plain, aligned table for the terminal."""
    lines = aligned([_header(table), *_grid(table, markdown=False)])
    return "\n".join([table.title, *lines, *table_notes(table)])


def long_rows(tables: list[Table]) -> list[dict]:
    """tables.csv's rows: one per (protocol, upstream, codes, column, method), full precision; a
    column of several stores names its ``variant`` and every task column its ``store``."""
    return [
        {
            "protocol": table.protocol,
            "upstream": table.upstream,
            "codes": table.codes,
            "task": table.task_of(column),
            "variant": table.column_variant.get(column),
            "method": method,
            "ours": cell.ours,
            "std": cell.std,
            "ci95_low": cell.ci95[0] if cell.ci95 else None,
            "ci95_high": cell.ci95[1] if cell.ci95 else None,
            "paper": cell.paper,
            "store": _store_of(table, column),
        }
        for table in tables
        for method in table.methods
        for column in table.columns()
        if (cell := table.cells.get((method, column))) is not None
    ]


def _store_of(table: Table, column: str) -> str | None:
    stores = {row.get("store") for row in table.column_rows.get(column, [])}
    return stores.pop() if len(stores) == 1 else None
