"""``vqpool.export.export``: a store's pooled vectors as NumPy, Parquet or a Hugging Face dataset.

Every format holds one row per utterance, in store order, with its ``id``, ``label``, ``split``
and ``speaker`` and one fp32 vector per method:

- ``npy``: a folder with ``<method>.npy`` (``[N, D']`` fp32, written as a memory map) per
  method, ``ids.csv`` (the rows, aligned with the arrays) and ``export.json`` (what made them);
- ``parquet``: one file, a fixed-size ``float32`` list column per method (readable by pandas,
  pyarrow and ``datasets``); the schema's ``vqpool`` metadata says what made it;
- ``hf``: a ``datasets.Dataset`` saved with ``save_to_disk`` (``datasets.load_from_disk``).

Rows are pooled and written a chunk at a time (corpus statistics are fitted first, on the
training split), so memory holds a chunk, not the corpus. Each output is written under a
temporary name and renamed into place once complete: an interrupted export leaves no file that
looks finished.
"""

import csv
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vqpool._version import __version__
from vqpool.errors import ParameterError, VqpoolError, import_extra
from vqpool.io import atomic_folder, atomic_path, check_replaceable, reserve
from vqpool.pooling import PoolOptions, requested_options
from vqpool.store import open_store
from vqpool.vectors import CHUNK_ROWS, StorePooling, plan_pooling, pooled_chunks, select_rows

if TYPE_CHECKING:
    from vqpool.pooling import CorpusStats

FORMATS = ("npy", "parquet", "hf")
META_COLUMNS = ("id", "label", "split", "speaker")
MARK = "vqpool-export"  # export.json's format; the Parquet schema's and dataset's metadata key
EXTRAS = {"parquet": ("pyarrow", "export"), "hf": ("datasets", "export")}


def export(
    store: Any,
    methods: Sequence[str] | str,
    format: str,
    out: str | os.PathLike,
    *,
    split: str = "train",
    splits: Sequence[str] | str | None = None,
    stats: "CorpusStats | str | os.PathLike | None" = None,
    options: Mapping[str, Any] | PoolOptions | None = None,
    device: str = "cpu",
    max_frames: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    overwrite: bool = False,
    progress: bool = True,
    **pool_options: Any,
) -> "Exported":
    """Pool the rows of ``splits`` (default all) of a store with each of ``methods`` (names or
    "all") and write them to ``out`` in ``format`` ("npy", "parquet" or "hf").

    Corpus statistics are fitted on the rows of ``split`` unless ``stats`` is given; pooling
    options are as for ``bench``. ``chunk_rows`` rows are pooled and written at a time. An
    existing ``out`` is replaced only with ``overwrite`` (and only if an export made it).
    """
    if format not in FORMATS:
        raise ParameterError("format", f"must be one of {', '.join(FORMATS)}; got {format!r}")
    if format in EXTRAS:
        import_extra(*EXTRAS[format], f"the {format} format")
    out = Path(out)
    if format == "parquet" and out.is_dir():
        raise ParameterError("out", f"{out} is a folder; a Parquet export is one file")
    check_replaceable(out, overwrite, lambda path: _is_export(path, format))
    store = open_store(store)
    rows = select_rows(store, splits)
    pooling = plan_pooling(store, methods, split=split, stats=stats,
                           options=requested_options(options, pool_options), max_frames=max_frames,
                           progress=progress)
    clash = [m for m in pooling.methods if m in META_COLUMNS]
    if clash:
        raise VqpoolError(f"method {clash[0]!r} has the name of a metadata column; register "
                          "it under another name to export it")
    chunks = pooled_chunks(pooling, rows, chunk_rows=chunk_rows, max_frames=max_frames,
                           device=device, progress=progress)
    about = _about(pooling, rows, format)
    with closing(chunks):
        {"npy": _write_npy, "parquet": _write_parquet, "hf": _write_hf}[format](
            out, pooling, rows, chunks, about)
    return Exported(out, format, len(rows), dict(pooling.dims))


@dataclass(frozen=True)
class Exported:
    """What `export` wrote: where, in which format, how many rows, each method's vector size."""

    path: Path
    format: str
    num_rows: int
    dims: dict[str, int]

    def __str__(self) -> str:
        methods = ", ".join(f"{method} [{dim}]" for method, dim in self.dims.items())
        return f"{self.path}: {self.num_rows} rows x {methods} ({self.format})"


def _is_export(path: Path, format: str) -> bool:
    """Whether ``path`` is an export this function may replace."""
    try:
        if format == "npy":
            return json.loads((path / "export.json").read_text(encoding="utf-8"))["format"] == MARK
        if format == "parquet":
            import pyarrow.parquet as pq

            return MARK.encode() in (pq.read_schema(path).metadata or {})
        info = json.loads((path / "dataset_info.json").read_text(encoding="utf-8"))
        return MARK in (info.get("description") or "")
    except Exception:  # unreadable, a folder where a file was expected, ...: not ours
        return False


