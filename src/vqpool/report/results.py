"""Merging results files: one row per (protocol, upstream, task, method), the newest run wins.

Benchmarks append, so a re-run leaves the old row in the file. The row with the newest
``timestamp`` wins (on equal timestamps, the one read last) and the report says how many rows
were superseded. Reading and schema checks are the evaluation's own (``read_results``).
"""

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vqpool.errors import VqpoolError
from vqpool.evaluate.results import read_results


@dataclass
class Results:
    rows: list[dict]  # the winning rows, in the order first read
    sources: list[Path]
    read: int  # rows read in all files
    superseded: list[dict] = field(default_factory=list)  # older duplicates that lost


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


def load_results(paths: list[str | os.PathLike]) -> Results:
    """Read every file; keep the newest row for each (protocol, upstream, task, method)."""
    if not paths:
        raise VqpoolError("no results files given")
    newest: dict[tuple, tuple[datetime, dict]] = {}
    superseded: list[dict] = []
    read = 0
    for path in paths:
        for row in read_results(path):
            read += 1
            stamp = parse_timestamp(row)
            key = (row["protocol"], row["upstream"], row["task"], row["method"])
            if key in newest and newest[key][0] > stamp:
                superseded.append(row)
                continue
            if key in newest:
                superseded.append(newest[key][1])
            newest[key] = (stamp, row)
    if not newest:
        raise VqpoolError(f"no results in {', '.join(map(str, paths))}")
    return Results([row for _, row in newest.values()], [Path(p) for p in paths], read, superseded)
