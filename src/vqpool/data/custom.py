"""The user's own manifest (corpus name ``csv``): a CSV file, validated.

Root: the CSV file itself, with columns ``path`` and ``label`` (required), ``id``, ``split``,
``speaker`` and any others (kept). Relative paths are relative to the CSV's folder. Every audio
file must exist. Without a ``split`` on any row, a seeded split is drawn per label (10% test,
10% validation); a split on some rows only is an error.
"""

from pathlib import Path

from vqpool.data.common import Row, draw_splits, require_file
from vqpool.errors import VqpoolError
from vqpool.manifest import MANIFEST_COLUMNS, read_manifest


def prepare(root: Path, *, seed: int = 0) -> list[Row]:
    rows = checked(require_file(root, "manifest CSV"))
    splits = [row.get("split", "") for row in rows]
    if not any(splits):
        draw_splits(rows, seed)
    elif not all(splits):
        line = splits.index("") + 2
        raise VqpoolError(
            f"{root}:{line}: empty split (give every row a split, or none to draw them)"
        )
    return rows


def checked(manifest: Path) -> list[Row]:
    """The manifest's rows, each with a label, an existing audio file and every manifest column."""
    rows = read_manifest(manifest)
    for line, row in enumerate(rows, start=2):
        for column in MANIFEST_COLUMNS:
            row.setdefault(column, "")
        if not row.get("label"):
            raise VqpoolError(f"{manifest}:{line}: empty or missing 'label'")
        if not Path(row["path"]).is_file():
            raise VqpoolError(f"{row['path']}: missing (listed in {manifest}:{line})")
    return rows
