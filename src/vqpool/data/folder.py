"""The user's own audio, one sub-folder per label.

Root layout, either::

    ROOT/<label>/**/<name>.wav            seeded split per label: 10% test, 10% validation
    ROOT/<split>/<label>/**/<name>.wav    when every sub-folder is train, validation or test

Audio is anything soundfile reads (.wav, .flac, .ogg, .mp3, .aiff); other files are reported
and left out; audio outside a label folder is an error. Speaker is left empty (unknown).
"""

from pathlib import Path

from vqpool.data.common import (
    AUDIO_SUFFIXES,
    Row,
    draw_splits,
    report_ignored,
    require_dir,
    visible,
    walk_files,
)
from vqpool.errors import VqpoolError
from vqpool.manifest import SPLITS


def prepare(root: Path, *, seed: int = 0) -> list[Row]:
    require_dir(root, "folder of label folders")
    top = [entry for entry in visible(root) if entry.is_dir()]
    if not top:
        raise VqpoolError(f"{root}: no label folders")
    _refuse_loose_audio(root)
    by_split = all(folder.name in SPLITS for folder in top)
    ignored: list[Path] = []
    rows = []
    for folder in top:
        labelled = [entry for entry in visible(folder) if entry.is_dir()] if by_split else [folder]
        if by_split:
            _refuse_loose_audio(folder)
        for label_folder in labelled:
            for path in walk_files(label_folder):
                if path.suffix.lower() not in AUDIO_SUFFIXES:
                    ignored.append(path)
                    continue
                rows.append(
                    {
                        "id": str(path.relative_to(root).with_suffix("")),
                        "path": str(path),
                        "label": label_folder.name,
                        "split": folder.name if by_split else "",
                        "speaker": "",
                    }
                )
    report_ignored("folder", ignored, "not audio")
    if not by_split:
        draw_splits(rows, seed)
    return rows


def _refuse_loose_audio(folder: Path) -> None:
    for entry in visible(folder):
        if entry.is_file() and entry.suffix.lower() in AUDIO_SUFFIXES:
            raise VqpoolError(f"{entry}: audio outside a label folder (it would have no label)")
