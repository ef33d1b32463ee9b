"""Nearest-neighbour search with FAISS, below both the 1-NN evaluation and the index: which
index a kind means, its parameters, exact-search blocks, recall.

FAISS is an optional dependency (``pip install 'vqpool[faiss]'``, the ``faiss-cpu`` wheel);
where the ``faiss-gpu`` build is installed and sees a GPU, exact and IVF indexes are trained and
searched there (HNSW has no GPU version in FAISS and stays on the CPU). Every index holds
L2-normalised vectors and scores by inner product, so a score is a cosine similarity.
"""

import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vqpool.errors import ParameterError, VqpoolError, import_extra

log = logging.getLogger(__name__)

KINDS = ("flat", "ivf", "hnsw")
"""flat: exact search (``IndexFlatIP``); ivf: inverted lists (``IndexIVFFlat``); hnsw: a graph
(``IndexHNSWFlat``). The last two are approximate, for large corpora."""

# Which parameter belongs to which kind, and what each is when left out.
IVF_PARAMETERS = ("nlist", "nprobe")
HNSW_PARAMETERS = ("hnsw_m", "ef_construction", "ef_search")
DEFAULT_HNSW_M = 32
DEFAULT_EF_CONSTRUCTION = 40
DEFAULT_EF_SEARCH = 64
DEFAULT_MIN_NPROBE = 8
MIN_POINTS_PER_LIST = 39  # FAISS warns when k-means has fewer training points per centroid


def import_faiss() -> Any:
    """The ``faiss`` module, or one line saying which extra installs it."""
    return import_extra("faiss", "faiss", "vqpool's index; or install faiss-gpu for GPU search")


def gpu_count(faiss: Any) -> int:
    """GPUs the installed FAISS can use (0 for faiss-cpu)."""
    try:
        return int(faiss.get_num_gpus()) if hasattr(faiss, "StandardGpuResources") else 0
    except Exception:  # a GPU build without a usable driver
        return 0


@dataclass(frozen=True)
class IndexParams:
    """The parameters of one kind of index; those of other kinds are None."""

    kind: str = "flat"
    nlist: int | None = None
    nprobe: int | None = None
    hnsw_m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    def describe(self) -> str:
        """``"ivf (nlist 1265, nprobe 40)"``: what a log line shows."""
        values = [f"{name} {value}" for name, value in self.as_dict().items() if name != "kind"]
        return f"{self.kind} ({', '.join(values)})" if values else self.kind


