"""Merging results files: one row per (protocol, upstream, code source, task, method), the newest run wins.

Benchmarks append, so a re-run leaves the old row in the file. The row with the newest
``timestamp`` wins (on equal timestamps, the one read last) and the report says how many rows
were superseded. Lines that are not result rows (a write cut short, a wrong file) are skipped and
listed, so the caller can say so in one line each; a file without a single row is an error.
Reading and checking rows is the evaluation's own (``vqpool.evaluate.results.read_rows``).
"""

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vqpool.errors import VqpoolError
from vqpool.evaluate.results import Skipped, codes_label, parse_timestamp, read_rows


@dataclass
class Results:
    rows: list[dict]  # the winning rows, in the order first read
    sources: list[Path]
    read: int  # rows read in all files
    superseded: list[dict] = field(default_factory=list)  # older duplicates that lost
    skipped: list[Skipped] = field(default_factory=list)  # lines that are not result rows


def skipped_lines(skipped: list[Skipped], limit: int = 5) -> list[str]:
    """One line per skipped line, at most ``limit`` per file, then a count of the rest."""
    lines: list[str] = []
    for path in dict.fromkeys(entry.path for entry in skipped):
        mine = [entry for entry in skipped if entry.path == path]
        lines += map(str, mine[:limit])
        if len(mine) > limit:
            lines.append(f"skipped {len(mine) - limit} more line(s) of {path}")
    return lines


def load_results(paths: list[str | os.PathLike]) -> Results:
    """Read every file; keep the newest row for each (protocol, upstream, code source, task,
    method): stores of one upstream with codes from elsewhere are other results."""
    if not paths:
        raise VqpoolError("no results files given")
    newest: dict[tuple, tuple[datetime, dict]] = {}
    superseded: list[dict] = []
    skipped: list[Skipped] = []
    read = 0
    for path in paths:
        rows, lost = read_rows(path)
        skipped += lost
        for row in rows:
            read += 1
            stamp = parse_timestamp(row)
            key = (row["protocol"], row["upstream"], codes_label(row), row["task"], row["method"])
            if key in newest and newest[key][0] > stamp:
                superseded.append(row)
                continue
            if key in newest:
                superseded.append(newest[key][1])
            newest[key] = (stamp, row)
    winners = [row for _, row in newest.values()]
    return Results(winners, [Path(p) for p in paths], read, superseded, skipped)
