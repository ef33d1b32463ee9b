"""``vqpool.index.Index``: a built index, searched by vectors, utterance ids or audio files."""

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vqpool.errors import ParameterError, VqpoolError
from vqpool.index.format import CODEBOOK, FORMAT, HEADER, VERSION
from vqpool.neighbours import (
    IndexParams,
    import_faiss,
    normalized,
    search,
    set_search_params,
    to_gpu,
)


class Hits(NamedTuple):
    """Nearest rows of each query, best first: ``scores`` fp32 ``[Q, k]`` (cosine similarity),
    ``rows`` int64 ``[Q, k]`` (positions in the index's table, `Index.rows`), ``ids`` the
    utterance ids of those rows."""

    scores: np.ndarray
    rows: np.ndarray
    ids: list[list[str]]


class Index:
    """A folder written by `vqpool.index.build`. ``rows`` holds each indexed utterance's
    ``id``, ``label``, ``split``, ``speaker`` and ``path``; ``header`` what built it."""

    def __init__(self, path: Path, header: dict[str, Any], rows: list[dict[str, str]],
                 faiss_index: Any, *, use_gpu: bool = True) -> None:
        self.path = path
        self.header = header
        self.rows = rows
        self.ids = [row["id"] for row in rows]
        self._position = {row_id: k for k, row_id in enumerate(self.ids)}
        self._cpu_index = faiss_index
        self._faiss = import_faiss()
        self._index = to_gpu(self._faiss, faiss_index) if use_gpu else faiss_index
        self.params = IndexParams(**header["index"])
        self._stats: Any = None
        self._encoders: dict[str, Any] = {}
        self._direct_map = False  # IVF rows are reconstructed through a map made on first use

    @classmethod
    def load(cls, path: str | os.PathLike, *, use_gpu: bool = True) -> "Index":
        """Open an index folder (searched on the GPU when faiss-gpu sees one and ``use_gpu``)."""
        faiss = import_faiss()
        folder = Path(path)
        try:
            header = json.loads((folder / HEADER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise VqpoolError(f"{folder}: not a vqpool index (no readable {HEADER}); build one "
                              "with `vqpool index build`") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise VqpoolError(f"{folder}: not a vqpool index")
        if header.get("version") != VERSION:
            raise VqpoolError(f"{folder}: index format version {header.get('version')}; this "
                              f"vqpool reads version {VERSION}: build it again")
        with open(folder / header["files"]["rows"], newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        faiss_index = faiss.read_index(str(folder / header["files"]["faiss"]))
        if faiss_index.ntotal != len(rows) or len(rows) != header["count"]:
            raise VqpoolError(f"{folder}: damaged index: {faiss_index.ntotal} vectors, "
                              f"{len(rows)} rows, {header['count']} in the header")
        return cls(folder, header, rows, faiss_index, use_gpu=use_gpu)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return (f"Index({str(self.path)!r}, {len(self)} x {self.dim} {self.method} vectors, "
                f"{self.params.describe()})")

    @property
    def dim(self) -> int:
        return int(self.header["dim"])

    @property
    def method(self) -> str:
        return str(self.header["method"])

    @property
    def options(self) -> Any:
        from vqpool.pooling import PoolOptions

        return PoolOptions.of(**self.header["options"])

    @property
    def stats(self) -> Any:
        """The `CorpusStats` the vectors were pooled with (None when the method needs none)."""
        if self._stats is None and self.header.get("stats"):
            from vqpool.pooling import CorpusStats

            self._stats = CorpusStats.load(self.path / self.header["stats"]["file"])
        return self._stats

    def row_of(self, utterance_id: str) -> int:
        """The row of an utterance id of the index."""
        if utterance_id not in self._position:
            raise VqpoolError(f"{self.path}: no utterance {utterance_id!r} in the index")
        return self._position[utterance_id]

    def vector(self, key: int | str) -> np.ndarray:
        """The indexed (normalised) vector of a row or an utterance id: fp32 ``[D]``."""
        row = self.row_of(key) if isinstance(key, str) else int(key)
        if not 0 <= row < len(self):
            raise VqpoolError(f"{self.path}: row {row} is outside 0..{len(self) - 1}")
        if self.params.kind == "ivf" and not self._direct_map:
            self._faiss.extract_index_ivf(self._cpu_index).make_direct_map()
            self._direct_map = True
        return np.asarray(self._cpu_index.reconstruct(row), dtype=np.float32)

    def search(self, vectors: Any, k: int = 10, *, nprobe: int | None = None,
               ef_search: int | None = None) -> Hits:
        """The ``k`` indexed rows most cosine-similar to each query vector (``[D]`` or
        ``[Q, D]``, normalised here), best first; ``nprobe`` (IVF) and ``ef_search`` (HNSW)
        override the index's search parameters for this call. ``k`` beyond the index's size
        gives every row."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ParameterError("k", f"must be a positive integer; got {k!r}")
        queries = normalized(vectors)
        if queries.shape[1] != self.dim:
            raise VqpoolError(f"query vectors are {queries.shape[1]}-dimensional; the index "
                              f"holds {self.dim}-dimensional {self.method} vectors")
        params = self._search_params(nprobe=nprobe, ef_search=ef_search)
        set_search_params(self._faiss, self._index, params)
        try:
            scores, rows = search(self._faiss, self._index, queries, min(k, len(self)))
        finally:
            set_search_params(self._faiss, self._index, self.params)
        ids = [[self.ids[r] for r in found if r >= 0] for found in rows.tolist()]
        return Hits(scores.astype(np.float32), rows.astype(np.int64), ids)

    def _search_params(self, **given: int | None) -> IndexParams:
        own = {"ivf": ("nprobe",), "hnsw": ("ef_search",)}.get(self.params.kind, ())
        values = {}
        for name, value in given.items():
            if value is None:
                continue
            if name not in own:
                kinds = "ivf" if name == "nprobe" else "hnsw"
                raise ParameterError(name, f"applies to {kinds} indexes only; {self.path} is "
                                     f"{self.params.kind}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(name, f"must be a positive integer; got {value!r}")
            values[name] = value
        return replace(self.params, **values)

    # --- queries ---

    def query_vectors(self, queries: Sequence[Any], *, device: str = "cpu"
                      ) -> tuple[np.ndarray, list[str]]:
        """Vectors ``[Q, D]`` and names of the ``queries``: each an audio file (pooled as the
        index's utterances were), a ``.npy`` file of a vector ``[D]`` or vectors ``[Q, D]``,
        an utterance id of the index, or an array."""
        if isinstance(queries, (str, os.PathLike, np.ndarray)):
            queries = [queries]
        names: list[str] = []
        parts: list[np.ndarray | None] = []
        audio: list[tuple[int, str]] = []
        for query in queries:
            if isinstance(query, np.ndarray) or not isinstance(query, (str, os.PathLike)):
                array = normalized(query)
                parts.append(array)
                names += ["vector"] if len(array) == 1 else [f"vector[{i}]" for i in range(len(array))]
                continue
            text = os.fspath(query)
            if os.path.isfile(text) and text.lower().endswith(".npy"):
                array = normalized(_load_npy(text))
                parts.append(array)
                names += [text] if len(array) == 1 else [f"{text}[{i}]" for i in range(len(array))]
            elif os.path.isfile(text):
                audio.append((len(parts), text))
                parts.append(None)
                names.append(text)
            elif text in self._position:
                parts.append(self.vector(text)[None])
                names.append(text)
            else:
                raise ParameterError("queries", f"{text!r} is neither a file (audio or .npy) nor "
                                     f"an utterance id of {self.path}")
        if audio:
            encoded = self.encode([path for _, path in audio], device=device)
            for (slot, _), vector in zip(audio, encoded, strict=True):
                parts[slot] = vector[None]
        if not parts:
            raise ParameterError("queries", "is empty: give an audio file, a .npy file or an id")
        return np.concatenate([p for p in parts if p is not None]), names

    def encode(self, paths: Sequence[str | os.PathLike], *, device: str = "cpu") -> np.ndarray:
        """Audio files pooled as the index's utterances were: a `vqpool.Encoder` with the
        store's upstream, layers and codebook and the index's method, options and statistics
        (frames rounded to fp16 as the store keeps them). fp32 ``[N, D]``, not normalised."""
        result = self.encoder(device).encode([os.fspath(path) for path in paths], progress=False)
        if result.shape[1] != self.dim:
            raise VqpoolError(f"{self.path}: the upstream gives {result.shape[1]}-dimensional "
                              f"vectors, the index holds {self.dim}-dimensional ones")
        return result

    def encoder(self, device: str = "cpu") -> Any:
        """The `vqpool.Encoder` that pools audio as the store's utterances were (made once per
        device): its upstream spec, layers and codebook, and the index's method, options and
        statistics."""
        if device in self._encoders:
            return self._encoders[device]
        from vqpool.encode import Encoder
        from vqpool.upstream import CodesFrom

        described = self.header.get("upstream") or {}
        spec = described.get("spec")
        if not spec:
            raise VqpoolError(f"{self.path}: the store records no upstream: query with vectors "
                              "or ids, not audio")
        source = described.get("code_source")
        codes_from = None
        if source:  # codes from elsewhere: the same source, from the same (absolute) place
            codes_from = CodesFrom(**{**source.get("request", {}), **({"spec": source["path"]} if source.get("path") else {})})
        codebook = self.header.get("codebook")
        codebook_path = None
        if codebook:
            copy = self.path / CODEBOOK
            codebook_path = copy if codebook.get("copy") and copy.is_file() else codebook.get("path")
            if codebook_path is None or not Path(codebook_path).is_file():
                raise VqpoolError(f"{self.path}: the store's codebook {codebook.get('path')} is "
                                  "gone, so audio cannot be coded as the store was; query with "
                                  "vectors or ids")
        encoder = Encoder(spec, self.method, layers=self.header.get("layers") or "mean",
                          codebook=codebook_path, codes_from=codes_from, stats=self.stats,
                          device=device, **self.options.as_dict())
        if encoder.upstream.codes is not None and encoder.upstream.codes.looks_up is not None:
            raise VqpoolError(f"{self.path}: the store's codes are looked up by utterance "
                              f"({encoder.upstream.codes.kind}), which audio queries cannot "
                              "reproduce; query with vectors or ids")
        self._encoders[device] = encoder
        return encoder


def _load_npy(path: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise VqpoolError(f"{path}: not a NumPy vector file ({error})") from None
    if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.number):
        raise VqpoolError(f"{path}: expected a vector [D] or vectors [Q, D], got {array.dtype} "
                          f"{array.shape}")
    return array
