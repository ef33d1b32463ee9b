"""IEMOCAP emotion recognition: four classes, five leave-one-session-out folds.

Root layout (``IEMOCAP_full_release``)::

    ROOT/Session1 ... ROOT/Session5
    ROOT/SessionN/dialog/EmoEvaluation/<dialog>.txt   lines such as
        [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
    ROOT/SessionN/sentences/wav/<dialog>/<utterance>.wav

neu, hap, ang and sad are kept with exc merged into hap; the other labels (fru, sur, fea, dis,
oth, xxx) are dropped and counted. Speaker = session + the speaker's gender (``Ses01F``), which
is the letter of the utterance's last name part, not of the dialog. ``session`` is the session
folder; the ``split`` column is fold 1's (test = Session1; ``vqpool.data.folds`` gives all five).
"""

import re
from pathlib import Path

from vqpool.data.common import Row, report_dropped, require_dir, visible
from vqpool.data.folds import folds
from vqpool.errors import VqpoolError

SESSIONS = tuple(f"Session{number}" for number in range(1, 6))
LABELS = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}
TURN = re.compile(
    r"\[(?P<start>\d+(\.\d+)?) - (?P<end>\d+(\.\d+)?)\]\t(?P<name>\S+)\t(?P<label>\w+)\t\["
)
NAME = re.compile(r"(?P<session>Ses\d\d)[FM]_.+_(?P<gender>[FM])\d+")


def prepare(root: Path) -> list[Row]:
    require_dir(root, "IEMOCAP root folder")
    rows, dropped = [], []
    for session in SESSIONS:
        evaluations = require_dir(
            root / session / "dialog" / "EmoEvaluation", "emotion labels folder"
        )
        wavs = require_dir(root / session / "sentences" / "wav", "sentence audio folder")
        for table in visible(evaluations):
            if table.suffix != ".txt" or not table.is_file():
                continue  # Categorical/, Attribute/, Self-evaluation/: per-annotator detail
            for name, label in _turns(table):
                if label not in LABELS:
                    dropped.append(label)
                    continue
                path = wavs / table.stem / f"{name}.wav"
                if not path.is_file():
                    raise VqpoolError(f"{path}: missing (labelled in {table})")
                speaker = NAME.fullmatch(name)
                rows.append(
                    {
                        "id": name,
                        "path": str(path),
                        "label": LABELS[label],
                        "speaker": speaker["session"] + speaker["gender"],
                        "session": session,
                    }
                )
    report_dropped("iemocap", dropped, "with labels outside neu, hap, ang, sad, exc")
    for row, split in zip(rows, folds(rows)[0], strict=True):
        row["split"] = split
    return rows


def _turns(table: Path) -> list[tuple[str, str]]:
    """(utterance, label) of each turn line, the ones that start with ``[``."""
    turns = []
    for line, text in enumerate(
        table.read_text(encoding="utf-8", errors="replace").splitlines(), start=1
    ):
        if not text.startswith("["):
            continue
        turn = TURN.match(text)
        if turn is None or NAME.fullmatch(turn["name"]) is None:
            raise VqpoolError(f"{table}:{line}: malformed turn line {text!r}")
        turns.append((turn["name"], turn["label"]))
    return turns
