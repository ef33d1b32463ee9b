"""Speech Commands v0.02 (keyword spotting): 35 words, official validation and test lists.

Root layout (the extracted ``speech_commands_v0.02.tar.gz``)::

    ROOT/backward/0165e0e8_nohash_0.wav ... one folder per word (35)
    ROOT/_background_noise_/            noise recordings, not words: excluded
    ROOT/validation_list.txt            lines such as ``right/bb05582b_nohash_3.wav``
    ROOT/testing_list.txt

Label = the word folder, speaker = the hash before ``_nohash_``; files on neither list train.
"""

from pathlib import Path

from vqpool.data.common import (
    Row,
    note,
    report_ignored,
    require_dir,
    require_file,
    visible,
)
from vqpool.errors import VqpoolError

WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one",
    "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow",
    "yes", "zero",
)  # fmt: skip
NOISE = "_background_noise_"
LISTS = {"validation": "validation_list.txt", "test": "testing_list.txt"}


def prepare(root: Path) -> list[Row]:
    require_dir(root, "Speech Commands root folder")
    listed = {
        split: _read_list(require_file(root / name, "split list")) for split, name in LISTS.items()
    }
    for folder in visible(root):
        if folder.is_dir() and folder.name not in WORDS and folder.name != NOISE:
            raise VqpoolError(
                f"{folder}: not one of the 35 Speech Commands v0.02 words (nor {NOISE})"
            )
    if (root / NOISE).is_dir():
        note(
            "speechcommands",
            f"excluded {len(visible(root / NOISE))} files in {NOISE} (noise, not words)",
        )

    rows, ignored = [], []
    for word in WORDS:
        for path in visible(require_dir(root / word, f"word folder '{word}'")):
            if path.suffix != ".wav":
                ignored.append(path)
                continue
            speaker, sep, _ = path.stem.partition("_nohash_")
            if not sep or not speaker:
                raise VqpoolError(f"{path}: malformed name, expected HASH_nohash_N.wav")
            rows.append(
                {
                    "id": f"{word}/{path.stem}",
                    "path": str(path),
                    "label": word,
                    "split": "train",
                    "speaker": speaker,
                }
            )
    report_ignored("speechcommands", ignored, "not .wav")

    by_name = {f"{row['id']}.wav": row for row in rows}
    for split, names in listed.items():
        for line, name in names:
            if name not in by_name:
                raise VqpoolError(
                    f"{root / LISTS[split]}:{line}: lists {name}, which is not in a word folder"
                )
            if by_name[name]["split"] != "train":
                raise VqpoolError(f"{root / LISTS[split]}:{line}: {name} is on both split lists")
            by_name[name]["split"] = split
    return rows


def _read_list(path: Path) -> list[tuple[int, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]