def _about(pooling: StorePooling, rows: list[int], format: str) -> dict[str, Any]:
    header = pooling.store.header
    return {
        "format": MARK,
        "version": 1,
        "output": format,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "vqpool": __version__,
        "store": str(Path(pooling.store.path).resolve()) if getattr(pooling.store, "path", None)
        else None,
        "upstream": header.upstream.spec,
        "layers": header.upstream.layers,
        "task": header.task,
        "methods": {m: pooling.dims[m] for m in pooling.methods},
        "options": pooling.options.as_dict(),
        "stats_split": pooling.stats_split,
        "num_rows": len(rows),
    }


def _meta(store: Any, chunk: list[int]) -> dict[str, list[str | None]]:
    columns: dict[str, list[str | None]] = {c: [] for c in META_COLUMNS}
    for row in chunk:
        meta = store.meta[row]
        for column in META_COLUMNS:
            value = meta.get(column)
            columns[column].append(None if value is None or value == "" else str(value))
    return columns


def file_name(method: str) -> str:
    """A method's name as a file name (registered names may hold any character but commas)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", method)


# --- npy ---

def _write_npy(out: Path, pooling: StorePooling, rows: list[int],
               chunks: Iterator[tuple[list[int], dict[str, np.ndarray]]],
               about: dict[str, Any]) -> None:
    names = {m: f"{file_name(m)}.npy" for m in pooling.methods}
    if len(set(names.values())) != len(names):
        raise VqpoolError(f"methods {', '.join(names)} would share file names; export them apart")
    with atomic_folder(out) as folder:
        arrays = {m: np.lib.format.open_memmap(folder / names[m], mode="w+", dtype=np.float32,
                                               shape=(len(rows), pooling.dims[m]))
                  for m in pooling.methods}
        for name in names.values():
            reserve(folder / name)  # a full disk fails here, not as a bus error in the map
        with open(folder / "ids.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(META_COLUMNS)
            filled = 0
            for chunk, vectors in chunks:
                for method, array in arrays.items():
                    array[filled : filled + len(chunk)] = vectors[method]
                meta = _meta(pooling.store, chunk)
                writer.writerows(zip(*(["" if v is None else v for v in meta[c]]
                                       for c in META_COLUMNS), strict=True))
                filled += len(chunk)
        for array in arrays.values():
            array.flush()
        del arrays
        files = {"ids": "ids.csv", "vectors": names}
        (folder / "export.json").write_text(json.dumps({**about, "files": files}, indent=2) + "\n",
                                            encoding="utf-8")


# --- Arrow: Parquet and the Hugging Face dataset ---

def _schema(pooling: StorePooling, about: dict[str, Any]) -> Any:
    import pyarrow as pa

    fields = [pa.field(c, pa.string()) for c in META_COLUMNS]
    fields += [pa.field(m, pa.list_(pa.float32(), pooling.dims[m])) for m in pooling.methods]
    return pa.schema(fields, metadata={MARK: json.dumps(about)})


def _tables(pooling: StorePooling, chunks: Iterator[tuple[list[int], dict[str, np.ndarray]]],
            schema: Any) -> Iterator[Any]:
    import pyarrow as pa

    for chunk, vectors in chunks:
        columns: dict[str, Any] = dict(_meta(pooling.store, chunk))
        for method in pooling.methods:
            flat = pa.array(np.ascontiguousarray(vectors[method], dtype=np.float32).ravel())
            columns[method] = pa.FixedSizeListArray.from_arrays(flat, pooling.dims[method])
        yield pa.table(columns, schema=schema)


def _write_parquet(out: Path, pooling: StorePooling, rows: list[int],
                   chunks: Iterator[tuple[list[int], dict[str, np.ndarray]]],
                   about: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    schema = _schema(pooling, about)
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for table in _tables(pooling, chunks, schema):
                writer.write_table(table)  # one row group per chunk


def _write_hf(out: Path, pooling: StorePooling, rows: list[int],
              chunks: Iterator[tuple[list[int], dict[str, np.ndarray]]],
              about: dict[str, Any]) -> None:
    import datasets
    import pyarrow as pa

    schema = _schema(pooling, about)
    stream = out.with_name(f".{out.name}.arrow-{os.getpid()}")
    try:
        # An Arrow stream written chunk by chunk, memory-mapped by datasets, then saved.
        with pa.OSFile(str(stream), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for table in _tables(pooling, chunks, schema):
                writer.write_table(table)
        info = datasets.DatasetInfo(description=json.dumps(about),
                                    features=datasets.Features.from_arrow_schema(schema))
        dataset = datasets.Dataset.from_file(str(stream), info=info)
        with atomic_folder(out) as folder, _quiet_datasets():
            dataset.save_to_disk(str(folder))
        del dataset
    finally:
        stream.unlink(missing_ok=True)


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No progress bars from datasets (vqpool draws its own)."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
