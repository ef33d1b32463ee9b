"""Merging results files: one row per measurement, the newest run of it wins.

A measurement is a (protocol, upstream, code source, task, method) on one store with one set of
settings. Benchmarks append, so a re-run of the same store and settings leaves the old row in the file:
the row with the newest ``timestamp`` wins (on equal timestamps, the one read last) and the
report says how many rows were superseded. Rows of other stores (two codebooks, two corpora of
one task) or other settings (``semantics``, ``epochs``, ...) are other measurements: they are all
kept, and the tables show them side by side with the store (or the settings) named. Lines that
are not result rows (a write cut short, a wrong file) are skipped and listed, so the caller can
say so in one line each; a file without a single row is an error. Reading and checking rows is
the evaluation's own (``vqpool.evaluate.results.read_rows``).
"""

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vqpool.errors import VqpoolError
from vqpool.evaluate.results import Skipped, codes_label, parse_timestamp, read_rows

# Settings that say where a run happened or what it found, not what it measured.
NOT_SETTINGS = ("device", "best_epochs")


@dataclass
class Results:
    rows: list[dict]  # the winning rows, in the order first read
    sources: list[Path]
    read: int  # rows read in all files
    superseded: list[dict] = field(default_factory=list)  # older duplicates that lost
    skipped: list[Skipped] = field(default_factory=list)  # lines that are not result rows


def settings_of(row: dict) -> dict[str, Any]:
    """The settings that make a measurement (``NOT_SETTINGS`` left out)."""
    return {k: v for k, v in (row.get("settings") or {}).items() if k not in NOT_SETTINGS}


def run_of(row: dict) -> tuple[str | None, str]:
    """The store and settings of a row, as a hashable key: what a re-run must repeat."""
    return row.get("store"), json.dumps(settings_of(row), sort_keys=True, default=str)


def measurement(row: dict) -> tuple:
    """What a newer row must share with an older one to supersede it."""
    return (row["protocol"], row["upstream"], codes_label(row), row["task"], row["method"],
            *run_of(row))


def skipped_lines(skipped: list[Skipped], limit: int = 5) -> list[str]:
    """One line per skipped line, at most ``limit`` per file, then a count of the rest."""
    lines: list[str] = []
    for path in dict.fromkeys(entry.path for entry in skipped):
        mine = [entry for entry in skipped if entry.path == path]
        lines += map(str, mine[:limit])
        if len(mine) > limit:
            lines.append(f"skipped {len(mine) - limit} more line(s) of {path}")
    return lines


def _check_not_a_report(path: Path) -> None:
    """A report's own results.json is a JSON array, not the JSON lines bench and probe append."""
    try:
        with path.open("rb") as file:
            start = file.read(64).lstrip()
    except OSError:
        return  # read_rows reports what is wrong with it
    if start.startswith(b"["):
        raise VqpoolError(
            f"{path}: a JSON array (a report's own results.json?), not a results file. A report "
            "reads the JSON-lines files that bench and probe append to: STORE/results.jsonl, or "
            "the file they were given as results"
        )


def load_results(paths: list[str | os.PathLike]) -> Results:
    """Read every file; keep the newest row of each measurement (`measurement`): stores of one
    upstream with codes from elsewhere, like any other store, are other results."""
    if not paths:
        raise VqpoolError("no results files given")
    newest: dict[tuple, tuple[datetime, dict]] = {}
    superseded: list[dict] = []
    skipped: list[Skipped] = []
    read = 0
    for path in paths:
        _check_not_a_report(Path(path))
        rows, lost = read_rows(path)
        skipped += lost
        for row in rows:
            read += 1
            stamp = parse_timestamp(row)
            key = measurement(row)
            if key in newest and newest[key][0] > stamp:
                superseded.append(row)
                continue
            if key in newest:
                superseded.append(newest[key][1])
            newest[key] = (stamp, row)
    winners = [row for _, row in newest.values()]
    return Results(winners, [Path(p) for p in paths], read, superseded, skipped)
