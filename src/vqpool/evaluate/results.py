"""The results file: JSON lines, one row per (protocol, upstream, task, method), appended.

Rows are appended, never rewritten, so a benchmark interrupted half-way keeps the rows it
finished. Each row goes out in one ``write`` on an ``O_APPEND`` descriptor, then fsync: a crash
leaves at most one truncated last line, which the reader reports instead of skipping silently.
"""

import json
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vqpool._version import versions
from vqpool.code_labels import own_codes_label
from vqpool.errors import ParameterError, VqpoolError
from vqpool.paper import paper_upstream

if TYPE_CHECKING:  # not imported at run time: reading results needs no torch
    from vqpool.store import Store, StoreHeader

PROTOCOLS = ("1nn", "probe")

# key -> accepted types (None stands for JSON null); the contract R reads (team notes).
SCHEMA: dict[str, tuple[type | None, ...]] = {
    "protocol": (str,),
    "method": (str,),
    "task": (str,),
    "corpus": (str, None),
    "upstream": (str, None),
    "paper_upstream": (str, None),
    "accuracy": (float,),
    "std": (float, None),
    "per_fold": (list,),
    "per_seed": (list, None),
    "num_train": (int,),
    "num_test": (int,),
    "settings": (dict,),
    "store": (str, None),
    "store_header": (dict,),  # header_summary() of the store header (older rows: all of it)
    "versions": (dict,),
    "seconds": (float,),
    "timestamp": (str,),
}


