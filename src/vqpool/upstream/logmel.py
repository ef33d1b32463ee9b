"""Log-mel filterbank frames: the offline upstream that needs no model and no download.

80 mel bands over 25 ms Hann windows every 10 ms at 16 kHz, log-compressed, then normalised to
zero mean and unit variance over all bands of each utterance's true frames. Frames are taken only
where the whole window lies inside the signal, so padding a batch never changes a frame.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vqpool.tensors import length_mask
from vqpool.upstream.base import Hidden, Upstream
from vqpool.upstream.registry import register_upstream


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> Tensor:
    """``[n_mels, n_fft // 2 + 1]`` triangular filters, Slaney-normalised (librosa's defaults)."""
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # equal area per filter
    return torch.from_numpy(filters.astype(np.float32))


def mel_power(
    waveforms: Tensor, filterbank: Tensor, *, n_fft: int, hop: int, center: bool
) -> Tensor:
    """Mel-band power ``[B, T, n_mels]`` of ``[B, N]`` waveforms (periodic Hann window of n_fft).

    ``center`` pads half a window of zeros on each side (librosa's default).
    """
    window = torch.hann_window(n_fft, periodic=True, device=waveforms.device)
    spectrum = torch.stft(
        waveforms,
        n_fft,
        hop_length=hop,
        window=window,
        center=center,
        pad_mode="constant",
        return_complex=True,
    )
    power = spectrum.real.square() + spectrum.imag.square()
    return torch.einsum("mf,bft->btm", filterbank.to(waveforms.device), power)


def normalize_frames(frames: Tensor, frame_lengths: Tensor, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit variance per utterance over all bands of its true frames; padding stays 0.

    One mean and one variance per utterance, not per band: per-band normalisation would make
    every utterance's average frame exactly zero, leaving average pooling nothing to compare.
    """
    mask = length_mask(frame_lengths, frames.shape[1])[..., None]
    count = frame_lengths[:, None, None].to(frames.dtype) * frames.shape[2]
    mean = (frames * mask).sum(dim=(1, 2), keepdim=True) / count
    variance = ((frames - mean).square() * mask).sum(dim=(1, 2), keepdim=True) / count
    return (frames - mean) / torch.sqrt(variance + eps) * mask


class MelUpstream(Upstream):
    """Upstreams over mel-band power of 25 ms Hann windows every 10 ms at 16 kHz."""

    sample_rate = 16000
    n_fft = 400  # 25 ms
    hop = 160  # 10 ms
    frame_rate = sample_rate / hop
    named_dims: dict[str, int] = {}
    n_mels: int
    center: bool  # librosa-style: half a window of zeros at each end, a frame every hop

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.filterbank = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels).to(self.device)

    @property
    def min_samples(self) -> int:
        return 1 if self.center else self.n_fft

    def num_frames(self, num_samples: Tensor | int) -> Tensor | int:
        if self.center:
            return num_samples // self.hop + 1
        return (num_samples - self.n_fft) // self.hop + 1

    def mel_power(self, waveforms: Tensor) -> Tensor:
        filterbank = self.filterbank.to(waveforms.dtype)
        return mel_power(waveforms, filterbank, n_fft=self.n_fft, hop=self.hop, center=self.center)


class LogMel(MelUpstream):
    name = kind = "logmel"
    n_mels = layer_dim = 80
    num_layers = 1
    center = False  # every frame is a whole window of the signal

    def _forward(self, waveforms: Tensor, lengths: Tensor) -> Hidden:
        # float64: bands far below a frame's loudest (above 4 kHz in upsampled 8 kHz audio) sit
        # at fp32 rounding noise, whose log would depend on the batch's FFT plan.
        power = self.mel_power(waveforms.double())
        frames = normalize_frames(torch.log(power.clamp_min(1e-10)), self.num_frames(lengths))
        return Hidden(layers=[frames.float()])

    def describe(self) -> dict:
        return {
            **super().describe(),
            "features": {
                "n_mels": self.n_mels,
                "n_fft": self.n_fft,
                "hop": self.hop,
                "log": True,
                "cmvn": True,
            },
        }


register_upstream(LogMel.kind, lambda spec, *, allow_download, **options: LogMel(**options), builtin=True,
                  description="80 log-mel bands every 10 ms at 16 kHz (no model)")
