"""Fluent Speech Commands intent classification: 31 intents, the official CSV splits.

Root layout (the extracted ``fluent_speech_commands_dataset``)::

    ROOT/data/train_data.csv   columns include path, speakerId, transcription, action, object, location
    ROOT/data/valid_data.csv
    ROOT/data/test_data.csv
    ROOT/wavs/speakers/<speakerId>/<uuid>.wav   (``path`` is relative to ROOT)

Label = the intent ``action|object|location``; speaker = ``speakerId``.
"""

import csv
from pathlib import Path

from vqpool.data.common import Row, require_dir, require_file
from vqpool.errors import VqpoolError

SPLIT_FILES = {"train": "train_data.csv", "validation": "valid_data.csv", "test": "test_data.csv"}
COLUMNS = ("path", "speakerId", "action", "object", "location")


def prepare(root: Path) -> list[Row]:
    require_dir(root, "Fluent Speech Commands root folder")
    tables = {
        split: require_file(root / "data" / name, "split table")
        for split, name in SPLIT_FILES.items()
    }
    rows, seen = [], {}
    for split, table in tables.items():
        with open(table, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in COLUMNS if column not in (reader.fieldnames or ())]
            if missing:
                raise VqpoolError(f"{table}: missing column(s) {', '.join(missing)}")
            for line, record in enumerate(reader, start=2):
                where = f"{table}:{line}"
                if any(not record[column] for column in COLUMNS):
                    raise VqpoolError(
                        f"{where}: empty {', '.join(c for c in COLUMNS if not record[c])}"
                    )
                if record["path"] in seen:
                    raise VqpoolError(
                        f"{where}: {record['path']} is also on {seen[record['path']]}"
                    )
                seen[record["path"]] = where
                path = root / record["path"]
                if not path.is_file():
                    raise VqpoolError(f"{path}: missing (listed in {where})")
                rows.append(
                    {
                        "id": str(Path(record["path"]).with_suffix("")),
                        "path": str(path),
                        "label": "|".join(record[key] for key in ("action", "object", "location")),
                        "split": split,
                        "speaker": record["speakerId"],
                    }
                )
    return rows
