"""What every upstream shares: layer selection, codes, and batching that never changes results.

An upstream's network gives a stack of frame-level representations ("layers": the hidden states
of a transformer, the outputs of an LSTM's layers, or a single log-mel layer) plus, for some
models, named extra representations (``"cnn"``) and codes from the model's own quantizer. The
``layers`` option picks what the frames are; the codes come from one `CodeSource`
(`vqpool.upstream.codes`): the model's quantizer, a k-means codebook fitted on it, or elsewhere.
"""

from __future__ import annotations

import platform
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

from vqpool._version import __version__
from vqpool.arguments import check_device
from vqpool.errors import ParameterError, VqpoolError
from vqpool.tensors import length_mask

if TYPE_CHECKING:
    from vqpool.upstream.codebook import KMeansCodebook
    from vqpool.upstream.codes import CodeSource

LAYER_SPEC_HELP = "'mean' (all layers), 'last', one index 'N', or a list 'a,b,c' (their mean)"


class Keys(NamedTuple):
    """What a batch's waveforms are, for code sources that look codes up (precomputed units):
    each one's utterance id, where its first frame lies in that utterance, and its audio file."""

    ids: Sequence[str] | None = None
    first_frames: Sequence[int] | None = None
    paths: Sequence[str | None] | None = None

    def take(self, rows: list[int]) -> Keys:
        return Keys(*(None if given is None else [given[row] for row in rows] for given in self))


class UpstreamOutput(NamedTuple):
    frames: Tensor  # fp32 [B, T, D], zero beyond each utterance's frame length
    frame_lengths: Tensor  # int64 [B]
    codes: Tensor | None  # int64 [B, T, G], zero beyond each frame length; None without codes


@dataclass
class Hidden:
    """A network's raw output for one batch, before any layer is selected."""

    layers: list[Tensor]  # each [B, T, D]
    codes: Tensor | None = None  # the model's own quantizer codes [B, T, G]
    named: dict[str, Tensor] | None = None  # extra representations by name, e.g. "cnn"


def parse_layers(spec: str, num_layers: int, named: tuple[str, ...] = ()) -> str | tuple[int, ...]:
    """Resolve a layer spec to a named representation or the layer indices to average."""
    spec = spec.strip()
    if spec in named:
        return spec
    if spec == "mean":
        return tuple(range(num_layers))
    if spec == "last":
        return (num_layers - 1,)
    try:
        indices = tuple(int(part) for part in spec.split(","))
    except ValueError:
        indices = ()
    if not indices or any(not -num_layers <= index < num_layers for index in indices):
        extra = "".join(f", or '{name}'" for name in named)
        raise VqpoolError(
            f"layers {spec!r}: expected {LAYER_SPEC_HELP}{extra}; indices run from 0 to "
            f"{num_layers - 1} (this upstream has {num_layers} layers)"
        )
    return tuple(index % num_layers for index in indices)


Selection = str | tuple[int, ...]  # a named representation, or the layers to average


def select_layers(hidden: Hidden, selection: Selection | list[Selection]) -> Tensor:
    """The chosen representation in fp32: a named one, or the element-wise mean of some layers;
    a list of selections gives their concatenation (a codebook fitted on several layers)."""
    if isinstance(selection, list):
        return torch.cat([select_layers(hidden, one) for one in selection], dim=-1)
    if isinstance(selection, str):
        return hidden.named[selection].float()
    # A running sum, not a stack: 25 layers of a large model would need 25 more copies.
    total = hidden.layers[selection[0]].float().clone()
    for index in selection[1:]:
        total += hidden.layers[index]
    return total / len(selection)


