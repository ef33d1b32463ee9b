"""Code sources: the codes pooled with an upstream's frames, taken from somewhere else.

By default an upstream's codes come from its own quantizer (wav2vec 2.0) or from a k-means
codebook fitted on it. ``codes_from`` (``vqpool extract --codes-from SPEC``) takes them instead
from one of these `CodeSource`\\ s, each at its own rate:

- ``codec``: a transformers audio codec checkpoint (``EncodecModel``, ``DacModel``,
  ``MimiModel``; a local folder, or a hub id when downloads are allowed): the ``audio_codes`` of
  its encoder, every quantizer level or the first ``levels`` (G = levels, V = its codebook size);
- ``kmeans``: a vqpool k-means codebook (`KMeansCodebook`) fitted on *any* upstream and layer(s),
  a per-layer codebook included; or a fairseq ``km.bin`` (a joblib-pickled scikit-learn KMeans)
  applied to a named upstream layer;
- ``units``: precomputed unit sequences keyed by utterance id: a folder of ``<id>.npy`` (``[C]``
  or ``[C, G]`` integers) or ``<id>.km`` files (one line of integers), a ``.km`` file of lines
  ``<id> u1 u2 ...``, or a ``.npz`` archive keyed by id; or fairseq's own layout, keyed by audio
  file: a ``.km`` label file of ``u1 u2 ...`` lines (``simple_kmeans/dump_km_label.py``) with the
  ``.tsv`` manifest it was dumped from (its first line the root folder, then ``relative/path<TAB>
  samples`` in the order of the ``.km`` lines), given as ``manifest`` or lying beside it with the
  same name.

**Alignment** (`align_codes`, one rule for every source). A stream at R frames per second
(R = sample rate / hop) gives frame t the time span [t / R, (t + 1) / R) from the first sample;
frame t of the upstream takes the code j whose span holds its centre (t + 1/2) / R_frames:
``j = floor((2t + 1) R_codes / (2 R_frames))``, computed exactly in integers from the rates as
fractions. A centre on a boundary between two codes takes the later one (spans are half-open);
a centre past the last code takes the last code (a codec may give one code fewer than the
frames reach). So wav2vec 2.0's 50 Hz frames take EnCodec's 75 Hz codes 0, 2, 3, 5, 6, 8, ...
(frame centres at 10, 30, 50 ms fall in code spans [0, 13.3), [26.7, 40), [40, 53.3) ms) and
Mimi's 12.5 Hz codes four frames at a time. Receptive fields are not modelled: both streams are
taken at their hop grid. A code source at another sample rate gets the audio resampled for it
with soxr (from the upstream's rate: a 16 kHz upstream's audio holds nothing above 8 kHz).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import pickle
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from vqpool.code_labels import kmeans_name
from vqpool.errors import ParameterError, VqpoolError
from vqpool.rows import canonical_path
from vqpool.tensors import length_mask

if TYPE_CHECKING:
    from vqpool.upstream.base import Hidden, Keys, Upstream
    from vqpool.upstream.codebook import KMeansCodebook

log = logging.getLogger(__name__)

ALIGNMENT = "centre"
ALIGNMENT_RULE = (
    "frame t takes code floor((2t + 1) R_codes / (2 R_frames)), the code whose span holds the "
    "frame's centre; a centre on a boundary takes the later code, past the last code the last one"
)
CODECS = {"encodec": "EncodecModel", "dac": "DacModel", "mimi": "MimiModel"}
UNIT_SUFFIXES = (".npy", ".km")
# A unit file may hold a few units more or fewer than its rate predicts (edge rounding of the
# model that made them); more than this is a wrong rate or the wrong file.
UNIT_SLACK = 2


@dataclass(frozen=True)
class CodesFrom:
    """Where codes come from (`load_code_source`): ``spec`` is a codec checkpoint (folder or
    hub id), a codebook file, a ``km.bin``, or a folder / file of units. ``levels``: the first
    quantizer levels of a codec (default all); ``upstream`` and ``layer``: what a ``km.bin`` is
    applied to (default upstream: the frames' own); ``rate``: units per second of precomputed
    units (default: the frames' rate); ``manifest``: the fairseq ``.tsv`` whose files the lines
    of a ``.km`` label file follow (default: the ``.tsv`` beside it, if any)."""

    spec: str
    levels: int | None = None
    upstream: str | None = None
    layer: str | None = None
    rate: float | None = None
    manifest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def exact_rate(rate: float | Fraction) -> Fraction:
    """A rate in frames per second as an exact fraction (50, 75, 12.5, 44100/512 ...)."""
    return Fraction(rate).limit_denominator(1 << 20)


def align_codes(
    codes: Tensor,
    code_lengths: Tensor,
    code_rate: Fraction,
    frame_lengths: Tensor,
    num_frames: int,
    frame_rate: Fraction,
    first_frames: Tensor | None = None,
) -> Tensor:
    """Codes ``[B, C, G]`` at ``code_rate`` (each row's first ``code_lengths`` true) -> the
    ``[B, num_frames, G]`` codes of frames at ``frame_rate`` (the module's rule), 0 beyond each
    row's ``frame_lengths``. ``first_frames [B]`` (default 0) number the rows' frames from there
    (a window of a longer utterance whose codes are the whole utterance's)."""
    ratio = code_rate / frame_rate
    frames = torch.arange(num_frames, device=codes.device)[None]
    if first_frames is not None:
        frames = frames + first_frames.to(codes.device)[:, None]
    index = ((2 * frames + 1) * ratio.numerator) // (2 * ratio.denominator)
    index = torch.minimum(index, (code_lengths.to(codes.device) - 1)[:, None]).clamp_min(0)
    index = index.expand(codes.shape[0], -1)
    aligned = codes.gather(1, index[..., None].expand(-1, -1, codes.shape[2]))
    return aligned * length_mask(frame_lengths.to(codes.device), num_frames)[..., None]


class CodeSource(ABC):
    """Codes for waveforms (or utterance ids) at the source's own rate.

    Subclasses set the attributes and implement `codes`; `frame_codes` aligns them to an
    upstream's frames. ``describe()`` goes into the store header (``code_source``), so a store
    made with other codes is never taken for this one.
    """

    kind: str  # "codec", "kmeans" or "units"
    name: str  # short, for tables: "encodec_24khz", "kmeans(hubert-base-ls960 L6)"
    request: CodesFrom  # what `load_code_source` was asked for (saved by `Encoder.save`)
    sample_rate: int | None  # of the audio it reads; None for units (they read none)
    rate: Fraction  # codes per second
    num_codebooks: int
    codebook_size: int
    pads_safely: bool = False  # False: run once per distinct length, so batching changes nothing
    # The field of `Keys` it looks codes up by ("ids" or "paths") instead of computing them.
    looks_up: str | None = None

    @property
    def label(self) -> str:
        """``"encodec_24khz x8"``: the name and the number of codebooks, for titles."""
        return f"{self.name} x{self.num_codebooks}"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "label": self.label,
            "request": self.request.to_json(),
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "sample_rate": self.sample_rate,
            "code_rate": float(self.rate),
            "code_rate_fraction": f"{self.rate.numerator}/{self.rate.denominator}",
            "alignment": ALIGNMENT,
            "alignment_rule": ALIGNMENT_RULE,
        }

    @abstractmethod
    def codes(self, waveforms: Tensor, lengths: Tensor, ids: list[str] | None = None) -> tuple[Tensor, Tensor]:
        """``(codes [B, C, G] int64, code_lengths [B])`` of zero-padded waveforms ``[B, N]`` at
        `sample_rate` with true ``lengths`` (or of utterances ``ids``)."""

    def frame_codes(self, upstream: Upstream, waveforms: Tensor, lengths: Tensor, hidden: Hidden,
                    frame_lengths: Tensor, keys: Keys) -> Tensor:
        """The codes of ``upstream``'s frames for this batch, ``[B, T, G]`` on its device."""
        num_frames = int(frame_lengths.max())
        if self.looks_up is not None:
            looked_up = getattr(keys, self.looks_up)
            if looked_up is None or any(key is None for key in looked_up):
                what = {"ids": "utterance id", "paths": "audio file"}[self.looks_up]
                raise VqpoolError(f"{self.request.spec}: precomputed units are looked up by "
                                  f"{what}, and this batch came without them")
            codes, code_lengths = self.codes(waveforms, lengths, list(looked_up))
        else:
            codes, code_lengths = self.codes(*self._resampled(waveforms, lengths, upstream.sample_rate))
        if int(code_lengths.min()) < 1:
            row = int(code_lengths.argmin())
            raise VqpoolError(f"{self.request.spec}: gave no codes for a clip of {int(lengths[row])} "
                              f"samples at {upstream.sample_rate} Hz (too short for this code source)")
        first = None if keys.first_frames is None else torch.as_tensor(list(keys.first_frames))
        frame_rate = exact_rate(upstream.frame_rate)
        if self.looks_up is not None and first is None:
            self._check_counts(getattr(keys, self.looks_up), code_lengths, frame_lengths, frame_rate)
        return align_codes(codes.to(upstream.device), code_lengths, self.rate, frame_lengths,
                           num_frames, frame_rate, first)

    def _resampled(self, waveforms: Tensor, lengths: Tensor, rate: int) -> tuple[Tensor, Tensor]:
        if rate == self.sample_rate:
            return waveforms, lengths
        import soxr

        waves = [soxr.resample(row[:n].cpu().numpy(), rate, self.sample_rate, quality="HQ")
                 for row, n in zip(waveforms, lengths.tolist(), strict=True)]
        new_lengths = torch.tensor([len(wave) for wave in waves])
        padded = torch.zeros(len(waves), int(new_lengths.max()))
        for row, wave in enumerate(waves):
            padded[row, : len(wave)] = torch.from_numpy(np.asarray(wave, dtype=np.float32))
        return padded.to(waveforms.device), new_lengths.to(waveforms.device)

    def _check_counts(self, ids: Any, code_lengths: Tensor, frame_lengths: Tensor, frame_rate: Fraction) -> None:
        expected = frame_lengths.cpu().double() * float(self.rate / frame_rate)
        off = (code_lengths.cpu().double() - expected).abs() > UNIT_SLACK + 0.02 * expected
        if bool(off.any()):
            row = int(off.nonzero()[0])
            raise VqpoolError(
                f"{self.request.spec}: utterance {list(ids)[row]!r} has {int(code_lengths[row])} "
                f"units, but {int(frame_lengths[row])} frames at {float(frame_rate):g} Hz span "
                f"about {float(expected[row]):.1f} units at {float(self.rate):g} per second: give "
                "the units' rate (code_rate) or check that the file belongs to this audio"
            )

    def _by_length(self, encode: Any, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Run ``encode(waveforms [b, n]) -> [b, C, G]`` once per distinct length, unpadded, so
        that the codes never depend on the batch (codecs change near a zero-padded end)."""
        parts: dict[int, tuple[Tensor, Tensor]] = {}
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            parts[length] = (rows, encode(waveforms[rows, :length]))
        longest = max(codes.shape[1] for _, codes in parts.values())
        found = torch.zeros(len(lengths), longest, self.num_codebooks, dtype=torch.long,
                            device=waveforms.device)
        code_lengths = torch.zeros(len(lengths), dtype=torch.long)
        for rows, codes in parts.values():
            found[rows, : codes.shape[1]] = codes.long()
            code_lengths[rows.cpu()] = codes.shape[1]
        return found, code_lengths


class CodecCodes(CodeSource):
    """The residual vector quantizer codes of an EnCodec, DAC or Mimi checkpoint's encoder,
    exactly as ``model.encode`` gives them for the unpadded waveform."""

    kind = "codec"

    def __init__(self, request: CodesFrom, *, device: torch.device, allow_download: bool) -> None:
        import transformers

        from vqpool.upstream.hf import _missing_model, load_config

        self.request, spec = request, request.spec
        local_only = not allow_download
        config = load_config(spec, allow_download, parameter="codes_from")
        if config.model_type not in CODECS:
            raise ParameterError("codes_from", f"{spec!r} is a {config.model_type!r} model, not an "
                                 f"audio codec ({', '.join(CODECS)})")
        self.model_type = config.model_type
        if self.model_type == "encodec" and config.chunk_length_s is not None:
            raise ParameterError("codes_from", f"{spec!r} encodes in overlapping chunks "
                                 f"(chunk_length_s={config.chunk_length_s}, like encodec_48khz), "
                                 "whose codes have no single time grid; use a codec without chunks")
        if getattr(config, "audio_channels", 1) != 1:
            raise ParameterError("codes_from", f"{spec!r} encodes {config.audio_channels} channels; "
                                 "vqpool feeds mono audio")
        cls = getattr(transformers, CODECS[self.model_type])
        try:
            self.model = cls.from_pretrained(spec, local_files_only=local_only,
                                             trust_remote_code=False).float().to(device).eval()
        except OSError as error:
            raise _missing_model(spec, allow_download, error, parameter="codes_from") from error
        self.available = {"encodec": lambda: config.num_quantizers, "dac": lambda: config.n_codebooks,
                          "mimi": lambda: config.num_quantizers}[self.model_type]()
        levels = request.levels or self.available
        if not 1 <= levels <= self.available:
            raise ParameterError("codes_from.levels", f"is {levels}: {spec!r} has {self.available} "
                                 "quantizer levels")
        self.num_codebooks = levels
        self.codebook_size = int(config.codebook_size)
        self.sample_rate = int(config.sampling_rate)
        hop = config.frame_size if self.model_type == "mimi" else config.hop_length
        self.rate = Fraction(self.sample_rate, int(hop))
        self.name = Path(spec.rstrip("/")).name
        if self.model_type == "encodec":  # the smallest bandwidth with enough levels
            quantizer = self.model.quantizer
            self.bandwidth = min(bw for bw in config.target_bandwidths
                                 if quantizer.get_num_quantizers_for_bandwidth(bw) >= levels)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": {
            "class": type(self.model).__name__, "name_or_path": self.model.config.name_or_path,
            "levels_available": self.available}}

    @torch.inference_mode()
    def codes(self, waveforms: Tensor, lengths: Tensor, ids: list[str] | None = None) -> tuple[Tensor, Tensor]:
        return self._by_length(self._encode, waveforms, lengths)

    def _encode(self, waveforms: Tensor) -> Tensor:
        """``[b, n]`` equal-length waveforms -> ``[b, C, G]``."""
        inputs = waveforms[:, None, :]
        if self.model_type == "encodec":
            codes = self.model.encode(inputs, bandwidth=self.bandwidth).audio_codes[0]
        elif self.model_type == "dac":
            codes = self.model.encode(inputs, n_quantizers=self.num_codebooks).audio_codes
        else:
            codes = self.model.encode(inputs, num_quantizers=self.num_codebooks).audio_codes
        return codes[:, : self.num_codebooks].transpose(1, 2)


class UpstreamCodes(CodeSource):
    """A k-means codebook applied to the layer(s) of the upstream it was fitted on: that
    upstream runs on the audio (the frames' own model, once, when it is the same one)."""

    kind = "kmeans"
    pads_safely = True  # the code upstream batches safely itself

    def __init__(self, request: CodesFrom, codebook: KMeansCodebook, upstream: Upstream,
                 shared: bool, file: dict[str, Any] | None = None) -> None:
        self.request, self.codebook, self.upstream, self.shared = request, codebook, upstream, shared
        self.selections = upstream.codebook_input(codebook)
        self.num_codebooks, self.codebook_size = codebook.num_codebooks, codebook.codebook_size
        self.sample_rate = upstream.sample_rate
        self.rate = exact_rate(upstream.frame_rate)
        self.file = file or {}
        self.name = kmeans_name(codebook.upstream, codebook.layers)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "upstream": self.codebook.upstream, "layers": list(self.codebook.layers),
                "codebook": self.codebook.describe(), **self.file}

    def codes(self, waveforms: Tensor, lengths: Tensor, ids: list[str] | None = None) -> tuple[Tensor, Tensor]:
        output = self.upstream(waveforms, lengths, layers=self.codebook.layers[0])
        return output.codes, output.frame_lengths

    def frame_codes(self, upstream: Upstream, waveforms: Tensor, lengths: Tensor, hidden: Hidden,
                    frame_lengths: Tensor, keys: Keys) -> Tensor:
        if not self.shared:
            return super().frame_codes(upstream, waveforms, lengths, hidden, frame_lengths, keys)
        from vqpool.upstream.base import select_layers

        # the frames' own model: its hidden states hold the codebook's layers already
        return self.codebook.encode(select_layers(hidden, self.selections)[:, : int(frame_lengths.max())])


class UnitCodes(CodeSource):
    """Precomputed unit sequences keyed by utterance id (or by audio file, for fairseq's
    ``.km`` + ``.tsv``), read once into memory (int32)."""

    kind = "units"
    sample_rate = None
    pads_safely = True

    def __init__(self, request: CodesFrom, rate: float) -> None:
        self.request, path = request, Path(request.spec)
        self.manifest = fairseq_manifest(path, request.manifest)
        if self.manifest is None:
            self.units, digest = read_units(path)
            self.looks_up = "ids"
        else:
            self.units, digest = read_fairseq_units(path, self.manifest)
            self.looks_up = "paths"
        if not self.units:
            raise ParameterError("codes_from", f"{path}: holds no unit sequences ({', '.join(UNIT_SUFFIXES)} "
                                 "files, a .km file of `id u1 u2 ...` lines, or a .npz archive)")
        shapes = {units.shape[1] for units in self.units.values()}
        if len(shapes) > 1:
            raise VqpoolError(f"{path}: unit sequences with different numbers of codebooks {sorted(shapes)}")
        low = min(int(units.min()) for units in self.units.values() if units.size)
        if low < 0:
            raise VqpoolError(f"{path}: units must be non-negative; found {low}")
        self.num_codebooks = shapes.pop()
        self.codebook_size = 1 + max(int(units.max()) for units in self.units.values() if units.size)
        if not rate > 0:
            raise ParameterError("codes_from.rate", f"must be positive; got {rate}")
        self.rate = exact_rate(rate)
        self.sha256 = digest
        self.name = path.name

    def describe(self) -> dict[str, Any]:
        manifest = {} if self.manifest is None else {"manifest": str(self.manifest.resolve())}
        return {**super().describe(), "path": str(Path(self.request.spec).resolve()), **manifest,
                "sha256": self.sha256, "num_utterances": len(self.units)}

    def codes(self, waveforms: Tensor, lengths: Tensor, ids: list[str] | None = None) -> tuple[Tensor, Tensor]:
        found = []
        for key in ids or []:
            if self.looks_up == "paths":
                key = canonical_path(key)
            if key not in self.units:
                raise VqpoolError(self._missing(key))
            found.append(torch.from_numpy(self.units[key]))
        code_lengths = torch.tensor([len(units) for units in found])
        if int(code_lengths.min()) == 0:
            raise VqpoolError(f"{self.request.spec}: utterance {ids[int(code_lengths.argmin())]!r} has no units")
        codes = torch.nn.utils.rnn.pad_sequence(found, batch_first=True).long()
        return codes, code_lengths


    def _missing(self, key: str) -> str:
        if self.looks_up == "paths":
            return f"{self.request.spec}: no units for {key} (not a file of {self.manifest})"
        unkeyed = all(name.isdigit() for name in self.units)
        return (f"{self.request.spec}: no units for utterance {key!r}"
                f"{unkeyed_hint(Path(self.request.spec)) if unkeyed else ''}")


def unkeyed_hint(path: Path) -> str:
    """What to say of a ``.km`` file read as ``id u1 u2 ...`` lines whose "ids" are integers."""
    return ("; its lines start with units, not ids, as fairseq's .km labels do: give the .tsv "
            "manifest they were dumped from (codes_from.manifest), or put it beside as "
            f"{path.with_suffix('.tsv').name}")


def fairseq_manifest(path: Path, manifest: str | None) -> Path | None:
    """The ``.tsv`` whose audio files a fairseq ``.km`` label file follows line by line: the
    one asked for, else the one beside it with the same name; None for units keyed by id."""
    if manifest is not None:
        if path.suffix != ".km" or not path.is_file():
            raise ParameterError("codes_from.manifest", f"goes with a .km label file; {path} is not one")
        if not Path(manifest).is_file():
            raise ParameterError("codes_from.manifest", f"{manifest}: no such file")
        return Path(manifest)
    beside = path.with_suffix(".tsv")
    return beside if path.suffix == ".km" and path.is_file() and beside.is_file() else None


def read_fairseq_units(path: Path, manifest: Path) -> tuple[dict[str, np.ndarray], str]:
    """``{audio file (canonical path): int32 [C, 1]}`` from a ``.km`` label file and the ``.tsv``
    manifest it follows, and the sha256 of both. The manifest's root is taken as fairseq takes
    it (a relative root is relative to the working folder)."""
    lines = [line for line in manifest.read_text().splitlines() if line.strip()]
    if not lines:
        raise VqpoolError(f"{manifest}: empty; a fairseq manifest starts with its root folder")
    root = Path(lines[0].strip())
    files = [canonical_path(root / line.split("\t")[0]) for line in lines[1:]]
    labels = [(number, line) for number, line in enumerate(path.read_text().splitlines(), start=1)
              if line.strip()]
    if len(labels) != len(files):
        raise VqpoolError(f"{path}: {len(labels)} lines of units, but its manifest {manifest} lists "
                          f"{len(files)} files; they must be the same, line for line")
    units: dict[str, np.ndarray] = {}
    for file, (number, line) in zip(files, labels, strict=True):
        if file in units:
            raise VqpoolError(f"{manifest}: {file} is listed twice")
        units[file] = _km_line(line, f"{path}:{number}")
    digest = hashlib.sha256(hashlib.sha256(path.read_bytes()).digest()
                            + hashlib.sha256(manifest.read_bytes()).digest()).hexdigest()
    return units, digest


def read_units(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """``{id: int32 [C, G]}`` and the sha256 of what was read (a folder: of every file's name
    and digest, in name order)."""
    if path.is_dir():
        units: dict[str, np.ndarray] = {}
        digest = hashlib.sha256()
        for file in sorted(p for p in path.iterdir() if p.suffix in UNIT_SUFFIXES and p.is_file()):
            data = file.read_bytes()
            digest.update(file.name.encode() + b"\0" + hashlib.sha256(data).digest())
            if file.stem in units:
                raise VqpoolError(f"{path}: two unit files for utterance {file.stem!r}")
            units[file.stem] = _npy(file) if file.suffix == ".npy" else _km_line(file.read_text(), file)
        return units, digest.hexdigest()
    if not path.is_file():
        raise ParameterError("codes_from", f"{path}: no such file or folder")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: _as_units(archive[key], f"{path}[{key}]") for key in archive.files}, digest
        except (OSError, ValueError) as error:
            raise VqpoolError(f"{path}: not a readable .npz archive of unit arrays ({error})") from None
    units = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, _, rest = line.strip().partition(" ")
        if key in units:
            raise VqpoolError(f"{path}:{number}: a second line for utterance {key!r}"
                              f"{unkeyed_hint(path) if key.isdigit() else ''}")
        units[key] = _km_line(rest, f"{path}:{number}")
    return units, digest


def _npy(file: Path) -> np.ndarray:
    try:
        return _as_units(np.load(file, allow_pickle=False), file)
    except (OSError, ValueError) as error:
        raise VqpoolError(f"{file}: not a readable .npy array of units ({error})") from None


def _km_line(text: str, where: object) -> np.ndarray:
    try:
        return np.array([int(token) for token in text.split()], dtype=np.int32)[:, None]
    except ValueError:
        raise VqpoolError(f"{where}: expected integer units separated by spaces") from None


def _as_units(array: np.ndarray, where: object) -> np.ndarray:
    if array.dtype.kind not in "iu" or array.ndim not in (1, 2):
        raise VqpoolError(f"{where}: expected integer units [C] or [C, G], got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array.reshape(array.shape[0], -1), dtype=np.int32)


# --- fairseq km.bin: a pickle, read without running what it names ---

class _Estimator:
    """Stands in for the scikit-learn KMeans a km.bin holds: keeps its state, runs no code."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def read_km_bin(path: Path) -> np.ndarray:
    """The ``cluster_centers_ [V, D]`` of a joblib-pickled scikit-learn (MiniBatch)KMeans.

    A pickle can name any function to call while it loads. This one is read by joblib's
    unpickler restricted to numpy's array and dtype rebuilding and to joblib's array wrapper;
    the KMeans classes are replaced by a stand-in that only keeps their state, so no
    scikit-learn code runs either. Anything else named (``os.system``, ...) stops the load."""
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]

    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("joblib.numpy_pickle", "NumpyArrayWrapper"): NumpyArrayWrapper}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[module, "_reconstruct"] = multiarray._reconstruct
        allowed[module, "scalar"] = multiarray.scalar
    estimators = {"KMeans", "MiniBatchKMeans"}
    modules = {"sklearn.cluster._kmeans", "sklearn.cluster.k_means_", "sklearn.cluster._k_means"}

    class Restricted(NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module in modules and name in estimators:
                return _Estimator
            if (module, name) in allowed:
                return allowed[module, name]
            raise pickle.UnpicklingError(f"it names {module}.{name}")

    # joblib >= 1.4 takes ensure_native_byte_order; earlier ones do not
    native = {"ensure_native_byte_order": True} if "ensure_native_byte_order" in inspect.signature(
        NumpyUnpickler.__init__).parameters else {}
    try:
        with path.open("rb") as file:
            model = Restricted(str(path), file, **native).load()
    except FileNotFoundError:
        raise ParameterError("codes_from", f"{path}: no such file") from None
    except Exception as error:  # a damaged or hostile pickle fails in many ways
        raise VqpoolError(f"{path}: refused as a km.bin ({error}); only numpy arrays and "
                          "scikit-learn's KMeans / MiniBatchKMeans may be in it") from None
    centers = getattr(model, "state", {}).get("cluster_centers_") if isinstance(model, _Estimator) else None
    if not isinstance(centers, np.ndarray) or centers.ndim != 2 or centers.dtype.kind != "f":
        raise VqpoolError(f"{path}: not a fitted scikit-learn KMeans (no cluster_centers_ [V, D])")
    return centers


# --- from a spec to a source ---

def load_code_source(
    codes_from: str | os.PathLike | CodesFrom | CodeSource,
    upstream: Upstream,
    *,
    allow_download: bool = False,
) -> CodeSource:
    """The code source ``codes_from`` names, for the frames of ``upstream`` (on its device).

    A folder holding ``config.json`` (or a hub id) is a codec; a file in vqpool's codebook
    format a k-means codebook; a ``.bin`` / ``.pkl`` / ``.joblib`` file a fairseq km.bin;
    a folder of ``.npy`` / ``.km`` files, a ``.km`` file or a ``.npz`` archive precomputed units.
    """
    from vqpool.upstream.codebook import KMeansCodebook

    if isinstance(codes_from, CodeSource):
        return codes_from
    request = codes_from if isinstance(codes_from, CodesFrom) else CodesFrom(os.fspath(codes_from))
    path = Path(request.spec).expanduser()
    if not path.exists() and not _looks_like_path(request.spec):
        return CodecCodes(request, device=upstream.device, allow_download=allow_download)
    if path.is_dir() and (path / "config.json").is_file():
        return CodecCodes(request, device=upstream.device, allow_download=allow_download)
    if request.manifest is not None and path.suffix != ".km":
        raise ParameterError("codes_from.manifest", f"goes with a fairseq .km label file; {path} is not one")
    if path.is_dir() or path.suffix in (".km", ".npz"):
        return UnitCodes(request, request.rate or upstream.frame_rate)
    if not path.is_file():
        raise ParameterError("codes_from", f"{request.spec}: no such file or folder")
    if path.suffix == ".npy":
        raise ParameterError("codes_from", f"{path}: a .npy file holds one unit sequence; give a folder "
                             "of <id>.npy files, one per utterance, or a .npz archive keyed by id")
    if path.suffix in (".bin", ".pkl", ".pickle", ".joblib"):
        if request.layer is None:
            raise ParameterError("codes_from.layer", f"is needed with a km.bin ({path}): the upstream "
                                 "layer its k-means was fitted on, e.g. 6")
        centers = read_km_bin(path)
        spec = request.upstream or upstream.name
        codebook = KMeansCodebook([torch.from_numpy(np.asarray(centers, dtype=np.float32))], {
            "upstream": spec, "layer": request.layer, "num_codebooks": 1,
            "codebook_size": int(centers.shape[0]), "dim": int(centers.shape[1]), "format": "km.bin"}, path)
        file = {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "format": "fairseq km.bin"}
    else:
        codebook = KMeansCodebook.load(path)
        file = {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return _upstream_codes(request, codebook, upstream, file, allow_download)


def _upstream_codes(request: CodesFrom, codebook: KMeansCodebook, frames: Upstream,
                    file: dict[str, Any], allow_download: bool) -> UpstreamCodes:
    from vqpool.upstream import load_upstream

    if codebook.upstream == frames.name:
        return UpstreamCodes(request, codebook, frames, shared=True, file=file)
    log.info("codes from %s: running upstream %s as well", request.spec, codebook.upstream)
    other = load_upstream(codebook.upstream, layers=codebook.layers[0], codebook=codebook,
                          device=frames.device, allow_download=allow_download)
    return UpstreamCodes(request, codebook, other, shared=False, file=file)


FILE_SUFFIXES = (".km", ".npz", ".npy", ".bin", ".pkl", ".pickle", ".joblib", ".pt", ".codebook")


def _looks_like_path(spec: str) -> bool:
    """A spec written as a path (not ``namespace/name``): a missing one is an error, not a hub id."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or Path(spec).suffix in FILE_SUFFIXES
