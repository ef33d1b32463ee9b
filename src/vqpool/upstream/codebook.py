"""k-means codebooks: codes for upstreams without a quantizer, shaped like wav2vec 2.0's.

Product quantization: the D-dimensional vector is cut into ``G`` contiguous chunks and each chunk
gets its own k-means with ``V`` centroids, so every frame carries ``G`` codes in ``[0, V)`` just
as wav2vec 2.0's two 320-entry codebooks give. Fitted once on a bounded random sample of
training frames, saved with its settings, and reused for every split.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from vqpool.errors import ParameterError, VqpoolError
from vqpool.io import load_tagged, save_tagged
from vqpool.progress import progress_bar
from vqpool.tensors import length_mask

if TYPE_CHECKING:
    from vqpool.upstream.base import Upstream

FORMAT = "vqpool-kmeans-codebook"


class KMeansCodebook:
    """``G`` k-means codebooks of ``V`` centroids over contiguous chunks of a ``D``-vector."""

    def __init__(
        self, centroids: Sequence[Tensor], settings: dict[str, Any], path: Path | None = None
    ) -> None:
        self.centroids = [c.float() for c in centroids]  # one [V, D_g] per chunk
        self.settings = settings
        self.path = path

    @property
    def num_codebooks(self) -> int:
        return len(self.centroids)

    @property
    def codebook_size(self) -> int:
        return self.centroids[0].shape[0]

    @property
    def dim(self) -> int:
        return sum(c.shape[1] for c in self.centroids)

    @property
    def layer(self) -> str | None:
        """What was quantized: a layer spec of the upstream, or a named representation ("cnn");
        None for a codebook per layer (`layers`)."""
        return self.settings.get("layer")

    @property
    def layers(self) -> tuple[str, ...]:
        """The layer specs whose concatenation is quantized: ``(layer,)``, or one per layer of
        a per-layer codebook (``vqpool codebook fit --layers 6,9,12``)."""
        return tuple(self.settings.get("layers") or (self.settings["layer"],))

    @property
    def upstream(self) -> str:
        """The spec of the upstream the codebook was fitted for."""
        return self.settings["upstream"]

    @classmethod
    def fit(
        cls,
        frames: Tensor | np.ndarray,
        *,
        num_codebooks: int = 2,
        codebook_size: int = 320,
        seed: int = 0,
        layer_dims: Sequence[int] | None = None,
        **settings: Any,
    ) -> KMeansCodebook:
        """Fit on ``frames [N, D]``; ``settings`` (upstream, layer, ...) are saved with the codebook.

        ``layer_dims`` says that the frames are several layers side by side: each layer is then
        cut into ``num_codebooks`` chunks of its own (G = layers x ``num_codebooks``)."""
        from sklearn import __version__ as sklearn_version
        from sklearn.cluster import MiniBatchKMeans
        from threadpoolctl import threadpool_limits

        frames = np.asarray(torch.as_tensor(frames, dtype=torch.float32).cpu())
        count, dim = frames.shape
        if count < codebook_size:
            raise ParameterError(
                "codebook_size", f"is {codebook_size}, but there are only {count} frames to fit the "
                "centroids: use more audio or a smaller size"
            )
        dims = list(layer_dims or [dim])
        if sum(dims) != dim:
            raise ParameterError("layer_dims", f"add up to {sum(dims)}, but the frames have {dim} dimensions")
        if not 1 <= num_codebooks <= min(dims):
            raise ParameterError(
                "num_codebooks", f"is {num_codebooks}: it must lie between 1 and the dimension {min(dims)}"
            )
        parts = np.split(frames, np.cumsum(dims)[:-1], axis=1)
        chunks = [chunk for part in parts for chunk in np.array_split(part, num_codebooks, axis=1)]
        centroids, inertia = [], []
        for chunk in chunks:
            kmeans = MiniBatchKMeans(
                n_clusters=codebook_size, random_state=seed, n_init=3, batch_size=1024
            )
            # One thread: torch's OpenMP workers, still spinning after the upstream ran, starve
            # scikit-learn's BLAS and OpenMP threads (docs/benchmarks.md); 1024-frame mini
            # batches gain little from threads anyway.
            with threadpool_limits(limits=1):
                kmeans.fit(chunk)
            centroids.append(torch.from_numpy(kmeans.cluster_centers_.astype(np.float32)))
            inertia.append(float(kmeans.inertia_) / count)
        settings = {
            **settings,
            "num_codebooks": len(chunks),
            **({} if layer_dims is None else {"codebooks_per_layer": num_codebooks}),
            "codebook_size": codebook_size,
            "dim": dim,
            "seed": seed,
            "num_frames": count,
            "mean_squared_error": inertia,
            "sklearn": sklearn_version,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return cls(centroids, settings)

    def encode(self, frames: Tensor, rows_per_chunk: int = 65536) -> Tensor:
        """Nearest centroid per chunk by squared distance: ``[..., D] -> int64 [..., G]``."""
        if frames.shape[-1] != self.dim:
            raise VqpoolError(
                f"codebook {self.path}: expects {self.dim}-dimensional frames, got {frames.shape[-1]}"
            )
        flat = frames.reshape(-1, self.dim).float()
        codes = torch.empty(
            flat.shape[0], self.num_codebooks, dtype=torch.long, device=frames.device
        )
        start = 0
        for g, centroids in enumerate(self.centroids):
            centroids = centroids.to(frames.device)
            stop = start + centroids.shape[1]
            # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 does not change the argmin.
            half_norms = 0.5 * centroids.square().sum(dim=1)
            for rows in range(0, flat.shape[0], rows_per_chunk):
                chunk = flat[rows : rows + rows_per_chunk, start:stop]
                codes[rows : rows + rows_per_chunk, g] = (half_norms - chunk @ centroids.T).argmin(
                    dim=1
                )
            start = stop
        return codes.reshape(*frames.shape[:-1], self.num_codebooks)

    def describe(self) -> dict[str, Any]:
        return {"path": None if self.path is None else str(self.path), **self.settings}

    def save(self, path: str | os.PathLike) -> Path:
        payload = {"centroids": self.centroids, "settings": self.settings}
        self.path = save_tagged(path, payload, format=FORMAT, version=1)
        return self.path

    @classmethod
    def load(cls, path: str | os.PathLike) -> KMeansCodebook:
        state = load_tagged(
            path, format=FORMAT, version=1, what="codebook", hint=" (fit one with `vqpool codebook fit`)"
        )
        return cls(state["centroids"], state["settings"], Path(path))


def frames_in(
    upstream: Upstream, paths: Sequence[str | os.PathLike], order: Sequence[int], enough: int
) -> int:
    """Frames ``upstream`` gives for the files at ``paths`` taken in ``order``, counted from the
    audio headers until ``enough`` are found (the rest need not be read): what a sample of at
    most ``enough`` frames will see."""
    import soundfile

    from vqpool.errors import BadAudioError

    total = 0
    for i in order:
        if total >= enough:
            break
        if not os.path.isfile(paths[i]):
            raise BadAudioError(paths[i], "no such file", hint=None)
        try:
            info = soundfile.info(str(paths[i]))
        except Exception as error:  # soundfile raises several types for unreadable files
            raise BadAudioError(paths[i], f"unreadable audio ({error})", hint=None) from error
        samples = round(info.frames * upstream.sample_rate / info.samplerate)
        total += max(0, int(upstream.num_frames(samples)))
    return min(total, enough)


def sample_frames(
    upstream: Upstream,
    paths: Sequence[str | os.PathLike],
    *,
    layer: str | Sequence[str],
    max_frames: int,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> tuple[Tensor, int]:
    """Up to ``max_frames`` frames of ``layer`` (a list: several layers side by side) from
    utterances drawn at random, and how many were read.

    Utterances are read in a seeded random order until enough frames are in, so the model only
    runs on what the sample needs; the surplus of the last batch is dropped at random. The
    progress (`vqpool.progress`) counts to the frames the sample will really see.
    """
    from vqpool.audio import load_audio
    from vqpool.errors import BadAudioError

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(paths), generator=generator).tolist()
    expected = frames_in(upstream, paths, order, max_frames) if progress else max_frames
    used = 0

    def outputs() -> Iterator[tuple[Tensor, Tensor]]:
        nonlocal used
        for start in range(0, len(order), batch_size):
            try:
                audio = [
                    torch.from_numpy(
                        load_audio(paths[i], upstream.sample_rate, min_samples=upstream.min_samples)
                    )
                    for i in order[start : start + batch_size]
                ]
            except BadAudioError as error:  # no skipping here: the codebook needs clean audio
                raise error.without_hint() from None
            lengths = torch.tensor([len(waveform) for waveform in audio])
            waveforms = torch.nn.utils.rnn.pad_sequence(audio, batch_first=True)
            frames, frame_lengths, _ = upstream(waveforms, lengths, layers=layer)
            used += len(audio)
            yield frames, frame_lengths

    with progress_bar(progress, total=expected, desc="codebook frames", unit="frame") as bar:
        frames = frame_sample(outputs(), max_frames, generator, stop_when_full=True,
                              on_batch=bar.update)
    return frames, used


def frame_sample(
    outputs: Iterable[tuple[Tensor, Tensor]],
    max_frames: int,
    generator: torch.Generator,
    *,
    stop_when_full: bool,
    on_batch: Callable[[int], Any] | None = None,
) -> Tensor:
    """At most ``max_frames`` of the true frames of ``(frames [B, T, D], frame_lengths [B])``
    batches, on the CPU, drawn at random with ``generator`` where there are more. With
    ``stop_when_full`` the batches are read only until that many are in (callers then give them
    in a random order); ``on_batch`` hears how many of each batch's frames the sample can use."""
    collected: list[Tensor] = []
    total = 0
    for frames, frame_lengths in outputs:
        collected.append(frames[length_mask(frame_lengths, frames.shape[1])].float().cpu())
        if on_batch is not None:
            on_batch(min(collected[-1].shape[0], max_frames - total))
        total += collected[-1].shape[0]
        if stop_when_full and total >= max_frames:
            break
    sample = torch.cat(collected) if collected else torch.empty(0, 0)
    if sample.shape[0] > max_frames:
        sample = sample[torch.randperm(sample.shape[0], generator=generator)[:max_frames]]
    return sample


