"""A Speech-Commands-like corpus spoken by eSpeak NG: the offline demo's data.

eSpeak NG (library and voice data from the ``espeakng-loader`` wheel) is driven through ctypes.
A voice is an English accent x a voice variant with its own rate, pitch and intonation range,
and each voice is one speaker; splits are speaker-disjoint. Every take jitters rate and pitch
and gets seeded augmentations (peak gain, leading and trailing silence, light white noise), so
that no two takes are alike. The output is laid out like Speech Commands::

    OUT/<word>/<speaker>_nohash_<take>.wav     16 kHz mono 16-bit
    OUT/validation_list.txt, OUT/testing_list.txt
    OUT/manifest.csv, OUT/manifest.labels.json

Determinism: the breathy variants (f2, f3, f5) mix in noise from eSpeak's own generator, which
espeak_ng_Initialize seeds from the wall clock (``time(NULL)``, seconds); so every take reseeds it
from the take's seed. The library also keeps other synthesis state from call to call (the same
text twice in one process gives different samples), yet a fresh process replays the same calls
to the same samples. So each voice is spoken by its own fresh process (``maxtasksperchild=1``),
and the bytes depend on neither the clock nor the scheduling.
"""

import ctypes
import multiprocessing
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from vqpool.data.common import Row, require_file
from vqpool.data.custom import checked
from vqpool.data.output import write_prepared
from vqpool.data.speechcommands import LISTS, WORDS
from vqpool.errors import VqpoolError
from vqpool.io import fsync_dir
from vqpool.progress import progress_bar

SAMPLE_RATE = 16_000
WORD_SETS = {
    "speechcommands": WORDS,
    "commands": ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"),
    "digits": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}
# eSpeak NG's English accents (en-shaw is the Shavian script, not an accent) and human-like
# variants; 8 x 12 = 96 distinct voices at most.
ACCENTS = (
    "en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)  # fmt: skip
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
RATE_WPM = (140, 200)  # per voice; eSpeak's default is 175 words per minute
PITCH = (25, 75)  # per voice, eSpeak's 0-100 scale
RANGE = (30, 80)  # intonation range, same scale
RATE_JITTER = 0.08  # per take, relative
PITCH_JITTER = 5  # per take, absolute
GAIN_DB = (-12.0, -1.0)  # peak level
SILENCE_S = (0.05, 0.3)  # each side
SNR_DB = (30.0, 45.0)  # light noise
HELD_OUT_VOICES = 1 / 6  # of the voices each for test and validation

# libespeak-ng constants (speak_lib.h)
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # return errors instead of exiting the process
POS_CHARACTER = 1
CHARS_UTF8 = 1
PARAMETERS = {"rate": 1, "pitch": 3, "range": 4}


@dataclass(frozen=True)
class Voice:
    accent: str
    variant: str
    rate: int
    pitch: int
    range: int
    split: str
    key: int  # position among all accent x variant pairs: seeds this voice's takes

    @property
    def speaker(self) -> str:
        return f"{self.accent}+{self.variant}"


@dataclass(frozen=True)
class _Job:
    voice: Voice
    words: tuple[str, ...]
    repeats: int
    seed: int
    out: Path


def synthesize(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    words: str | Sequence[str] = "speechcommands",
    voices: int = 24,
    repeats: int = 4,
    workers: int | None = None,
) -> Path:
    """Speak every word ``repeats`` times in each of ``voices`` voices; return the manifest path.

    ``words`` is a set name (speechcommands: the 35 words, commands: 10, digits: 10), a
    comma-separated string or a sequence of words. The corpus is built beside ``out_dir`` and
    renamed into place when complete, so ``out_dir`` must not exist or be empty.
    """
    vocabulary = _words(words)
    if repeats < 1 or (workers is not None and workers < 1):
        raise VqpoolError(f"repeats and workers must be 1 or more, got {repeats} and {workers}")
    out = Path(out_dir).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise VqpoolError(f"{out}: exists and is not empty; choose a new output folder")
    _library()  # fail here, not in every worker
    cast = plan_voices(voices, seed)
    workers = workers or min(_cpus(), len(cast))

    building = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    jobs = [_Job(voice, vocabulary, repeats, seed, building) for voice in cast]
    rows: list[Row] = []
    try:
        for word in vocabulary:
            (building / word).mkdir(parents=True)
        total = len(jobs) * len(vocabulary) * repeats
        with (
            multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=1) as pool,
            progress_bar(total=total, desc="synth", unit="utt") as progress,
        ):
            for spoken in pool.imap(_speak, jobs):
                rows += spoken
                progress.update(len(spoken))
        rows.sort(key=lambda row: row["id"])
        for split, name in LISTS.items():
            listed = sorted(f"{row['id']}.wav" for row in rows if row["split"] == split)
            (building / name).write_text("".join(f"{line}\n" for line in listed), encoding="utf-8")
        write_prepared(rows, building / "manifest.csv")
        if out.exists():
            out.rmdir()
        building.rename(out)
        fsync_dir(out.parent)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return out / "manifest.csv"


def prepare(root: Path) -> list[Row]:
    """The rows of a corpus that :func:`synthesize` wrote to ``root``."""
    return checked(
        require_file(root / "manifest.csv", "manifest (make it with `vqpool data synth --out DIR`)")
    )