def validate_row(row: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first key that is missing or of the wrong type."""
    for key, types in SCHEMA.items():
        if key not in row:
            raise ValueError(f"result row lacks {key!r}")
        value = row[key]
        accepted = tuple(t for t in types if t is not None)
        if value is None and None in types:
            continue
        # bool is an int subclass; a True accuracy is a bug, not a number.
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise ValueError(f"result row: {key!r} is {value!r}, expected {types}")
    if row["protocol"] not in PROTOCOLS:
        raise ValueError(f"result row: protocol {row['protocol']!r} not in {PROTOCOLS}")


def append_result(path: str | os.PathLike, row: Mapping[str, Any]) -> None:
    """Append one validated row as one line (single write, flush, fsync)."""
    validate_row(row)
    line = json.dumps(row, allow_nan=False) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if _ends_without_newline(fd):
            # An earlier writer died mid-line: start ours on a fresh line so it stays readable.
            line = "\n" + line
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _ends_without_newline(fd: int) -> bool:
    if os.fstat(fd).st_size == 0:
        return False
    os.lseek(fd, -1, os.SEEK_END)  # O_APPEND writes still go to the end
    return os.read(fd, 1) != b"\n"


@dataclass(frozen=True)
class Skipped:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"skipped line {self.line} of {self.path}: {self.reason}"


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


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every row of a results file; each line that is not a row (an interrupted append, a row
    that misses the schema) is left out with a warning naming it. No row at all is an error."""
    rows, skipped = read_rows(path)
    for entry in skipped:
        warnings.warn(str(entry), stacklevel=2)
    return rows


# What a row keeps of its store's header (its "store_header"): a summary of the upstream, what
# the report reads (dim and num_layers decide paper comparisons) and what tells stores apart.
SUMMARY_KEYS = ("kind", "layers", "num_layers", "dim", "frame_rate", "codes", "num_codebooks",
                "codebook_size", "codebook")


def header_summary(header: "StoreHeader | Mapping[str, Any]") -> dict[str, Any]:
    """``{"upstream": spec, **SUMMARY_KEYS}`` (``codebook``: its file, or None) of a store header.

    Takes a ``StoreHeader`` or a header in JSON form of any age, and so also reads the
    ``store_header`` of result rows: a summary made here, or the whole store header that rows
    written before the summary carried (its ``upstream`` the full description). What a form
    does not hold is None.
    """
    data = header if isinstance(header, Mapping) else header.to_json()
    upstream = data.get("upstream", data.get("spec"))
    described = upstream if isinstance(upstream, Mapping) else {}
    spec = described.get("spec") if isinstance(upstream, Mapping) else upstream
    summary = {"upstream": None if spec is None else str(spec)}
    summary.update((key, described.get(key, data.get(key))) for key in SUMMARY_KEYS)
    if isinstance(summary["codebook"], Mapping):
        summary["codebook"] = summary["codebook"].get("path")
    # Codes from elsewhere (`vqpool extract --codes-from`): their label ("encodec_24khz x8"),
    # a key only such stores' rows have.
    source = described.get("code_source", data.get("code_source"))
    if source is not None:
        summary["code_source"] = str(source.get("label") if isinstance(source, Mapping) else source)
    return summary


def codes_label(row: Mapping[str, Any]) -> str | None:
    """The codes a result row's store pooled with: codes from elsewhere by their source's label
    (``"encodec_24khz x8"``, ``"kmeans(logmel) x2"``), the upstream's own by the same rule
    (``"kmeans(ge2e) x2"`` for its codebook, ``"quantizer x2"``); None for a store without codes."""
    summary = header_summary(row.get("store_header") or {})
    if "code_source" in summary:
        return summary["code_source"]
    return own_codes_label(summary["upstream"], summary["codes"], summary["num_codebooks"])


def frames_label(upstream: str | None, layers: str | None) -> str:
    """``"facebook/wav2vec2-base mean"``: the frames' upstream and layers."""
    return f"{upstream} {layers or ''}".rstrip()


def sources_title(upstream: str | None, layers: str | None, codes: str | None) -> str:
    """``"upstream X"``, or with codes ``"frames: X mean; codes: encodec_24khz x8"``."""
    if codes is None:
        return f"upstream {upstream}"
    return f"frames: {frames_label(upstream, layers)}; codes: {codes}"


def upstream_of(header: "StoreHeader | Mapping[str, Any]") -> tuple[str | None, str | None]:
    """``(spec, paper_upstream)`` from a store header, whichever way the upstream is recorded.

    ``paper_upstream`` follows the report's rule (a paper hub id, or a local copy whose header
    shows the paper model's size), so a row never claims a comparison the report would refuse.
    """
    summary = header_summary(header)
    if summary["upstream"] is None:
        return None, None
    paper, _ = paper_upstream(summary["upstream"], dim=summary["dim"], num_layers=summary["num_layers"])
    return summary["upstream"], paper




def make_row(
    *,
    protocol: str,
    method: str,
    task: str,
    header: "StoreHeader | Mapping[str, Any]",
    store: str | None,
    per_fold: list[float],
    per_seed: list[float] | None,
    num_train: int,
    num_test: int,
    settings: Mapping[str, Any],
    seconds: float,
    **extra: Any,
) -> dict[str, Any]:
    """A schema row; ``accuracy`` is the mean of the folds, ``std`` the spread over seeds.

    ``header`` is the store's (a ``StoreHeader``, or any JSON form ``header_summary`` reads);
    the row keeps its corpus and its summary."""
    spec, paper = upstream_of(header)
    row: dict[str, Any] = {
        "protocol": protocol,
        "method": method,
        "task": task,
        "corpus": (header if isinstance(header, Mapping) else header.to_json()).get("corpus"),
        "upstream": spec,
        "paper_upstream": paper,
        "accuracy": float(sum(per_fold) / len(per_fold)),
        "std": _std(per_seed) if per_seed is not None and len(per_seed) > 1 else None,
        "per_fold": [float(x) for x in per_fold],
        "per_seed": [float(x) for x in per_seed] if per_seed is not None else None,
        "num_train": int(num_train),
        "num_test": int(num_test),
        "settings": dict(settings),
        "store": store,
        "store_header": header_summary(header),
        "versions": versions(),
        "seconds": float(seconds),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    return row


def _std(values: list[float]) -> float:
    """Sample standard deviation (n - 1); one seed has none, so its row says null."""
    mean = sum(values) / len(values)
    return float((sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5)


def format_table(rows: list[Mapping[str, Any]]) -> str:
    """Methods as rows, accuracy in percent (± std over seeds, folds when there are several)."""
    if not rows:
        return "(no results)"
    folds = max(len(row["per_fold"]) for row in rows)
    header = ["method", "accuracy"]
    header += [f"fold {k}" for k in range(1, folds + 1)] if folds > 1 else []
    header += ["seconds"]
    lines = []
    for row in rows:
        accuracy = f"{row['accuracy']:.2f}"
        if row["std"] is not None:
            accuracy += f" ± {row['std']:.2f}"
        per_fold = [f"{x:.2f}" for x in row["per_fold"]] if folds > 1 else []
        lines.append([row["method"], accuracy, *per_fold, f"{row['seconds']:.1f}"])
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    first = rows[0]
    shown = header_summary(first.get("store_header") or {})
    sources = sources_title(first["upstream"], shown.get("layers"), codes_label(first))
    title = f"{first['protocol']} · task {first['task']} · {sources}"
    table = [" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in [header, *lines]]
    table.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join([title, *table])


def write_rows(store: "Store", rows: list[dict[str, Any]], results: str | Path | None) -> None:
    """Append result rows to ``results``, by default ``results.jsonl`` in the store's folder."""
    if results is None:
        from vqpool.store import store_path  # here: reading results imports no torch

        folder = store_path(store)
        if folder is None:
            raise ParameterError("results", "must name a file: the store has no folder to hold results.jsonl")
        results = folder / "results.jsonl"
    for row in rows:
        append_result(results, row)
