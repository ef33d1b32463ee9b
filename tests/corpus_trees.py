"""Tiny corpora in their official on-disk layouts, built inside tests (a few ms of audio each)."""

from pathlib import Path

import numpy as np
import soundfile

from vqpool.data.speechcommands import WORDS


def tone(path: Path, seconds: float = 0.02, sample_rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.sin(np.arange(int(seconds * sample_rate)) * 0.3) * 0.1
    soundfile.write(path, samples, sample_rate, subtype="PCM_16")
    return path


def speech_commands(root: Path) -> Path:
    """35 words x 3 files (speakers aa11aa11, bb22bb22, cc33cc33); per word one validation, one test."""
    for word in WORDS:
        for speaker in ("aa11aa11", "bb22bb22", "cc33cc33"):
            tone(root / word / f"{speaker}_nohash_0.wav")
    tone(root / "_background_noise_" / "white_noise.wav", seconds=0.1)
    tone(root / "_background_noise_" / "pink_noise.wav", seconds=0.1)
    (root / "_background_noise_" / "README.md").write_text("noise\n")
    (root / "LICENSE").write_text("CC-BY-4.0\n")
    (root / "validation_list.txt").write_text(
        "".join(f"{w}/bb22bb22_nohash_0.wav\n" for w in WORDS)
    )
    (root / "testing_list.txt").write_text("".join(f"{w}/cc33cc33_nohash_0.wav\n" for w in WORDS))
    return root


VOX_SPLIT = """1 id10001/1zcIwhmdeo4/00001.wav
1 id10001/1zcIwhmdeo4/00002.wav
2 id10001/7gWzIy6yIIk/00001.wav
3 id10001/Y8hIVOBuels/00001.wav
1 id10002/6WO410QOeuo/00001.wav
1 id10002/C7k7C-PDvAA/00001.wav
2 id10002/C7k7C-PDvAA/00002.wav
3 id10002/xTV-jFAUKcw/00001.wav
"""


def voxceleb1(root: Path) -> Path:
    (root).mkdir(parents=True, exist_ok=True)
    (root / "iden_split.txt").write_text(VOX_SPLIT)
    for line in VOX_SPLIT.splitlines():
        tone(root / "wav" / line.split()[1])
    return root


FLUENT_HEADER = ",path,speakerId,transcription,action,object,location\n"
FLUENT_ROWS = {
    "train_data.csv": [
        ("2BqVo8kVB2Skwgyb", "0a3129c0-4474-11e9-a9a5-5dbec3b8816a", "Change language", "change language", "none", "none"),
        ("2BqVo8kVB2Skwgyb", "0ee42a80-4474-11e9-a9a5-5dbec3b8816a", "Turn on the kitchen lights", "activate", "lights", "kitchen"),
        ("4aGjX3AG5xcxeL7a", "1a2b3c4d-4474-11e9-a9a5-5dbec3b8816a", "Lights on in the kitchen", "activate", "lights", "kitchen"),
    ],
    "valid_data.csv": [
        ("52XVOeXMXYuaElyw", "2b3c4d5e-4474-11e9-a9a5-5dbec3b8816a", "Turn the volume up", "increase", "volume", "none"),
    ],
    "test_data.csv": [
        ("5pa4DVyvN2fXpepb", "3c4d5e6f-4474-11e9-a9a5-5dbec3b8816a", "Switch off the lights", "deactivate", "lights", "none"),
        ("5pa4DVyvN2fXpepb", "4d5e6f70-4474-11e9-a9a5-5dbec3b8816a", "Bring me my shoes", "bring", "shoes", "none"),
    ],
}  # fmt: skip


def fluent(root: Path) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    for table, records in FLUENT_ROWS.items():
        lines = [FLUENT_HEADER]
        for number, (speaker, uuid, text, action, thing, place) in enumerate(records):
            path = f"wavs/speakers/{speaker}/{uuid}.wav"
            tone(root / path)
            lines.append(f'{number},{path},{speaker},"{text}",{action},{thing},{place}\n')
        (root / "data" / table).write_text("".join(lines))
    return root


# Per session and speaker gender: labels of the improvised dialog's turns, in order.
IEMOCAP_TURNS = {
    "F": ["neu", "neu", "neu", "hap", "hap", "exc", "ang", "ang", "sad", "sad", "fru", "xxx"],
    "M": ["neu", "neu", "hap", "exc", "ang", "ang", "ang", "sad", "sad", "sad", "fru"],
}
IEMOCAP_ANNOTATIONS = (
    "C-E2:\tNeutral state;\t()\nC-E3:\tNeutral state;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n"
)


def iemocap(root: Path) -> Path:
    """Sessions 1-5, one dialog each (Ses0NF_impro01): 10 kept turns per gender, 3 dropped."""
    for number in range(1, 6):
        session = root / f"Session{number}"
        dialog = f"Ses0{number}F_impro01"
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"]
        for gender, labels in IEMOCAP_TURNS.items():
            for turn, label in enumerate(labels):
                name = f"{dialog}_{gender}{turn:03d}"
                start = 6.2901 + 3 * turn
                lines.append(
                    f"[{start:.4f} - {start + 1.9456:.4f}]\t{name}\t{label}\t[2.5000, 2.5000, 2.5000]\n"
                )
                lines.append(IEMOCAP_ANNOTATIONS + "\n")
                tone(session / "sentences" / "wav" / dialog / f"{name}.wav")
        evaluations = session / "dialog" / "EmoEvaluation"
        (evaluations / "Categorical").mkdir(parents=True)
        (evaluations / "Categorical" / f"{dialog}_e2_cat.txt").write_text(
            f"{dialog}_F000 :Neutral state; ()\n"
        )
        (evaluations / f"{dialog}.txt").write_text("".join(lines))
    return root
