"""Audio to utterance vectors in one call: `Encoder` (upstream, codes and a pooling method).

Its batching, fp16 rounding and long-audio windows are `vqpool.batching`'s, shared with
`vqpool.extract`, so ``Encoder.encode`` gives the vectors ``vqpool bench`` scores.
"""

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from vqpool._version import versions
from vqpool.audio import conform
from vqpool.batching import forward, plan_batches, prefetched, windows
from vqpool.defaults import DEFAULT_METHOD
from vqpool.errors import ParameterError, VqpoolError
from vqpool.io import load_tagged, save_tagged
from vqpool.pooling import CorpusStats, PoolOptions, frame_weights, get_method, pool
from vqpool.progress import progress_bar
from vqpool.sources import Clip, clips_of
from vqpool.upstream import (
    CodesFrom,
    CodeSource,
    KMeansCodebook,
    Upstream,
    load_upstream,
    with_codes,
)
from vqpool.upstream.codebook import frame_sample
from vqpool.upstream.codes import OwnCodebook

BUNDLE_FORMAT = "vqpool-encoder"
BUNDLE_VERSION = 1


class Encoder:
    """Audio in, one vector per utterance out: upstream + codes + pooling method in one object.

    ``upstream`` is any spec `vqpool.upstream.load_upstream` takes (``"logmel"``, ``"ge2e"``, a
    hub id or a local folder) or a loaded `Upstream`; ``codebook`` (a path or `KMeansCodebook`)
    gives codes to upstreams without a quantizer; ``codes_from`` takes them from a codec, another
    upstream's codebook, a km.bin or precomputed units instead (`vqpool.upstream.codes`); ``stats`` (a path or `CorpusStats`) serves the
    methods that use corpus statistics; what is missing, `fit` provides. ``options`` are pooling
    options (``semantics``, ``a``, ``smoothing``, or a registered method's own).
    """

    def __init__(
        self,
        upstream: str | Upstream = "logmel",
        method: str = DEFAULT_METHOD,
        *,
        layers: str = "mean",
        codebook: str | os.PathLike | KMeansCodebook | None = None,
        codes_from: str | os.PathLike | CodesFrom | CodeSource | None = None,
        stats: str | os.PathLike | CorpusStats | None = None,
        device: str | torch.device = "cpu",
        allow_download: bool = False,
        batch_seconds: float = 60.0,
        chunk_seconds: float = 30.0,
        overlap_seconds: float = 2.0,
        prefetch: int = 2,
        **options: Any,
    ) -> None:
        record = get_method(method)
        if record.trained:
            raise ParameterError("method", f"{method!r} is a supervised head, trained by the probe; "
                                 "an encoder pools without training")
        self.method = record.name
        self.options = PoolOptions.of(**options)
        for name, value in (("batch_seconds", batch_seconds), ("chunk_seconds", chunk_seconds)):
            if not value > 0:
                raise ParameterError(name, f"must be positive; got {value}")
        if not 0 <= overlap_seconds < chunk_seconds / 2:
            raise ParameterError("overlap_seconds", f"must lie in [0, chunk_seconds / 2); got {overlap_seconds}")
        self.batch_seconds, self.chunk_seconds, self.overlap_seconds = batch_seconds, chunk_seconds, overlap_seconds
        self.prefetch = prefetch  # batches of audio read and resampled by threads while the model runs
        if isinstance(upstream, Upstream):
            self.upstream = with_codes(upstream, codebook=codebook, codes_from=codes_from,
                                       allow_download=allow_download)
        else:
            self.upstream = load_upstream(upstream, layers=layers, codebook=codebook, codes_from=codes_from,
                                          device=device, allow_download=allow_download)
        self.stats = CorpusStats.load(stats) if isinstance(stats, (str, os.PathLike)) else stats

    def __repr__(self) -> str:
        return (f"Encoder({self.upstream.name!r}, method={self.method!r}, layers={self.upstream.layers!r}, "
                f"codes={'yes' if self.upstream.num_codebooks else 'none'}, "
                f"stats={'fitted' if self.stats is not None else 'none'})")

    @property
    def dim(self) -> int:
        """Size of the vectors `encode` returns."""
        return get_method(self.method).output_dim(self.upstream.dim)

    @property
    def missing(self) -> list[str]:
        """What the method needs and this encoder lacks ("codes", "stats"): `fit` provides it."""
        record = get_method(self.method)
        return [what for what, lacking in (("codes", record.needs_codes and not self.upstream.num_codebooks),
                                           ("stats", record.needs_stats and self.stats is None)) if lacking]

    def encode(
        self,
        inputs: Any,
        *,
        sample_rate: int | None = None,
        audio_column: str = "audio",
        return_tensors: Literal["np", "pt"] = "np",
        progress: bool | None = None,
    ) -> np.ndarray | Tensor:
        """fp32 ``[N, D']`` vectors, one per input in input order (inputs: see `vqpool.sources`;
        ``sample_rate`` for waveform arrays). ``progress`` draws a bar (default: on long inputs)."""
        self.check_ready()
        clips = clips_of(inputs, sample_rate, audio_column=audio_column)
        vectors = torch.zeros(len(clips), self.dim)
        for rows, frames, lengths, codes in self._batches(clips, progress):
            vectors[rows] = pool(frames, lengths, codes, self.method, self.stats,
                                 **self.options.as_dict()).float().cpu()
        return vectors.numpy() if return_tensors == "np" else vectors

    def frames(self, inputs: Any, *, sample_rate: int | None = None, audio_column: str = "audio",
               progress: bool | None = None) -> list[tuple[Tensor, Tensor | None]]:
        """Per input, fp32 frames ``[T, D]`` and codes ``[T, G]`` (None without codes)."""
        clips = clips_of(inputs, sample_rate, audio_column=audio_column)
        found: list[tuple[Tensor, Tensor | None]] = [None] * len(clips)  # type: ignore[list-item]
        for rows, frames, lengths, codes in self._batches(clips, progress):
            for k, row in enumerate(rows.tolist()):
                n = int(lengths[k])
                found[row] = (frames[k, :n].float().cpu(), None if codes is None else codes[k, :n].cpu())
        return found

    def frame_weights(self, inputs: Any, *, sample_rate: int | None = None, audio_column: str = "audio",
                      progress: bool | None = None) -> list[Tensor]:
        """Per input, the method's fp32 frame weights ``[T]`` (summing to 1)."""
        self.check_ready()
        clips = clips_of(inputs, sample_rate, audio_column=audio_column)
        found: list[Tensor] = [None] * len(clips)  # type: ignore[list-item]
        for rows, _, lengths, codes in self._batches(clips, progress):
            weights = frame_weights(lengths, codes, self.method, self.stats, **self.options.as_dict())
            for k, row in enumerate(rows.tolist()):
                found[row] = weights[k, : int(lengths[k])].cpu()
        return found

    def fit(self, inputs: Any, *, sample_rate: int | None = None, audio_column: str = "audio",
            num_codebooks: int = 2, codebook_size: int = 320, max_frames: int = 200_000,
            seed: int = 0, progress: bool | None = None) -> "Encoder":
        """Fit on ``inputs`` (a training split) what the method needs and the upstream lacks: a
        k-means codebook (``num_codebooks`` x ``codebook_size`` centroids on up to ``max_frames``
        frames) and corpus statistics. Returns the encoder; a no-op when nothing is missing."""
        missing = self.missing
        if not missing:
            return self
        clips = clips_of(inputs, sample_rate, audio_column=audio_column)
        if "codes" in missing:
            generator = torch.Generator().manual_seed(seed)
            batches = ((frames, lengths) for _, frames, lengths, _ in self._batches(clips, progress))
            pooled = frame_sample(batches, max_frames, generator, stop_when_full=False)
            codebook = KMeansCodebook.fit(pooled, num_codebooks=num_codebooks, codebook_size=codebook_size,
                                          seed=seed, upstream=self.upstream.name, layer=self.upstream.layers,
                                          max_frames=max_frames, num_utterances=len(clips))
            self.upstream.use_codes(OwnCodebook(codebook, self.upstream))
        if self.stats is None and get_method(self.method).needs_stats:
            self.stats = CorpusStats.fit(
                ((frames, lengths, codes) for _, frames, lengths, codes in self._batches(clips, progress)),
                codebook_size=self.upstream.codebook_size, progress=False,
            )
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """One self-contained file: the upstream spec and layers, codebook, statistics, method,
        options and library versions (the model's weights stay where the spec names them)."""
        codebook = self.upstream.codebook
        return save_tagged(path, {
            "upstream": self.upstream.name,
            "layers": self.upstream.layers,
            "method": self.method,
            "options": self.options.as_dict(),
            "codebook": None if codebook is None else {"centroids": codebook.centroids,
                                                       "settings": codebook.settings},
            # a reference (a codec folder, a file): rebuilt from where it names, like the upstream
            "codes_from": None if self.upstream.code_source is None else self.upstream.code_source.request.to_json(),
            "stats": None if self.stats is None else self.stats.state(),
            "batching": {"batch_seconds": self.batch_seconds, "chunk_seconds": self.chunk_seconds,
                         "overlap_seconds": self.overlap_seconds},
            "versions": versions(),
        }, format=BUNDLE_FORMAT, version=BUNDLE_VERSION)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu",
             allow_download: bool = False) -> "Encoder":
        """The encoder `save` wrote."""
        state = load_tagged(path, format=BUNDLE_FORMAT, version=BUNDLE_VERSION, what="encoder bundle")
        codebook = state["codebook"]
        return cls(
            state["upstream"], state["method"], layers=state["layers"],
            codebook=None if codebook is None else KMeansCodebook(codebook["centroids"], codebook["settings"]),
            codes_from=None if state.get("codes_from") is None else CodesFrom(**state["codes_from"]),
            stats=None if state["stats"] is None else CorpusStats.from_state(state["stats"]),
            device=device, allow_download=allow_download, **state["batching"], **state["options"],
        )

    def check_ready(self) -> None:
        """Raise, naming `fit`, while the method lacks a codebook or statistics."""
        if self.missing:
            what = " and ".join({"codes": "a k-means codebook (this upstream has no quantizer)",
                                 "stats": "corpus statistics"}[m] for m in self.missing)
            raise VqpoolError(f"method {self.method!r} needs {what}: call encoder.fit(training inputs) "
                              "first, or pass codebook= / stats=")

    def _batches(self, clips: Sequence[Clip], progress: bool | None) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor | None]]:
        """``(rows, frames [B, T, D] fp16, lengths [B], codes | None)`` covering every clip once:
        clips up to ``chunk_seconds`` in planned batches, longer ones stitched from windows."""
        short = [k for k, clip in enumerate(clips) if clip.duration <= self.chunk_seconds]
        long = [k for k, clip in enumerate(clips) if clip.duration > self.chunk_seconds]
        show = progress if progress is not None else len(clips) > 64 or bool(long)
        with progress_bar(show, total=len(clips), desc="encoding", unit="utt") as bar:
            planned = [[short[j] for j in batch] for batch in plan_batches(
                [clips[k] for k in short], self.batch_seconds, pads_safely=self.upstream.pads_safely)]
            def read(rows: list[int]) -> list[np.ndarray]:
                return [self._wave(clips[k]) for k in rows]

            for rows, waves in zip(planned, prefetched(read, planned, self.prefetch), strict=True):
                where = [clips[k].meta.get("path") or clips[k].id for k in rows]
                frames, lengths, codes = forward(self.upstream, waves, where, [clips[k].id for k in rows],
                                                 paths=[clips[k].meta.get("path") for k in rows])
                yield torch.tensor(rows), frames, lengths, codes
                bar.update(len(rows))
            for k in long:
                frames, codes = self._stitched(clips[k])
                yield (torch.tensor([k]), frames[None], torch.tensor([frames.shape[0]], device=frames.device),
                       None if codes is None else codes[None])
                bar.update(1)

    def _stitched(self, clip: Clip) -> tuple[Tensor, Tensor | None]:
        """Frames ``[T, D]`` and codes of a long clip, run window by window (module docstring)."""
        upstream = self.upstream
        hop = upstream.sample_rate / upstream.frame_rate
        if abs(hop - round(hop)) > 1e-6:
            raise VqpoolError(f"upstream {upstream.name}: {hop} samples per frame; windows need a whole number")
        hop = round(hop)
        wave = self._wave(clip)
        chunk = round(self.chunk_seconds * upstream.sample_rate)
        # The overlap covers at least one frame's receptive field, so every kept frame is whole.
        overlap = max(round(self.overlap_seconds * upstream.sample_rate), upstream.min_samples)
        cut = windows(len(wave), int(upstream.num_frames(len(wave))), hop, chunk, overlap)
        per_batch = max(1, int(self.batch_seconds // self.chunk_seconds))
        frames: list[Tensor] = []
        codes: list[Tensor] = []
        for start in range(0, len(cut), per_batch):
            group = cut[start : start + per_batch]
            out, _, out_codes = forward(upstream, [wave[w.start : w.stop] for w in group], [clip.id] * len(group),
                                        [clip.id] * len(group), [w.start // hop for w in group],
                                        paths=[clip.meta.get("path")] * len(group))
            for row, w in enumerate(group):
                keep = slice(w.first - w.start // hop, w.last - w.start // hop)
                frames.append(out[row, keep])
                if out_codes is not None:
                    codes.append(out_codes[row, keep])
        return torch.cat(frames), torch.cat(codes) if codes else None

    def _wave(self, clip: Clip) -> np.ndarray:
        data, rate = clip.read()
        return conform(data, rate, self.upstream.sample_rate, clip.meta.get("path") or clip.id,
                       min_samples=self.upstream.min_samples)

