"""What ``vqpool data`` leaves behind and prints: the manifest, its label map, the counts."""

import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from vqpool.data.folds import folds
from vqpool.io import atomic_write_text
from vqpool.manifest import SPLITS, write_manifest
from vqpool.rows import canonical_rows, row_warnings

log = logging.getLogger(__name__)

# Beyond this many labels (VoxCeleb1 has 1,251) the per-label table gives way to a range.
MAX_LABEL_ROWS = 40


def label_map(rows: Sequence[Mapping[str, str]]) -> dict[str, int]:
    """Sorted labels -> class index, so that indices do not depend on row order."""
    return {label: index for index, label in enumerate(sorted({row["label"] for row in rows}))}


def label_map_path(manifest: str | os.PathLike) -> Path:
    """``train.csv`` -> ``train.labels.json``, beside it."""
    manifest = Path(manifest)
    return manifest.with_name(f"{manifest.stem}.labels.json")


def write_prepared(rows: Sequence[Mapping[str, str]], manifest: str | os.PathLike) -> Path:
    """Write the manifest and its label map (both atomically); return the manifest's path.
    What about the rows' splits would skew a benchmark is logged as a warning."""
    written = write_manifest(rows, manifest)
    for warning in row_warnings(canonical_rows(rows), str(written)):
        log.warning("%s", warning)
    atomic_write_text(label_map_path(written), json.dumps(label_map(rows), indent=1) + "\n")
    return written


def summarize(rows: Sequence[Mapping[str, str]]) -> str:
    """Counts per split (utterances, labels, speakers) and per label, as a compact text table."""
    splits = [split for split in SPLITS if any(row["split"] == split for row in rows)]
    other = sorted({row["split"] for row in rows} - set(SPLITS))
    columns = [*splits, *other, "total"]

    def members(split: str) -> list[Mapping[str, str]]:
        return list(rows) if split == "total" else [row for row in rows if row["split"] == split]

    table = [["", *(column or "(none)" for column in columns)]]
    table.append(["utterances", *(str(len(members(c))) for c in columns)])
    table.append(["labels", *(str(len({r["label"] for r in members(c)})) for c in columns)])
    table.append(
        ["speakers", *(str(len({r["speaker"] for r in members(c)} - {""})) for c in columns)]
    )
    lines = _render(table)

    counts = Counter((row["label"], row["split"]) for row in rows)
    labels = sorted({row["label"] for row in rows})
    if len(labels) <= MAX_LABEL_ROWS:
        per_label = [["label", *(column or "(none)" for column in columns)]]
        for label in labels:
            cells = [counts[label, c] for c in columns[:-1]]
            per_label.append([label, *map(str, cells), str(sum(cells))])
        lines += ["", *_render(per_label)]
    else:
        sizes = Counter(row["label"] for row in rows).values()
        lines += ["", f"{len(labels)} labels, {min(sizes)} to {max(sizes)} utterances each"]

    fold_splits = folds(rows)
    if len(fold_splits) > 1:
        lines.append("")
        sessions = sorted({row["session"] for row in rows})
        for number, (names, session) in enumerate(zip(fold_splits, sessions, strict=True), start=1):
            sizes = Counter(names)
            lines.append(
                f"fold {number} (test {session}): "
                + ", ".join(f"{split} {sizes[split]}" for split in SPLITS)
            )
    return "\n".join(lines)


def _render(table: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    return [
        "  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                  for column, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in table
    ]  # fmt: skip
