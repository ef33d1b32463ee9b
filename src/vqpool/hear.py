"""vqpool as a HEAR module: ``load_model``, ``get_scene_embeddings``, ``get_timestamp_embeddings``.

The HEAR API (hear-eval-kit, ``hear-validator vqpool.hear --model BUNDLE``) passes a batch of
clips zero-padded to one length and no lengths. vqpool treats each clip's trailing digital
silence (exact zeros after its last non-zero sample) as that padding: scene embeddings pool
only the frames before it (at least one frame). Timestamp embeddings are the upstream's frames
over the whole padded clip, every ``1 / frame_rate`` seconds, each stamped with the centre of
its receptive field in milliseconds.
"""

import os
from typing import Any

import torch
from torch import Tensor, nn

from vqpool.encode import Encoder


class HearModel(nn.Module):
    """An `Encoder` with the attributes HEAR asks for. ``to(device)`` moves the upstream by
    rebuilding the encoder there (upstreams are not modules themselves)."""

    def __init__(self, encoder: Encoder, source: str | os.PathLike | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.source = source
        self.sample_rate = int(encoder.upstream.sample_rate)
        self.scene_embedding_size = int(encoder.dim)
        self.timestamp_embedding_size = int(encoder.upstream.dim)

    def to(self, *args: Any, **kwargs: Any) -> "HearModel":
        device = kwargs.get("device", next((a for a in args if isinstance(a, (str, torch.device))), None))
        if device is not None and torch.device(device) != self.encoder.upstream.device:
            self.encoder = _encoder(self.source, device=device, method=self.encoder.method,
                                    **self.encoder.options.as_dict())
        return self


def load_model(model_file_path: str = "", **options: Any) -> HearModel:
    """The model of an `Encoder.save` bundle, or with an empty path a default that works
    offline: GE2E frames (log-mel where resemblyzer is not installed) pooled by ``method``
    (default "ap"; methods that need codes or statistics need a fitted bundle)."""
    source = model_file_path or None
    return HearModel(_encoder(source, **options), source)


def _encoder(source: str | os.PathLike | None, *, device: str | torch.device = "cpu",
             method: str = "ap", **options: Any) -> Encoder:
    if source:
        return Encoder.load(source, device=device)
    import importlib.util

    upstream = "ge2e" if importlib.util.find_spec("resemblyzer") is not None else "logmel"
    encoder = Encoder(upstream, method, device=device, **options)
    encoder.check_ready()  # a method needing codes or statistics needs a fitted bundle
    return encoder


def content_lengths(audio: Tensor, min_samples: int) -> Tensor:
    """Samples before each clip's trailing zeros ``[n]``, at least ``min_samples``."""
    nonzero = audio != 0
    last = torch.where(nonzero.any(1), audio.shape[1] - nonzero.flip(1).int().argmax(1), 0)
    return last.clamp(min=min(min_samples, audio.shape[1]))


def get_scene_embeddings(audio: Tensor, model: HearModel) -> Tensor:
    """fp32 ``[n, scene_embedding_size]``: each clip pooled over its frames before its
    trailing silence."""
    lengths = content_lengths(audio, model.encoder.upstream.min_samples).tolist()
    clips = [row[:length] for row, length in zip(audio.detach().float().cpu(), lengths, strict=True)]
    vectors = model.encoder.encode(clips, sample_rate=model.sample_rate, return_tensors="pt")
    return vectors.to(audio.device)


def get_timestamp_embeddings(audio: Tensor, model: HearModel) -> tuple[Tensor, Tensor]:
    """fp32 frames ``[n, T, timestamp_embedding_size]`` and their times in ms ``[n, T]``."""
    upstream = model.encoder.upstream
    frames = model.encoder.frames(audio.detach().float().cpu(), sample_rate=model.sample_rate)
    embeddings = torch.stack([clip_frames for clip_frames, _ in frames])
    hop = upstream.sample_rate / upstream.frame_rate
    centres = (torch.arange(embeddings.shape[1]) * hop + upstream.min_samples / 2) / upstream.sample_rate
    timestamps = (centres * 1000).expand(embeddings.shape[0], -1)
    return embeddings.to(audio.device), timestamps.to(audio.device)
