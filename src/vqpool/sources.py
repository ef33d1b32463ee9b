"""Audio inputs of every kind users hold, as one list of `Clip`s the encoder batches.

A clip knows its length before its audio is read (so batches can be planned longest first) and
reads its waveform on demand. Accepted inputs: file paths; a 1-D numpy/torch waveform or a list
of them, or a 2-D ``[n, samples]`` batch, with ``sample_rate``; a Hugging Face ``datasets``
Dataset or column with an ``Audio`` feature (decoded ``{"array", "sampling_rate"}`` dicts,
undecoded ``{"path", "bytes"}`` dicts, or the decoder objects of datasets 4+); a lhotse
``CutSet`` (or any cuts with ``load_audio``); a vqpool manifest (its CSV path or its rows).
"""

import io
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from vqpool.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, implausible_rate
from vqpool.errors import BadAudioError, ParameterError, import_extra

Read = Callable[[], tuple[np.ndarray, int]]
"""``() -> (samples [N] or [N, channels] float32, sample rate)``."""

# libsndfile's log of a data chunk that holds less than its header says: "data : 32000 (should be 15978)".
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


@dataclass(frozen=True)
class Clip:
    """One utterance to encode: its length at the source, and how to read it."""

    id: str
    num_samples: int
    sample_rate: int
    read: Read = field(repr=False, compare=False)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    damage: str | None = field(default=None, compare=False)  # e.g. a data chunk cut short

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


def clips_of(inputs: Any, sample_rate: int | None = None, *, audio_column: str = "audio") -> list[Clip]:
    """Every input as a `Clip`, in input order (see the module docstring for what is taken)."""
    if _is_array(inputs) and np.ndim(_numpy(inputs)) == 2:  # a batch [n, samples]
        return [_array_clip(row, sample_rate, f"#{k}") for k, row in enumerate(_numpy(inputs))]
    if _is_array(inputs):
        return [_array_clip(inputs, sample_rate, "#0")]
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs)
        if path.suffix.lower() == ".csv":  # a vqpool manifest
            from vqpool.manifest import read_manifest

            return [row_clip(row) for row in read_manifest(path)]
        return [_path_clip(path, path.stem)]
    if hasattr(inputs, "features") and hasattr(inputs, "column_names"):  # datasets.Dataset
        return dataset_clips(inputs, audio_column=audio_column, label_column=None)
    if not isinstance(inputs, Iterable):
        raise ParameterError("inputs", f"must be audio paths, arrays, a dataset or cuts; got {type(inputs).__name__}")
    return [_clip(item, sample_rate, k) for k, item in enumerate(inputs)]


def _clip(item: Any, sample_rate: int | None, k: int) -> Clip:
    if isinstance(item, (str, os.PathLike)):
        return _path_clip(Path(item), Path(item).stem)
    if _is_array(item):
        return _array_clip(item, sample_rate, f"#{k}")
    if hasattr(item, "load_audio") and hasattr(item, "sampling_rate"):  # a lhotse cut
        return _cut_clip(item)
    if isinstance(item, dict) and "path" in item and "array" not in item and "bytes" not in item:
        return row_clip(item)  # a manifest row
    return _hf_clip(item, f"#{k}", {})


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("torch")


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return value.detach().cpu().numpy()


def _array_clip(array: Any, sample_rate: int | None, name: str) -> Clip:
    if sample_rate is None:
        raise ParameterError("sample_rate", "is needed with waveform arrays (their rate in Hz)")
    samples = np.asarray(_numpy(array), dtype=np.float32)
    if samples.ndim != 1:
        raise ParameterError("inputs", f"{name}: a waveform must be 1-D [samples]; got shape {samples.shape}")
    return Clip(name, samples.shape[0], int(sample_rate), lambda: (samples, int(sample_rate)))


def _path_clip(path: Path, name: str, meta: dict[str, Any] | None = None) -> Clip:
    if not path.is_file():
        raise BadAudioError(path, "no such file")
    try:
        info = soundfile.info(str(path))
    except Exception as error:  # soundfile raises several types for unreadable files
        raise BadAudioError(path, f"unreadable audio ({error})") from error
    return Clip(name, info.frames, _sample_rate(info, path), lambda: _read_file(path),
                {"path": str(path), **(meta or {})}, _damage(info))


