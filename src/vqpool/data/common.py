"""What the recipes share: checking a layout, naming what is wrong, and seeded splits."""

import logging
import math
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from vqpool.errors import VqpoolError

# Formats soundfile reads without extra parameters; anything else in a corpus folder is reported.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")

Row = dict[str, str]

log = logging.getLogger(__name__)


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise VqpoolError(f"{path}: missing {what}")
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise VqpoolError(f"{path}: missing {what}")
    return path


def note(corpus: str, message: str) -> None:
    """Log (INFO) what a recipe left out, so that nothing is dropped silently; the command
    line shows it on stderr."""
    log.info("%s: %s", corpus, message)


def visible(folder: Path) -> list[Path]:
    """Entries of ``folder`` in name order, without hidden ones (``.DS_Store``, ``._*`` forks)."""
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def walk_files(folder: Path) -> Iterator[Path]:
    """Every visible file under ``folder``, in a stable order."""
    for parent, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(parent, name)


def report_ignored(corpus: str, files: list[Path], why: str) -> None:
    if files:
        shown = ", ".join(str(path) for path in files[:3])
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        plural = "s" if len(files) > 1 else ""
        note(corpus, f"ignored {len(files)} file{plural} ({why}): {shown}{more}")


def report_dropped(corpus: str, labels: Iterable[str], why: str) -> None:
    counts = Counter(labels)
    if counts:
        listed = ", ".join(f"{label} {count}" for label, count in sorted(counts.items()))
        note(corpus, f"dropped {sum(counts.values())} utterances {why} ({listed})")


def draw_splits(rows: list[Row], seed: int, held_out: float = 0.1) -> None:
    """Give ``rows`` a seeded split, per label: ``held_out`` each to test and validation.

    Per label, so that every split sees every class; rounded, so a label with fewer than five
    utterances stays in train.
    """
    rng = random.Random(seed)
    by_label: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda row: row["id"]):
        by_label.setdefault(row["label"], []).append(row)
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        count = math.floor(len(group) * held_out + 0.5)  # half up, unlike round()
        for position, row in enumerate(group):
            row["split"] = (
                "test" if position < count else "validation" if position < 2 * count else "train"
            )
