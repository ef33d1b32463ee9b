"""The manifest: a CSV with one utterance per row, the only thing extraction reads.

Columns ``id,path,label,split,speaker`` (only ``path`` is required; IEMOCAP adds ``session``;
any extra column is kept). A relative ``path`` is relative to the manifest's own folder, so a
manifest and its audio can move together; paths outside that folder are written absolute.
"""

import codecs
import csv
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from vqpool.errors import VqpoolError
from vqpool.io import atomic_path
from vqpool.rows import SPLITS, canonical_path

MANIFEST_COLUMNS = ("id", "path", "label", "split", "speaker")


def read_manifest(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read and validate a manifest; ``path`` values come back absolute.

    The manifest is UTF-8 text, with or without the byte-order mark spreadsheets write. A
    missing ``id`` column (or empty id) defaults to the audio path relative to the manifest's
    folder, without its suffix. Values are stripped of surrounding spaces, but for ``path``:
    spaces may be part of a file's name.
    """
    manifest = Path(path)
    if not manifest.is_file():
        raise VqpoolError(f"{manifest}: manifest not found")
    base = manifest.resolve().parent
    with io.StringIO(_text(manifest), newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise VqpoolError(f"{manifest}: a manifest needs a 'path' column (found {reader.fieldnames})")
        rows = []
        seen: dict[str, int] = {}
        for line, row in enumerate(reader, start=2):
            if None in row:
                raise VqpoolError(f"{manifest}:{line}: more fields than the header has")
            row = {key: (value or "") if key == "path" else (value or "").strip() for key, value in row.items()}
            if not row["path"]:
                raise VqpoolError(f"{manifest}:{line}: empty 'path'")
            audio = Path(row["path"])
            absolute = audio if audio.is_absolute() else base / audio
            if not row.get("id"):
                row["id"] = str(audio.with_suffix("")) if not audio.is_absolute() else audio.stem
            if row["id"] in seen:
                raise VqpoolError(
                    f"{manifest}:{line}: duplicate id {row['id']!r} (first on line {seen[row['id']]})"
                )
            seen[row["id"]] = line
            split = row.get("split", "")
            if split and split not in SPLITS:
                raise VqpoolError(
                    f"{manifest}:{line}: split {split!r} is not one of {', '.join(SPLITS)}"
                )
            row["path"] = str(absolute)
            rows.append(row)
    if not rows:
        raise VqpoolError(f"{manifest}: the manifest has no rows")
    return rows


def _text(manifest: Path) -> str:
    """The manifest's text: UTF-8, a leading byte-order mark dropped (Excel's "CSV UTF-8")."""
    data = manifest.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise VqpoolError(
            f"{manifest}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the "
            "manifest as UTF-8 (in Excel: CSV UTF-8)"
        ) from None


def write_manifest(rows: Iterable[Mapping[str, str]], path: str | os.PathLike) -> Path:
    """Write ``rows`` atomically; paths under the manifest's folder are stored relative to it."""
    manifest = Path(path)
    base = manifest.resolve().parent
    rows = list(rows)
    extra = sorted({key for row in rows for key in row} - set(MANIFEST_COLUMNS))
    with atomic_path(manifest) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*MANIFEST_COLUMNS, *extra], restval="")
        writer.writeheader()
        for row in rows:
            audio = Path(canonical_path(row["path"]))
            stored = audio.relative_to(base) if audio.is_relative_to(base) else audio
            writer.writerow({**row, "path": str(stored)})
    return manifest
