"""VoxCeleb1 speaker identification: 1,251 speakers, the official ``iden_split.txt``.

Root layout (``vox1_dev_wav.zip`` and ``vox1_test_wav.zip`` extracted together, plus the split
file from the VoxCeleb1 page)::

    ROOT/iden_split.txt   lines such as ``1 id10001/1zcIwhmdeo4/00001.wav`` (1 train, 2 validation, 3 test)
    ROOT/wav/id10001/1zcIwhmdeo4/00001.wav

The split file defines the corpus: every line must name an existing file, and files it does not
list take no part. Label = speaker = the ``idNNNNN`` folder.
"""

from pathlib import Path

from vqpool.data.common import Row, require_dir, require_file
from vqpool.errors import VqpoolError

SPLIT_CODES = {"1": "train", "2": "validation", "3": "test"}


def prepare(root: Path) -> list[Row]:
    require_dir(root, "VoxCeleb1 root folder")
    split_file = require_file(root / "iden_split.txt", "identification split file")
    audio = require_dir(root / "wav", "audio folder (wav/idNNNNN/VIDEO/NNNNN.wav)")
    rows = []
    for line, text in enumerate(split_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        fields = text.split()
        parts = fields[1].split("/") if len(fields) == 2 else []
        if fields[0] not in SPLIT_CODES or len(parts) != 3 or not parts[2].endswith(".wav"):
            raise VqpoolError(
                f"{split_file}:{line}: malformed line {text!r}, expected '1|2|3 idNNNNN/VIDEO/NNNNN.wav'"
            )
        path = audio / fields[1]
        if not path.is_file():
            raise VqpoolError(f"{path}: missing (listed in {split_file}:{line})")
        rows.append(
            {
                "id": fields[1].removesuffix(".wav"),
                "path": str(path),
                "label": parts[0],
                "split": SPLIT_CODES[fields[0]],
                "speaker": parts[0],
            }
        )
    return rows
