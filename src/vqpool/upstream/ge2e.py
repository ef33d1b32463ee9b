"""The GE2E speaker encoder (Resemblyzer's pretrained 3-layer LSTM), run offline inside vqpool.

The weights ship in the ``resemblyzer`` wheel as ``resemblyzer/pretrained.pt``. The package is
located without being imported: its ``__init__`` imports ``webrtcvad``, which needs the
``pkg_resources`` module recent setuptools no longer has. Features follow Resemblyzer's
``audio.py``: volume raised to -30 dBFS (never lowered), then 40-band mel *power* (not log)
frames of 25 ms every 10 ms at 16 kHz, computed like ``librosa.feature.melspectrogram``
(centred, zero-padded frames). Resemblyzer's voice-activity trimming is left out: it would
drop audio, so frames would no longer line up with the utterance. The LSTM is causal, so frames
past an utterance's end never affect its true frames and batches may be zero-padded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

from vqpool.errors import VqpoolError
from vqpool.tensors import length_mask
from vqpool.upstream.base import Hidden
from vqpool.upstream.logmel import MelUpstream
from vqpool.upstream.registry import register_upstream

TARGET_DBFS = -30.0


def weights_path() -> Path:
    """``pretrained.pt`` inside the installed resemblyzer wheel (the package is not imported)."""
    spec = importlib.util.find_spec("resemblyzer")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if path is None or not path.is_file():
        raise VqpoolError(
            "the ge2e upstream reads its weights from the resemblyzer wheel, which is not "
            "installed: pip install 'vqpool[ge2e]'"
        )
    return path


def raise_volume(waveforms: Tensor, lengths: Tensor, target_dbfs: float = TARGET_DBFS) -> Tensor:
    """Scale each utterance up to ``target_dbfs`` RMS over its true samples; never scale down.

    Resemblyzer measures RMS on 16-bit integer scale; the ratio is the same on float samples.
    Silent utterances are left as they are.
    """
    mask = length_mask(lengths, waveforms.shape[1])
    rms = torch.sqrt((waveforms.square() * mask).sum(dim=1) / lengths)
    gain = 10 ** (target_dbfs / 20) / rms
    gain = torch.where((rms > 0) & (gain > 1), gain, torch.ones_like(gain))
    return waveforms * gain[:, None]


class GE2E(MelUpstream):
    name = kind = "ge2e"
    n_mels = 40
    num_layers = 3
    layer_dim = 256
    center = True  # as librosa.feature.melspectrogram, which Resemblyzer used

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.weights = weights_path()
        state = torch.load(self.weights, map_location="cpu", weights_only=True)["model_state"]
        # One single-layer LSTM per layer, so every layer's outputs are frames we can pool.
        self.lstms = nn.ModuleList(
            nn.LSTM(self.n_mels if layer == 0 else self.layer_dim, self.layer_dim, batch_first=True)
            for layer in range(self.num_layers)
        )
        for layer, lstm in enumerate(self.lstms):
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            lstm.load_state_dict({f"{n}_l0": state[f"lstm.{n}_l{layer}"] for n in names})
        self.lstms.to(self.device).eval()

    def _forward(self, waveforms: Tensor, lengths: Tensor) -> Hidden:
        hidden = self.mel_power(raise_volume(waveforms, lengths))
        layers = []
        for lstm in self.lstms:
            hidden, _ = lstm(hidden)
            layers.append(hidden)
        return Hidden(layers=layers)

    def describe(self) -> dict:
        return {**super().describe(), "weights": str(self.weights)}


register_upstream(GE2E.kind, lambda spec, *, allow_download, **options: GE2E(**options), builtin=True,
                  description="the GE2E speaker encoder (weights from the resemblyzer wheel)")
