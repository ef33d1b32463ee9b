"""Reading audio: every file goes through here, so every upstream sees the same waveform.

soundfile reads (integer PCM becomes float in [-1, 1]), channels are averaged to mono, soxr
resamples. A file that cannot be used raises :class:`BadAudioError` naming it; callers that were
asked to skip such files collect the errors and write them with :func:`write_skip_report`.
"""

import os

import numpy as np
import soundfile
import soxr

from vqpool.errors import BadAudioError
from vqpool.io import write_skip_report as write_skip_report  # lives in io, below the store

ON_BAD_AUDIO = ("error", "skip")
# Sample rates a file may plausibly have; others are a damaged header (1 Hz turns 4 kB into half
# an hour of audio to resample).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000


def load_audio(
    path: str | os.PathLike,
    sample_rate: int,
    *,
    min_samples: int = 1,
    reject_silent: bool = False,
) -> np.ndarray:
    """Return the file as mono float32 at ``sample_rate`` Hz.

    ``min_samples`` is the shortest usable length after resampling (an upstream passes the
    length of one frame); ``reject_silent`` also refuses files whose samples are all zero.
    """
    if not os.path.isfile(path):
        raise BadAudioError(path, "no such file")
    try:
        data, source_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises several types for unreadable files
        raise BadAudioError(path, f"unreadable audio ({error})") from error
    return conform(data, source_rate, sample_rate, path, min_samples=min_samples,
                   reject_silent=reject_silent)


def implausible_rate(rate: int) -> str:
    return (f"implausible sample rate of {rate} Hz in its header (expected {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz): a damaged header")


def conform(
    data: np.ndarray,
    source_rate: int,
    sample_rate: int,
    where: object,
    *,
    min_samples: int = 1,
    reject_silent: bool = False,
) -> np.ndarray:
    """Samples ``[N]`` or ``[N, channels]`` as mono float32 at ``sample_rate`` Hz; ``where``
    names the audio in errors. Every waveform an upstream sees goes through here."""
    if not MIN_SAMPLE_RATE <= source_rate <= MAX_SAMPLE_RATE:
        raise BadAudioError(where, implausible_rate(source_rate))
    data = np.asarray(data, dtype=np.float32)
    if data.shape[0] == 0:
        raise BadAudioError(where, "empty audio (0 samples)")
    waveform = data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data
    if not np.isfinite(waveform).all():
        raise BadAudioError(where, "audio contains NaN or infinite samples")
    if source_rate != sample_rate:
        waveform = soxr.resample(waveform, source_rate, sample_rate, quality="HQ").astype(np.float32)
    if waveform.shape[0] < min_samples:
        raise BadAudioError(
            where,
            f"too short: {waveform.shape[0]} samples at {sample_rate} Hz, "
            f"at least {min_samples} needed for one frame",
        )
    if reject_silent and not np.any(waveform):
        raise BadAudioError(where, "all-silent audio", kind="silent")
    return waveform
