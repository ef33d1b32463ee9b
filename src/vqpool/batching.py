"""The batching core that `vqpool.extract` and `vqpool.Encoder` share.

Clips are planned into batches longest first within a seconds budget (models that change when
padded only get clips of one length), read and resampled by threads ahead of the model, run
through the upstream, and frames rounded to fp16 exactly as the feature store keeps them, so that
``Encoder.encode`` gives the vectors ``vqpool bench`` scores for the same files and settings.

Long recordings are cut into windows of ``chunk_seconds`` that overlap by ``overlap_seconds``
on each side; each frame is taken from the one window whose core (the window less its
overlaps) holds the frame's start, so the frames tile the recording with no gap and no
repeat, and their count is the unchunked count. The stitching is an approximation: each
window is normalised and attended to on its own, so frames differ from an unchunked run's in
proportion to how much context the model uses beyond ``overlap_seconds``.
"""

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.sources import Clip
from vqpool.upstream import Upstream

T = TypeVar("T")
R = TypeVar("R")

# Frames as the feature store keeps them (fp16), so encode() equals extract + bench.
FRAME_DTYPE = torch.float16


def plan_batches(clips: Sequence[Clip], batch_seconds: float, *, pads_safely: bool) -> list[list[int]]:
    """Clip positions in batches: longest first (ties by sample rate, then input order), each
    batch at most ``batch_seconds`` of padded audio; without ``pads_safely`` a batch holds
    clips of one length and rate only, so batching never changes a frame."""
    order = sorted(range(len(clips)), key=lambda k: (-clips[k].duration, clips[k].sample_rate, k))
    batches: list[list[int]] = []
    for k in order:
        if batches and _fits(clips, batches[-1], k, batch_seconds, pads_safely):
            batches[-1].append(k)
        else:
            batches.append([k])
    return batches


def _fits(clips: Sequence[Clip], batch: list[int], k: int, batch_seconds: float, pads_safely: bool) -> bool:
    first = clips[batch[0]]
    if not pads_safely and (clips[k].num_samples, clips[k].sample_rate) != (first.num_samples, first.sample_rate):
        return False
    return (len(batch) + 1) * first.duration <= batch_seconds


def prefetched(load: Callable[[T], R], batches: Iterable[T], depth: int) -> Iterator[R]:
    """``map(load, batches)`` computed ``depth`` batches ahead by threads (soxr frees the GIL)."""
    if depth <= 0:
        yield from map(load, batches)
        return
    with ThreadPoolExecutor(max_workers=depth) as threads:
        pending: deque = deque()
        for batch in batches:
            pending.append(threads.submit(load, batch))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def forward(upstream: Upstream, waves: Sequence[np.ndarray], where: Sequence[object],
            ids: Sequence[str] | None = None, first_frames: Sequence[int] | None = None, *,
            paths: Sequence[str | None] | None = None,
            check: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run ``upstream`` on mono waveforms at its rate: fp16 frames ``[B, T, D]`` (the store's
    precision), frame lengths ``[B]`` and codes ``[B, T, G]`` or None, on the upstream's device.
    ``ids`` and ``paths`` (and ``first_frames``, for windows of longer clips) serve code sources
    of units.
    With ``check``, non-finite frames raise, naming the first such input in ``where``;
    without, the caller checks (``nonfinite_rows``)."""
    lengths = torch.tensor([len(wave) for wave in waves])
    padded = torch.zeros(len(waves), int(lengths.max()))
    for row, wave in enumerate(waves):
        padded[row, : len(wave)] = torch.from_numpy(wave)
    output = upstream(padded, lengths, ids=ids, first_frames=first_frames, paths=paths)
    frames = output.frames.to(FRAME_DTYPE)
    bad = nonfinite_rows(frames) if check else []
    if bad:
        raise VqpoolError(f"{where[bad[0]]}: {NONFINITE}")
    return frames, output.frame_lengths, output.codes


NONFINITE = "the upstream gave NaN or values too large for fp16 (above 65504)"


def nonfinite_rows(values: Tensor | np.ndarray) -> list[int]:
    """Positions along the first axis of the rows holding a NaN or an infinity."""
    values = torch.as_tensor(values)
    return (~torch.isfinite(values)).reshape(len(values), -1).any(1).nonzero().flatten().tolist()


@dataclass(frozen=True)
class Window:
    """Samples ``[start, stop)`` of a clip go to the model; frames ``[first, last)`` of the
    clip's frame sequence are kept from it (counted from ``start // hop``)."""

    start: int
    stop: int
    first: int
    last: int


def windows(num_samples: int, num_frames: int, hop: int, chunk: int, overlap: int) -> list[Window]:
    """The windows that cover a clip of ``num_samples`` (see the module docstring); one window
    when the clip fits ``chunk``. ``hop`` is the upstream's samples per frame."""
    if num_samples <= chunk:
        return [Window(0, num_samples, 0, num_frames)]
    # A window's start is rounded down to a frame boundary: one hop less of core keeps every
    # window within ``chunk``.
    core = max(hop, (chunk - 2 * overlap) // hop * hop - hop)
    found = []
    for first_sample in range(0, num_samples, core):
        start = max(0, first_sample - overlap) // hop * hop
        stop = min(num_samples, first_sample + core + overlap)
        first, last = first_sample // hop, min(num_frames, (first_sample + core) // hop)
        if first < last:
            found.append(Window(start, stop, first, last))
    found[-1] = Window(found[-1].start, found[-1].stop, found[-1].first, num_frames)
    return found
