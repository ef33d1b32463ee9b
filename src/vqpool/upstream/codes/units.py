"""Precomputed unit sequences keyed by utterance id: a folder of ``<id>.npy`` (``[C]`` or
``[C, G]`` integers) or ``<id>.km`` files (one line of integers), a ``.km`` file of lines
``<id> u1 u2 ...``, or a ``.npz`` archive keyed by id; or fairseq's own layout, keyed by audio
file: a ``.km`` label file of ``u1 u2 ...`` lines (``simple_kmeans/dump_km_label.py``) with the
``.tsv`` manifest it was dumped from (its first line the root folder, then ``relative/path<TAB>
samples`` in the order of the ``.km`` lines), given as ``manifest`` or lying beside it with the
same name."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vqpool.errors import ParameterError, VqpoolError
from vqpool.rows import canonical_path
from vqpool.upstream.codes.base import CodesFrom, CodeSource, exact_rate
from vqpool.upstream.codes.registry import CodesContext, register_code_source

UNIT_SUFFIXES = (".npy", ".km")


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


def _reads_units(request: CodesFrom) -> bool:
    path = Path(request.spec).expanduser()
    if path.is_dir():
        return not (path / "config.json").is_file()  # that is a model's folder
    return path.suffix in (".km", ".npz", ".npy") or request.manifest is not None


def _units(request: CodesFrom, context: CodesContext) -> UnitCodes:
    path = Path(request.spec).expanduser()
    if request.manifest is not None and path.suffix != ".km":
        raise ParameterError("codes_from.manifest", f"goes with a fairseq .km label file; {path} is not one")
    if path.suffix == ".npy" and path.is_file():
        raise ParameterError("codes_from", f"{path}: a .npy file holds one unit sequence; give a folder "
                             "of <id>.npy files, one per utterance, or a .npz archive keyed by id")
    return UnitCodes(request, request.rate or context.upstream.frame_rate)


register_code_source("units", _units, matches=_reads_units, suffixes=(".km", ".npz", ".npy"),
                     builtin=True, description="precomputed units: a folder of <id>.npy / <id>.km, "
                     "a .km file, a .npz archive, or fairseq's .km with its .tsv")