def fit_codebook(
    upstream: Upstream,
    paths: Sequence[str | os.PathLike],
    *,
    layer: str = "mean",
    layers: Sequence[str] | None = None,
    num_codebooks: int | None = None,
    codebook_size: int = 320,
    max_frames: int = 200_000,
    seed: int = 0,
    progress: bool = True,
) -> KMeansCodebook:
    """Fit a codebook for ``upstream`` on frames of ``layer`` sampled from the audio at ``paths``:
    ``num_codebooks`` (default 2) chunks of that representation. ``layers`` (``["6", "9",
    "12"]``) instead fits a codebook per layer, each cut into ``num_codebooks`` (default 1)
    chunks, so G = len(layers) x num_codebooks: codes that say which frames repeat a unit at
    several depths of the model."""
    if layers is not None:
        layers = [str(one).strip() for one in layers]
        if not layers or len(set(layers)) != len(layers):
            raise ParameterError("layers", f"must name distinct layers; got {layers}")
        dims = [upstream.dim_of(upstream._parse(one)) for one in layers]
    frames, used = sample_frames(
        upstream, paths, layer=layer if layers is None else layers, max_frames=max_frames, seed=seed,
        progress=progress,
    )
    per_layer = {} if layers is None else {"layer": None, "layers": layers, "layer_dims": dims}
    return KMeansCodebook.fit(
        frames,
        num_codebooks=num_codebooks or (2 if layers is None else 1),
        codebook_size=codebook_size,
        seed=seed,
        upstream=upstream.name,
        **({"layer": layer} | per_layer),
        max_frames=max_frames,
        num_utterances=used,
    )