class Upstream(ABC):
    """Waveforms -> frames (+ codes). Subclasses set the attributes below and implement ``_forward``.

    Outputs stay on ``self.device``; callers move them to the CPU when they store them.
    """

    name: str  # the spec as given: "logmel", "ge2e", a hub id or a local directory
    kind: str  # "logmel", "ge2e" or "transformers"
    sample_rate: int
    frame_rate: float  # frames per second
    num_layers: int
    layer_dim: int  # dimension of each of ``num_layers`` layers
    named_dims: dict[str, int]  # dimension of each extra named representation
    pads_safely: bool = True  # False: zero padding changes the frames, so batch equal lengths only
    min_samples: int  # the shortest input giving one frame
    codes: CodeSource | None = None  # where the frames' codes come from (`use_codes`)

    def __init__(self, *, layers: str = "mean", device: str | torch.device = "cpu") -> None:
        self.layers = layers
        self.selection = self._parse(layers)
        self.device = check_device(device)
        self.codes = self.own_codes()

    def own_codes(self) -> CodeSource | None:
        """The codes the network gives itself (a quantizer's), if any."""
        return None

    def use_codes(self, source: CodeSource | None) -> None:
        """Take the codes from ``source`` from now on (`vqpool.upstream.codes`), aligned to this
        upstream's frames; None: the network's own, if any."""
        self.codes = self.own_codes() if source is None else source

    @property
    def num_codebooks(self) -> int | None:
        return None if self.codes is None else self.codes.num_codebooks

    @property
    def codebook_size(self) -> int | None:
        return None if self.codes is None else self.codes.codebook_size

    @property
    def codebook(self) -> KMeansCodebook | None:
        """The k-means codebook fitted on this upstream that gives its codes (``codebook=``)."""
        return self.codes.codebook if self.codes is not None and self.codes.kind == "codebook" else None

    @property
    def code_source(self) -> CodeSource | None:
        """The source of codes from elsewhere (``codes_from=``), if the codes come from one."""
        return self.codes if self.codes is not None and self.codes.from_elsewhere else None

    @property
    def dim(self) -> int:
        return self.dim_of(self.selection)

    def dim_of(self, selection: Selection | list[Selection]) -> int:
        if isinstance(selection, list):
            return sum(map(self.dim_of, selection))
        return self.named_dims[selection] if isinstance(selection, str) else self.layer_dim

    def _parse(self, layers: str | Sequence[str]) -> Selection | list[Selection]:
        if not isinstance(layers, str):
            return [parse_layers(one, self.num_layers, tuple(self.named_dims)) for one in layers]
        return parse_layers(layers, self.num_layers, tuple(self.named_dims))

    @abstractmethod
    def num_frames(self, num_samples: Tensor | int) -> Tensor | int:
        """Frames the upstream gives for an input of ``num_samples`` samples."""

    @abstractmethod
    def _forward(self, waveforms: Tensor, lengths: Tensor) -> Hidden:
        """Run the network on zero-padded fp32 waveforms ``[B, N]`` on ``self.device``."""

    def describe(self) -> dict[str, Any]:
        """JSON-able description for store headers: enough to redo the extraction."""
        import numpy

        return {
            "spec": self.name,
            "kind": self.kind,
            "layers": self.layers,
            "num_layers": self.num_layers,
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "pads_safely": self.pads_safely,
            "codes": None if self.codes is None else self.codes.kind,
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "codebook": None if self.codebook is None else self.codebook.describe(),
            # only present with codes from elsewhere, so headers of other stores do not change
            **({} if self.code_source is None else {"code_source": self.code_source.describe()}),
            "versions": {
                "vqpool": __version__,
                "torch": torch.__version__,
                "numpy": numpy.__version__,
                "python": platform.python_version(),
            },
        }

    @torch.inference_mode()
    def __call__(
        self,
        waveforms: Tensor,
        lengths: Tensor,
        *,
        layers: str | Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        first_frames: Sequence[int] | None = None,
        paths: Sequence[str | None] | None = None,
    ) -> UpstreamOutput:
        """Frames and codes of a zero-padded batch ``[B, N]`` with true ``lengths`` ``[B]``.

        ``layers`` overrides the upstream's frame selection for this call (codebook fitting
        uses it; a list concatenates several). Models that do not pad safely are run once per
        distinct length, so the result never depends on how utterances were batched.
        ``ids`` name the utterances, for a code source of precomputed units; ``first_frames``
        (default 0) is where each waveform's first frame lies in its utterance, when a waveform
        is a window of a longer one (units are looked up for the whole utterance); ``paths``
        are the audio files, for units keyed by file (fairseq's ``.km`` with its ``.tsv``).
        """
        selection = self.selection if layers is None else self._parse(layers)
        waveforms = torch.as_tensor(waveforms, dtype=torch.float32).to(self.device)
        lengths = torch.as_tensor(lengths, dtype=torch.long).to(self.device)
        if waveforms.ndim != 2 or waveforms.shape[0] == 0 or lengths.shape != waveforms.shape[:1]:
            raise VqpoolError(
                f"expected waveforms [B, N] with B >= 1 and lengths [B], got "
                f"{tuple(waveforms.shape)} and {tuple(lengths.shape)}"
            )
        if lengths.min() < self.min_samples or lengths.max() > waveforms.shape[1]:
            raise VqpoolError(
                f"lengths must lie between {self.min_samples} samples (one frame) and the padded "
                f"length {waveforms.shape[1]}; got {lengths.tolist()}"
            )
        batch = waveforms.shape[0]
        keys = Keys(ids, first_frames, paths)
        for name, given in zip(Keys._fields, keys, strict=True):
            if given is not None and len(given) != batch:
                raise ParameterError(name, f"has {len(given)} entries for a batch of {batch}")
        if self.pads_safely or bool((lengths == lengths[0]).all()):
            return self._run(waveforms[:, : int(lengths.max())], lengths, selection, keys)
        return self._run_by_length(waveforms, lengths, selection, keys)

    def _run(
        self, waveforms: Tensor, lengths: Tensor, selection: Selection | list[Selection],
        keys: Keys | None = None,
    ) -> UpstreamOutput:
        # Padding is zeroed so what lies beyond an utterance never depends on the caller.
        waveforms = waveforms * length_mask(lengths, waveforms.shape[1])
        hidden = self._forward(waveforms, lengths)
        frame_lengths = self.num_frames(lengths)
        num_frames = int(frame_lengths.max())
        valid = length_mask(frame_lengths, num_frames)
        frames = select_layers(hidden, selection)[:, :num_frames] * valid[..., None]
        codes = None
        if self.codes is not None:
            found = self.codes.frame_codes(self, waveforms, lengths, hidden, frame_lengths, keys or Keys())
            codes = found * valid[..., None]
        return UpstreamOutput(frames, frame_lengths, codes)

    def _run_by_length(
        self, waveforms: Tensor, lengths: Tensor, selection: Selection | list[Selection], keys: Keys
    ) -> UpstreamOutput:
        frame_lengths = self.num_frames(lengths)
        batch, num_frames = lengths.shape[0], int(frame_lengths.max())
        frames = torch.zeros(batch, num_frames, self.dim_of(selection), device=self.device)
        codes = None
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            part = self._run(waveforms[rows, :length], lengths[rows], selection, keys.take(rows.tolist()))
            frames[rows, : part.frames.shape[1]] = part.frames
            if part.codes is not None:
                if codes is None:
                    codes = torch.zeros(
                        batch, num_frames, part.codes.shape[2], dtype=torch.long, device=self.device
                    )
                codes[rows, : part.codes.shape[1]] = part.codes
        return UpstreamOutput(frames, frame_lengths, codes)