def _sample_rate(info: Any, where: object) -> int:
    """The rate of a file's header, refused before any sample is read when it is implausible."""
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise BadAudioError(where, implausible_rate(info.samplerate))
    return int(info.samplerate)


def _damage(info: Any) -> str | None:
    """What libsndfile noticed is wrong with the file beyond its header: a data chunk shorter
    than the header says (a cut download or copy), which it reads as a shorter file."""
    for declared, present in _SHORT_CHUNK.findall(getattr(info, "extra_info", "") or ""):
        # 0 and 0xFFFFFFFF are what streaming writers put before they know the size.
        if int(declared) not in (0, 0xFFFFFFFF) and int(declared) > int(present):
            return (f"truncated: its header promises {int(declared)} bytes of audio data, the "
                    f"file holds {int(present)}")
    return None


def _read_file(source: Any) -> tuple[np.ndarray, int]:
    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises several types for unreadable files
        raise BadAudioError(getattr(source, "name", source), f"unreadable audio ({error})") from error
    return data, rate


def row_clip(row: dict[str, Any]) -> Clip:
    """A manifest row (``path``, and ``id`` and metadata) as a clip."""
    return _path_clip(Path(row["path"]), str(row.get("id") or Path(row["path"]).stem),
                      {k: v for k, v in row.items() if k != "path"})


def _cut_clip(cut: Any) -> Clip:
    """A lhotse cut: its own offset and duration into the recording, channels mixed later."""
    def read() -> tuple[np.ndarray, int]:
        return np.asarray(cut.load_audio(), dtype=np.float32).T, int(cut.sampling_rate)  # [N, C]

    meta: dict[str, Any] = {}
    supervisions = getattr(cut, "supervisions", None) or []
    if supervisions:
        first = supervisions[0]
        meta = {k: v for k in ("speaker", "text", "language") if (v := getattr(first, k, None)) is not None}
    return Clip(str(cut.id), int(cut.num_samples), int(cut.sampling_rate), read, meta)


def _hf_clip(item: Any, name: str, meta: dict[str, Any]) -> Clip:
    """One value of a datasets ``Audio`` column, whichever form the installed version gives."""
    if hasattr(item, "get_all_samples"):  # datasets 4+: a torchcodec AudioDecoder
        samples = item.get_all_samples()
        data = np.asarray(samples.data.cpu().numpy(), dtype=np.float32).T  # [channels, N] -> [N, C]
        rate = int(samples.sample_rate)
        return Clip(name, data.shape[0], rate, lambda: (data, rate), meta)
    if isinstance(item, dict) and item.get("array") is not None:
        data = np.asarray(item["array"], dtype=np.float32)
        data = data if data.ndim == 1 else data.T  # datasets gives [channels, N] when not mono
        rate = int(item["sampling_rate"])
        return Clip(name, data.shape[0], rate, lambda: (data, rate), meta)
    if isinstance(item, dict) and item.get("bytes") is not None:
        blob = bytes(item["bytes"])
        where = item.get("path") or name
        try:
            info = soundfile.info(io.BytesIO(blob))
        except Exception as error:  # soundfile raises several types for unreadable files
            raise BadAudioError(where, f"unreadable audio ({error})") from error
        return Clip(name, info.frames, _sample_rate(info, where), lambda: _read_file(io.BytesIO(blob)),
                    {"path": item.get("path"), **meta}, _damage(info))
    if isinstance(item, dict) and item.get("path"):
        return _path_clip(Path(item["path"]), name, meta)
    raise ParameterError("inputs", f"{name}: not audio (a path, a waveform, a datasets Audio value "
                         f"or a lhotse cut); got {type(item).__name__}")


def _text(value: Any) -> str | None:
    """Manifest metadata is text (as in a CSV); None stays None."""
    return None if value is None else str(value)


