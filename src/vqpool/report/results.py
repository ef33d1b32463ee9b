"""Merging results files: one row per (protocol, upstream, task, method), the newest run wins.

Benchmarks append, so a re-run leaves the old row in the file. The row with the newest
``timestamp`` wins (on equal timestamps, the one read last) and the report says how many rows
were superseded. Lines that are not result rows (a write cut short, a wrong file) are skipped and
listed, so the caller can say so in one line each; a file without a single row is an error.
The schema check is the evaluation's own (``validate_row``).
"""

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vqpool.errors import VqpoolError
from vqpool.evaluate.results import validate_row


@dataclass(frozen=True)
class Skipped:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"skipped line {self.line} of {self.path}: {self.reason}"


@dataclass
class Results:
    rows: list[dict]  # the winning rows, in the order first read
    sources: list[Path]
    read: int  # rows read in all files
    superseded: list[dict] = field(default_factory=list)  # older duplicates that lost
    skipped: list[Skipped] = field(default_factory=list)  # lines that are not result rows


def parse_timestamp(row: dict) -> datetime:
    try:  # Python 3.10's fromisoformat does not read a "Z" suffix
        stamp = datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", row["timestamp"]))
    except ValueError as error:
        where = "/".join(str(row[key]) for key in ("protocol", "upstream", "task", "method"))
        raise VqpoolError(
            f"result {where}: timestamp {row['timestamp']!r} is not ISO-8601"
        ) from error
    # Naive stamps are taken as UTC so they compare with aware ones.
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _parse(line: bytes) -> dict | str:
    """The result row on a line, or why the line is not one."""
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except json.JSONDecodeError:
        return "not JSON (a write cut short?)"
    if not isinstance(row, dict):
        return f"not a result row (a JSON {type(row).__name__})"
    try:
        validate_row(row)
        parse_timestamp(row)
    except (ValueError, VqpoolError) as error:
        return str(error)
    return row


def read_rows(path: str | os.PathLike) -> tuple[list[dict], list[Skipped]]:
    """The result rows of one file and the lines skipped; an error when there is no row at all."""
    path = Path(path)
    if not path.is_file():
        raise VqpoolError(f"{path}: no such results file")
    rows, skipped = [], []
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if line.strip():
                parsed = _parse(line)
                if isinstance(parsed, dict):
                    rows.append(parsed)
                else:
                    skipped.append(Skipped(path, number, parsed))
    if not rows:
        why = f"line {skipped[0].line}: {skipped[0].reason}" if skipped else "the file is empty"
        more = f" and {len(skipped) - 1} more line(s)" if len(skipped) > 1 else ""
        raise VqpoolError(f"{path}: no result rows in it ({why}{more})")
    return rows, skipped


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
    """Read every file; keep the newest row for each (protocol, upstream, task, method)."""
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
            key = (row["protocol"], row["upstream"], row["task"], row["method"])
            if key in newest and newest[key][0] > stamp:
                superseded.append(row)
                continue
            if key in newest:
                superseded.append(newest[key][1])
            newest[key] = (stamp, row)
    winners = [row for _, row in newest.values()]
    return Results(winners, [Path(p) for p in paths], read, superseded, skipped)