def resolve_params(kind: str, count: int, **given: int | None) -> IndexParams:
    """Check the parameters ``given`` for ``kind`` over ``count`` vectors and fill the defaults.

    IVF: ``nlist`` lists (default about 4 sqrt(N), at most N / 39 so k-means has enough points),
    ``nprobe`` lists searched (default nlist / 256 but at least 8: recall first on small
    corpora, a growing speed-up on large ones; the recall measured at build time tells whether
    to change it, and benchmarks/search.py shows the trade-off). HNSW: ``hnsw_m`` links per node
    (32), ``ef_construction`` (40) and ``ef_search`` (64) candidate-list sizes.
    """
    if kind not in KINDS:
        raise ParameterError("kind", f"must be one of {', '.join(KINDS)}; got {kind!r}")
    own = {"flat": (), "ivf": IVF_PARAMETERS, "hnsw": HNSW_PARAMETERS}[kind]
    for name, value in given.items():
        if value is None:
            continue
        if name not in own:
            kinds = "ivf" if name in IVF_PARAMETERS else "hnsw"
            raise ParameterError(name, f"applies to an index of {{kind}} {kinds} only, not {kind}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(name, f"must be a positive integer; got {value!r}")
    if count < 1:
        raise VqpoolError("an index needs at least one vector")
    if kind == "flat":
        return IndexParams()
    if kind == "ivf":
        most = max(1, count // MIN_POINTS_PER_LIST)
        nlist = given.get("nlist") or min(most, max(1, round(4 * math.sqrt(count))))
        if nlist > count:
            raise ParameterError("nlist", f"is {nlist}, more lists than the {count} vectors")
        nprobe = given.get("nprobe") or max(DEFAULT_MIN_NPROBE, nlist // 256)
        return IndexParams("ivf", nlist=nlist, nprobe=min(nprobe, nlist))
    hnsw_m = given.get("hnsw_m") or DEFAULT_HNSW_M
    if hnsw_m < 2:
        raise ParameterError("hnsw_m", f"must be at least 2; got {hnsw_m}")
    return IndexParams("hnsw", hnsw_m=hnsw_m,
                       ef_construction=given.get("ef_construction") or DEFAULT_EF_CONSTRUCTION,
                       ef_search=given.get("ef_search") or DEFAULT_EF_SEARCH)


def normalized(vectors: Any) -> np.ndarray:
    """C-contiguous fp32 ``[N, D]`` rows scaled to unit length (a zero row stays zero)."""
    array = np.array(vectors, dtype=np.float32, copy=True, ndmin=2)
    if array.ndim != 2:
        raise VqpoolError(f"expected vectors [N, D], got an array of shape {array.shape}")
    if not np.isfinite(array).all():
        raise VqpoolError("the vectors hold NaN or infinite values")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    np.divide(array, norms, out=array, where=norms > 0)
    return np.ascontiguousarray(array)


def make_index(faiss: Any, vectors: np.ndarray, params: IndexParams, *,
               train_rows: np.ndarray | None = None, use_gpu: bool = True) -> Any:
    """A CPU FAISS index of ``params`` holding ``vectors`` (normalised fp32 ``[N, D]``), row r
    under id r. IVF's coarse quantizer is trained on ``train_rows`` (default all); exact and
    IVF indexes are built on the GPU when FAISS has one and ``use_gpu``."""
    dim = vectors.shape[1]
    if params.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.ef_construction
        index.add(vectors)
        index.hnsw.efSearch = params.ef_search
        return index
    if params.kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, params.nlist, faiss.METRIC_INNER_PRODUCT)
    device_index = to_gpu(faiss, index) if use_gpu else index
    if params.kind == "ivf":
        device_index.train(vectors if train_rows is None else vectors[train_rows])
    device_index.add(vectors)
    if device_index is not index:
        index = faiss.index_gpu_to_cpu(device_index)
    if params.kind == "ivf":
        index.nprobe = params.nprobe
    return index


def to_gpu(faiss: Any, index: Any) -> Any:
    """``index`` copied to every GPU FAISS sees, or itself (faiss-cpu, no GPU, or HNSW)."""
    if gpu_count(faiss) == 0 or isinstance(index, faiss.IndexHNSWFlat):
        return index
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except Exception as error:  # an index type or a GPU FAISS cannot take: search on the CPU
        log.info("note: searching on the CPU (FAISS could not move the index to the GPU: %s)", error)
        return index


def set_search_params(faiss: Any, index: Any, params: IndexParams) -> None:
    """Apply ``nprobe`` / ``ef_search`` to an index (on the CPU or a GPU)."""
    if params.kind == "ivf":
        try:
            faiss.extract_index_ivf(index).nprobe = params.nprobe
        except Exception:
            faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", params.nprobe)
    elif params.kind == "hnsw":
        index.hnsw.efSearch = params.ef_search


# Exact search multiplies blocks of queries by blocks of the database; FAISS's default
# database block (1024 rows) spends as much time in its per-block top-k as in the product.
# 16384 x 1024 fp32 distances (64 MiB) halved exact search time on 768-dimensional vectors.
BLAS_BLOCKS = {"distance_compute_blas_database_bs": 16384, "distance_compute_blas_query_bs": 1024}


@contextmanager
def blas_blocks(faiss: Any, blocks: Mapping[str, int] = BLAS_BLOCKS) -> Iterator[None]:
    """FAISS's exact-search blocks set to ``blocks`` (default `BLAS_BLOCKS`) inside, restored
    after."""
    saved = {name: getattr(faiss.cvar, name) for name in blocks}
    try:
        for name, value in blocks.items():
            setattr(faiss.cvar, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(faiss.cvar, name, value)


def search(faiss: Any, index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` with the exact-search blocks above; FAISS's settings are restored."""
    with blas_blocks(faiss):
        return index.search(queries, k)


def recall_at(approximate: np.ndarray, exact: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Mean share of each query's exact ``k`` nearest rows the approximate search found; both
    lists were searched for ``k + 1`` rows and the query's own row (``queries``) is dropped."""
    found = []
    for row, approx_rows, exact_rows in zip(queries.tolist(), approximate, exact, strict=True):
        truth = [r for r in exact_rows.tolist() if r != row and r >= 0][:k]
        guess = [r for r in approx_rows.tolist() if r != row and r >= 0][:k]
        if truth:
            found.append(len(set(truth) & set(guess)) / len(truth))
    return float(np.mean(found)) if found else 1.0


def measure_recall(faiss: Any, index: Any, vectors: np.ndarray, queries: np.ndarray,
                   k: int = 10) -> float:
    """recall@k of ``index`` against exact search over ``vectors``, for the rows ``queries``."""
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    depth = min(k + 1, len(vectors))
    _, truth = search(faiss, exact, vectors[queries], depth)
    _, guess = search(faiss, index, vectors[queries], depth)
    return recall_at(guess, truth, queries, k)
