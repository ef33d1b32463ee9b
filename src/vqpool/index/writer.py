"""``vqpool.index.build``: a store's pooled vectors into a FAISS index folder (`format`)."""

import csv
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vqpool._version import __version__
from vqpool.defaults import DEFAULT_METHOD
from vqpool.errors import ParameterError
from vqpool.index.format import (
    CODEBOOK,
    FAISS_FILE,
    FORMAT,
    HEADER,
    ROW_COLUMNS,
    ROWS,
    STATS,
    VERSION,
)
from vqpool.io import atomic_folder, check_replaceable
from vqpool.neighbours import (
    import_faiss,
    make_index,
    measure_recall,
    normalized,
    resolve_params,
)
from vqpool.pooling import PoolOptions, requested_options
from vqpool.store import open_store

if TYPE_CHECKING:
    from vqpool.index.reader import Index
    from vqpool.pooling import CorpusStats

log = logging.getLogger(__name__)

RECALL_K = 10


def build(
    store: Any,
    out: str | os.PathLike,
    method: str = DEFAULT_METHOD,
    *,
    split: str = "train",
    splits: Sequence[str] | str | None = None,
    kind: str = "flat",
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int | None = None,
    ef_construction: int | None = None,
    ef_search: int | None = None,
    stats: "CorpusStats | str | os.PathLike | None" = None,
    options: Mapping[str, Any] | PoolOptions | None = None,
    recall_queries: int = 1000,
    seed: int = 0,
    device: str = "cpu",
    max_frames: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **pool_options: Any,
) -> "Index":
    """Pool a store's rows with ``method``, L2-normalise them and index them in folder ``out``.

    The rows are those of ``splits`` (default: every row, so any utterance of the store can be
    found); corpus statistics, for methods that need them, are fitted on the rows of ``split``
    (the training split, as ``bench`` fits them) unless ``stats`` gives them. The
    pooling options (``options`` and keyword options) are as for ``bench``.
    ``kind`` "flat" searches exactly; "ivf" (``nlist`` lists, ``nprobe`` searched) and "hnsw"
    (``hnsw_m`` links, ``ef_construction``, ``ef_search``) are approximate: their recall@10
    against exact search is measured on ``recall_queries`` rows drawn with ``seed`` (held out
    of IVF's training when the corpus allows), logged, and kept in the header.
    Returns the index, loaded. An existing ``out`` is replaced only with ``overwrite``.
    """
    from vqpool.index.reader import Index
    from vqpool.vectors import plan_pooling, pooled_chunks, select_rows

    faiss = import_faiss()  # before minutes of pooling
    if not isinstance(method, str):
        raise ParameterError("method", f"names one pooling method; got {method!r}")
    if isinstance(recall_queries, bool) or not isinstance(recall_queries, int) or recall_queries < 1:
        raise ParameterError("recall_queries", f"must be a positive integer; got {recall_queries!r}")
    out = Path(out)
    check_replaceable(out, overwrite, is_index)
    store = open_store(store)
    rows = select_rows(store, splits)
    params = resolve_params(kind, len(rows), nlist=nlist, nprobe=nprobe, hnsw_m=hnsw_m,
                            ef_construction=ef_construction, ef_search=ef_search)
    pooling = plan_pooling(store, [method], split=split, stats=stats,
                           options=requested_options(options, pool_options), max_frames=max_frames,
                           progress=progress, parameter="method")
    vectors = np.empty((len(rows), pooling.dims[method]), dtype=np.float32)
    filled = 0
    with closing(pooled_chunks(pooling, rows, max_frames=max_frames, device=device,
                               progress=progress)) as chunks:
        for chunk, pooled in chunks:
            vectors[filled : filled + len(chunk)] = pooled[method]
            filled += len(chunk)
    vectors = normalized(vectors)

    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(rows), min(recall_queries, len(rows)), replace=False))
    train_rows = None
    if params.kind == "ivf":
        rest = np.setdiff1d(np.arange(len(rows)), sample)
        if len(rest) >= params.nlist * 39:  # enough to train on without the recall queries
            train_rows = rest
    start = time.perf_counter()
    index = make_index(faiss, vectors, params, train_rows=train_rows)
    seconds = time.perf_counter() - start
    recall = None
    if not params.exact:
        recall = measure_recall(faiss, index, vectors, sample, RECALL_K)
        held = "held out of training" if train_rows is not None else "drawn from the index"
        log.info("%s: recall@%d %.4f against exact search, on %d queries %s (%s)", out,
                 RECALL_K, recall, len(sample), held, params.describe())
    header = _header(store, pooling, rows, params, recall, len(sample), seconds, split)
    with atomic_folder(out) as folder:
        faiss.write_index(index, str(folder / FAISS_FILE))
        _write_rows(folder / ROWS, store, rows)
        if pooling.stats is not None:
            pooling.stats.save(folder / STATS)
        codebook = header["codebook"]
        if codebook and codebook.get("copy"):
            shutil.copyfile(codebook["source"], folder / CODEBOOK)
        (folder / HEADER).write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
    return Index.load(out)


def is_index(path: Path) -> bool:
    try:
        return json.loads((path / HEADER).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _write_rows(path: Path, store: Any, rows: list[int]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ROW_COLUMNS)
        for position, row in enumerate(rows):
            meta = store.meta[row]
            writer.writerow([position, *(_text(meta.get(c)) for c in ROW_COLUMNS[1:])])


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _header(store: Any, pooling: Any, rows: list[int], params: Any, recall: float | None,
            recall_queries: int, seconds: float, split: str) -> dict[str, Any]:
    import faiss

    header = store.header
    upstream = header.upstream.to_json()
    spec = upstream.get("spec")
    if spec and Path(spec).exists():  # a local model folder: findable from anywhere
        upstream["spec"] = str(Path(spec).resolve())
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"vqpool": __version__, "faiss": faiss.__version__},
        "store": {
            "path": str(Path(store.path).resolve()) if getattr(store, "path", None) else None,
            "task": header.task,
            "corpus": header.corpus,
            "num_utterances": len(store),
            "has_frames": store.has_frames,
        },
        "upstream": upstream,
        "layers": header.upstream.layers,
        "codebook": _codebook(header.upstream.codebook),
        "method": pooling.methods[0],
        "options": pooling.options.as_dict(),
        "stats": None if pooling.stats is None else {
            "file": STATS, "split": pooling.stats_split,
            "num_utterances": pooling.stats.num_utterances},
        "count": len(rows),
        "dim": pooling.dims[pooling.methods[0]],
        "metric": "cosine (inner product of L2-normalised vectors)",
        "index": params.as_dict(),
        "recall_at_10": recall,
        "recall_queries": recall_queries if recall is not None else None,
        "build_seconds": round(seconds, 3),
        "files": {"faiss": FAISS_FILE, "rows": ROWS},
    }


def _codebook(described: dict[str, Any] | None) -> dict[str, Any] | None:
    """The store's codebook, copied into the index when its file is still there."""
    if not described:
        return None
    source = described.get("path")
    found = bool(source) and Path(source).is_file()
    if source and not found:
        log.warning("the store's codebook %s is not there: audio queries will need it at that "
                    "path (vector and id queries do not)", source)
    return {"path": source, "source": str(Path(source).resolve()) if found else None,
            "copy": CODEBOOK if found else None,
            "settings": {k: v for k, v in described.items() if k != "path"}}
