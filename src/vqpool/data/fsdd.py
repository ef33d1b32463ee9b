"""The Free Spoken Digit Dataset: 6 speakers x 10 digits x 50 takes, real recordings at 8 kHz.

Root layout: the ``recordings`` folder of the FSDD repository (or the repository itself), with
files ``{digit}_{speaker}_{index}.wav``.

``label="digit"`` (task ``fsdd-digit``, default) or ``label="speaker"`` (task ``fsdd-speaker``,
a 6-class speaker identification on real voices).
``split="index"`` (default): index 0-4 test (the conventional 300), 5-9 validation, 10-49 train;
every speaker is in every split. ``split="speaker"``: one speaker is test and another validation,
the rest train, so digits are judged on an unseen voice (the index split is nearly saturated);
the two speakers are the first two of the sorted names shuffled by ``random.Random(seed)``.
"""

import random
import re
from pathlib import Path

from vqpool.data.common import Row, report_ignored, require_dir, visible
from vqpool.errors import ParameterError, VqpoolError

NAME = re.compile(r"(?P<digit>\d)_(?P<speaker>[^_]+)_(?P<index>\d+)\.wav")
LABELS = ("digit", "speaker")
SPLITS = ("index", "speaker")


def prepare(root: Path, *, label: str = "digit", split: str = "index", seed: int = 0) -> list[Row]:
    if label not in LABELS:
        raise VqpoolError(f"fsdd label {label!r} is not one of {', '.join(LABELS)}")
    if split not in SPLITS:
        raise VqpoolError(f"fsdd split {split!r} is not one of {', '.join(SPLITS)}")
    if label == "speaker" and split == "speaker":
        raise VqpoolError(
            "fsdd: label speaker with split speaker would test on speakers never trained on"
        )
    require_dir(root, "FSDD recordings folder")
    if (root / "recordings").is_dir():
        root = root / "recordings"
    files = visible(root)
    recordings = [path for path in files if path.suffix == ".wav"]
    report_ignored("fsdd", [path for path in files if path.suffix != ".wav"], "not .wav")
    if not recordings:
        raise VqpoolError(f"{root}: no {{digit}}_{{speaker}}_{{index}}.wav recordings")

    rows = []
    for path in recordings:
        name = NAME.fullmatch(path.name)
        if name is None:
            raise VqpoolError(
                f"{path}: malformed name, expected {{digit}}_{{speaker}}_{{index}}.wav"
            )
        index = int(name["index"])
        rows.append(
            {
                "id": path.stem,
                "path": str(path),
                "label": name[label],
                "split": "test" if index < 5 else "validation" if index < 10 else "train",
                "speaker": name["speaker"],
            }
        )
    if split == "speaker":
        _hold_out_speakers(rows, seed)
    return rows


def _hold_out_speakers(rows: list[Row], seed: int) -> None:
    speakers = sorted({row["speaker"] for row in rows})
    if len(speakers) < 3:
        raise ParameterError("split", f"speaker needs three speakers or more, found {len(speakers)}")
    random.Random(seed).shuffle(speakers)
    roles = {speakers[0]: "test", speakers[1]: "validation"}
    for row in rows:
        row["split"] = roles.get(row["speaker"], "train")