def plan_voices(count: int, seed: int) -> list[Voice]:
    """``count`` distinct voices drawn by ``seed``; the first sixth test, the next validation."""
    pairs = [(accent, variant) for accent in ACCENTS for variant in VARIANTS]
    if not 3 <= count <= len(pairs):
        raise VqpoolError(
            f"voices must be 3 to {len(pairs)} (a voice per split at least), got {count}"
        )
    rng = np.random.default_rng(seed)
    held_out = max(1, round(count * HELD_OUT_VOICES))
    cast = []
    for position, key in enumerate(rng.permutation(len(pairs))[:count]):
        split = (
            "test" if position < held_out else "validation" if position < 2 * held_out else "train"
        )
        cast.append(
            Voice(
                *pairs[key],
                rate=int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                range=int(rng.integers(RANGE[0], RANGE[1] + 1)),
                split=split,
                key=int(key),
            )
        )
    return cast


def _cpus() -> int:
    """CPUs this process may use (the affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _words(words: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(words, str):
        words = WORD_SETS.get(words) or [word.strip() for word in words.split(",")]
    words = tuple(words)
    bad = [word for word in words if not re.fullmatch(r"[a-z]+", word)]
    if not words or bad:
        raise VqpoolError(
            f"words: {bad[0] if bad else 'none'!r} is not a lowercase word; give a set "
            f"({', '.join(WORD_SETS)}) or comma-separated words"
        )
    if len(set(words)) != len(words):
        raise VqpoolError(f"words: repeated word in {', '.join(words)}")
    return words


def _speak(job: _Job) -> list[Row]:
    """All takes of one voice, in a fixed order (runs in a fresh process: see the module doc)."""
    voice, engine = job.voice, _Espeak()
    engine.set_voice(voice.speaker)
    rows = []
    for index, word in enumerate(job.words):
        for take in range(job.repeats):
            entropy = np.random.SeedSequence([job.seed, voice.key, index, take])
            rng = np.random.default_rng(entropy)
            rate = round(voice.rate * rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER))
            pitch = int(
                np.clip(voice.pitch + rng.integers(-PITCH_JITTER, PITCH_JITTER + 1), 0, 100)
            )
            noise_seed = int(entropy.generate_state(1)[0])  # leaves rng's draws as they were
            raw = engine.speak(word, noise_seed, rate=rate, pitch=pitch, range=voice.range)
            name = f"{word}/{voice.speaker}_nohash_{take}"
            audio = _augment(raw, engine.sample_rate, rng, f"{name} ({voice})")
            soundfile.write(job.out / f"{name}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
            rows.append({"id": name, "path": str(job.out / f"{name}.wav"), "label": word,
                         "split": voice.split, "speaker": voice.speaker})  # fmt: skip
    return rows


def _augment(raw: np.ndarray, source_rate: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """eSpeak's int16 samples -> 16 kHz float32 with drawn gain, silences and noise."""
    speech = raw.astype(np.float32) / 32768
    voiced = np.flatnonzero(np.abs(speech) > 0.01 * np.abs(speech).max(initial=0))
    if voiced.size == 0:
        raise VqpoolError(f"eSpeak NG produced no sound for {what}")
    # eSpeak's own pauses differ by voice; trim them and draw our own.
    speech = soxr.resample(
        speech[voiced[0] : voiced[-1] + 1], source_rate, SAMPLE_RATE, quality="HQ"
    )
    speech *= 10 ** (rng.uniform(*GAIN_DB) / 20) / np.abs(speech).max()
    lead, trail = (round(rng.uniform(*SILENCE_S) * SAMPLE_RATE) for _ in range(2))
    audio = np.pad(speech, (lead, trail))
    noise = np.sqrt(np.mean(speech**2)) * 10 ** (-rng.uniform(*SNR_DB) / 20)
    audio += noise * rng.standard_normal(audio.shape[0])
    return np.clip(audio, -1, 1).astype(np.float32)


def _library() -> tuple[str, str]:
    """Paths of libespeak-ng and its voice data, from the espeakng-loader wheel."""
    try:
        import espeakng_loader
    except ImportError as error:
        raise VqpoolError(
            "the synthetic corpus needs eSpeak NG from the espeakng-loader wheel: "
            "pip install 'vqpool[demo]'"
        ) from error
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _VoiceInfo(ctypes.Structure):
    """The leading fields of speak_lib.h's espeak_VOICE (read through a pointer, never sized)."""

    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p)]  # fmt: skip


class _Espeak:
    """libespeak-ng in synchronous mode; one per process, as the library is a singleton."""

    def __init__(self) -> None:
        library, data = _library()
        self.lib = ctypes.CDLL(library)
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_VoiceInfo)
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self.sample_rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            raise VqpoolError(f"eSpeak NG failed to start (data folder {data})")
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(
            self._collect
        )  # kept alive: the library holds a raw pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def set_voice(self, name: str) -> None:
        """Load ``accent+variant``, refusing eSpeak's silent fallback to the bare accent."""
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise VqpoolError(f"eSpeak NG has no voice {name!r}")
        # A missing variant file still returns success, with the plain accent loaded; the
        # identifier ("gmw/en-GB-x-rp+f1") names what was really loaded.
        loaded = (self.lib.espeak_GetCurrentVoice().contents.identifier or b"").decode()
        if loaded.rpartition("/")[2].lower() != name.lower():
            raise VqpoolError(f"eSpeak NG loaded {loaded!r} instead of voice {name!r}")

    def speak(self, text: str, noise_seed: int, **parameters: int) -> np.ndarray:
        for name, value in parameters.items():
            self.lib.espeak_SetParameter(PARAMETERS[name], value, 0)
        self.lib.espeak_ng_SetRandSeed(noise_seed)
        self._chunks.clear()
        encoded = text.encode()
        status = self.lib.espeak_Synth(
            encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
        )
        if status != 0:
            raise VqpoolError(f"eSpeak NG failed on {text!r} (error {status})")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def _collect(
        self, samples: "ctypes._Pointer[ctypes.c_short]", count: int, events: int | None
    ) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0: go on synthesising