def dataset_clips(dataset: Any, *, audio_column: str = "audio", label_column: str | None = "label",
                  split_column: str | None = None, id_column: str = "id") -> list[Clip]:
    """The rows of a Hugging Face ``Dataset`` (or each split of a ``DatasetDict``) as clips with
    manifest metadata: ``id`` (the ``id_column``, else the split and row number), ``label``
    (class names for a ``ClassLabel``), ``split`` (the ``split_column``, else the split's name)."""
    if hasattr(dataset, "keys") and not hasattr(dataset, "column_names"):  # a DatasetDict
        return [clip for split in dataset for clip in _dataset_split(
            dataset[split], split, audio_column, label_column, split_column, id_column)]
    return _dataset_split(dataset, None, audio_column, label_column, split_column, id_column)


def _dataset_split(dataset: Any, split: str | None, audio_column: str, label_column: str | None,
                   split_column: str | None, id_column: str) -> list[Clip]:
    for parameter, column in (("audio_column", audio_column), ("label_column", label_column),
                              ("split_column", split_column)):
        if column is not None and column not in dataset.column_names:
            if parameter == "label_column" and column == "label":
                label_column = None  # the default: a dataset without labels is fine
                continue
            raise ParameterError(parameter, f"{column!r} is not a column of the dataset (it has "
                                 f"{', '.join(dataset.column_names)})")
    names = getattr(dataset.features.get(label_column), "int2str", None) if label_column else None
    columns = {name: dataset[name] for name in (label_column, split_column, id_column)
               if name is not None and name in dataset.column_names}
    clips = []
    for k, item in enumerate(dataset[audio_column]):
        label = columns[label_column][k] if label_column else None
        meta = {
            "label": _text(names(label) if names is not None and label is not None else label),
            "split": _text(columns[split_column][k] if split_column else split),
        }
        name = _text(columns[id_column][k]) if id_column in columns else (f"{split}-{k:06d}" if split else f"{k:06d}")
        clip = _hf_clip(item, name, {key: value for key, value in meta.items() if value is not None})
        clips.append(clip)
    return clips


def cut_clips(cuts: Iterable[Any], *, label_column: str | None = None,
              split_column: str | None = None) -> list[Clip]:
    """Lhotse cuts as clips: each cut's own slice of its recording; ``speaker`` from its first
    supervision, ``label`` and ``split`` from the attribute or ``custom`` field of that name on
    the supervision or the cut."""
    clips = []
    for cut in cuts:
        clip = _cut_clip(cut)
        meta = dict(clip.meta)
        for key, field_name in (("label", label_column), ("split", split_column)):
            if field_name is not None:
                meta[key] = _text(_cut_field(cut, field_name))
        clips.append(Clip(clip.id, clip.num_samples, clip.sample_rate, clip.read,
                          {k: v for k, v in meta.items() if v is not None}))
    return clips


def _cut_field(cut: Any, name: str) -> Any:
    for holder in [*(getattr(cut, "supervisions", None) or [])[:1], cut]:
        if getattr(holder, name, None) is not None:
            return getattr(holder, name)
        custom = getattr(holder, "custom", None) or {}
        if name in custom:
            return custom[name]
    raise ParameterError("label_column", f"cut {cut.id} has no field {name!r} (on its first "
                         "supervision or itself, as an attribute or in custom)")


def load_hf_dataset(source: str | os.PathLike, *, allow_download: bool = False) -> Any:
    """A dataset saved with ``save_to_disk`` (a folder), or one in the local cache by name;
    a name is only downloaded when ``allow_download``."""
    datasets = import_extra("datasets", "hf")
    if Path(source).is_dir():
        return datasets.load_from_disk(str(source))
    offline = datasets.config.HF_DATASETS_OFFLINE
    datasets.config.HF_DATASETS_OFFLINE = offline or not allow_download  # the cache only
    try:
        return datasets.load_dataset(str(source))
    except Exception as error:  # datasets raises many types for a name it cannot find
        hint = "" if allow_download else "; it is looked up in the local cache only ({allow_download} fetches it)"
        raise ParameterError("hf_dataset", f"{str(source)!r}: {type(error).__name__}: {error}{hint}") from None
    finally:
        datasets.config.HF_DATASETS_OFFLINE = offline


def load_cuts(path: str | os.PathLike) -> Any:
    """A lhotse ``CutSet`` manifest (``cuts.jsonl.gz``)."""
    lhotse = import_extra("lhotse", "lhotse")
    if not Path(path).is_file():
        raise ParameterError("cuts", f"{str(path)!r}: no such file")
    return lhotse.CutSet.from_file(path)
