"""Exact cosine 1-nearest-neighbour classification (paper Table 1).

Two backends find candidates in fp32: FAISS's flat inner-product search (``search="faiss"``,
the ``faiss`` extra) or a chunked matrix product into one reused similarity block
(``"matmul"``). fp32 rounding differs between two GEMMs and can flip a near-tie, so neither
answers directly. Both obey one rule, and so give identical answers:

    the nearest training vector is the lowest index whose float64 cosine similarity to the
    query is within ``TIE`` of the largest.

Each backend keeps its ``CANDIDATES`` best fp32 scores per query and re-scores them in float64.
An fp32 score is within ``fp32_error(D)`` of the true cosine (a rounding bound that holds for any
order of summation), so when the last candidate's fp32 score is below the float64 best by more
than that bound plus ``TIE``, no other training vector can win or tie, and the answer is the
rule's. Otherwise (more than ``CANDIDATES`` near-equal vectors: duplicates) every training
vector whose fp32 score could reach the best is re-scored in float64. A zero vector has
similarity 0 to everything, so a zero query's nearest is training vector 0.
"""

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vqpool.errors import ParameterError

SEARCHES = ("auto", "faiss", "matmul")
"""``search`` values: "auto" is FAISS when it is installed and the device is the CPU, else the
matmul (on a GPU the matmul runs there; faiss-cpu would not)."""

# Elements of one [chunk, N_train] fp32 similarity block: 2^26 fp32 = 256 MiB.
BLOCK_ELEMENTS = 1 << 26
# Candidates re-scored in float64 per query: enough that duplicates rarely need the wide pass.
CANDIDATES = 8
# Cosines closer than this count as equal: above float64 rounding over any D in use (D u < 1e-12
# for D < 4500), far below what fp32 can tell apart (6e-8).
TIE = 1e-12
# float64 elements of the candidate rows re-scored at once: 2^22 doubles = 32 MiB.
RESCORE_ELEMENTS = 1 << 22
# float64 elements of the training rows whose norms a CPU takes at once: 2 MiB, within a core's
# L2 cache and far below glibc's mmap threshold (larger slices were slower; docs/benchmarks.md).
SLICE_ELEMENTS = 1 << 18
# Training rows FAISS searches a call, normalised into one buffer reused for each slice, and
# its BLAS blocks: a full normalised copy of a large set, or FAISS's block of distances, over
# glibc's 32 MiB mmap threshold is paged in afresh by each call.
FAISS_ROWS = 4096
FAISS_BLOCKS = {"distance_compute_blas_database_bs": FAISS_ROWS,
                "distance_compute_blas_query_bs": 1024}
# Unit roundoff of an fp32 product under each torch matmul precision ("high" may use TF32 with
# a 10-bit mantissa, "medium" bf16 with 7 bits on some backends).
ROUNDOFF = {"highest": 2.0**-24, "high": 2.0**-11, "medium": 2.0**-8}


def resolve_search(search: str, device: str | torch.device = "cpu") -> str:
    """The backend ``search`` names: "faiss" or "matmul" ("auto" chooses; see `SEARCHES`)."""
    if search not in SEARCHES:
        raise ParameterError("search", f"must be one of {', '.join(SEARCHES)}; got {search!r}")
    if search == "faiss":
        from vqpool.neighbours import import_faiss

        import_faiss()  # not installed: one line saying which extra brings it, before any work
    if search != "auto":
        return search
    if torch.device(device).type != "cpu":
        return "matmul"
    try:
        import faiss  # noqa: F401
    except ImportError:
        return "matmul"
    return "faiss"


def fp32_error(dim: int, roundoff: float = ROUNDOFF["highest"]) -> float:
    """A bound on |fp32 score - cosine| for vectors normalised and multiplied in fp32.

    The dot product of unit vectors errs by at most gamma_D = D u / (1 - D u) (any summation
    order, Higham's Theorem 3.1); each normalisation by gamma_D / 2 + 2u more (a training
    vector divided by its rounded float64 norm, `Rescorer.unit`: by 3u)."""
    gamma = dim * roundoff / (1 - dim * roundoff)
    return 2 * gamma + 8 * roundoff


def nearest_neighbours(
    train_x: Tensor,
    test_x: Tensor,
    *,
    chunk: int | None = None,
    device: str | torch.device = "cpu",
    search: str = "auto",
) -> Tensor:
    """Index of each test vector's most cosine-similar training vector: ``[N_test]`` int64.

    Exact search, by the module's rule: the lowest index among the float64 maxima (within
    ``TIE``), whichever ``search`` backend runs ("faiss", "matmul" or "auto", `SEARCHES`).
    ``chunk`` test vectors are searched at a time (default: a 256 MiB similarity block for the
    matmul, all at once for FAISS, which blocks its own work). A zero vector has similarity 0 to
    everything.
    """
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"expected [N, D] matrices of one D, got {train_x.shape}, {test_x.shape}")
    if len(train_x) == 0:
        raise ValueError("1-NN needs at least one training vector")
    backend = resolve_search(search, device)
    if backend == "faiss":
        device = "cpu"  # faiss-cpu: candidates and their re-scoring stay in host memory
    exact = Rescorer(train_x.to(device))
    if len(test_x) == 0:
        return torch.empty(0, dtype=torch.long)
    k = min(CANDIDATES, len(train_x))
    train = None  # the full fp32 unit set: the matmul's, or made for a wide pass after FAISS
    if backend == "faiss":
        found = faiss_candidates(exact, test_x, k, chunk)
    else:
        train = exact.unit()
        found = matmul_candidates(train, test_x.to(device), k, chunk)
    # FAISS multiplies in full fp32; torch's precision covers the matmul and the wide pass.
    roundoff = ROUNDOFF.get(torch.get_float32_matmul_precision(), ROUNDOFF["medium"])
    margin = fp32_error(train_x.shape[1], roundoff) + TIE
    nearest = []
    for start, candidates, lowest in found:
        queries = test_x[start : start + len(candidates)].to(device)
        best, score = exact.best(queries, candidates)
        # Every other training vector scores at most `lowest` in fp32, so below the best.
        unsure = (lowest >= score - margin) & queries.any(dim=1) & (k < len(train_x))
        if unsure.any():
            rows = unsure.nonzero().flatten()
            train = exact.unit() if train is None else train
            best[rows] = exact.widely(queries[rows], train, score[rows] - margin)
        nearest.append(best.cpu())
    return torch.cat(nearest)


class Rescorer:
    """float64 cosine similarities of queries to some training vectors, and the rule's winner;
    the fp32 unit training vectors that candidates are searched among."""

    def __init__(self, train_x: Tensor) -> None:
        self.train = train_x
        elements = SLICE_ELEMENTS if train_x.device.type == "cpu" else RESCORE_ELEMENTS
        step = max(1, elements // max(1, train_x.shape[1]))
        # float64 norms, a slice at a time: a float64 copy of the whole set is never made.
        self.norms = torch.cat([norms(train_x[start : start + step])
                                for start in range(0, len(train_x), step)])

    def unit(self, start: int = 0, stop: int | None = None, out: Tensor | None = None) -> Tensor:
        """fp32 unit vectors of training rows ``start:stop`` (into ``out`` if given): divided by
        their rounded float64 norms, they err by at most 3u, within fp32_error's allowance."""
        rows = self.train[start:stop]
        return torch.div(rows.float(), self.norms[start:stop, None].float(), out=out)

    def cosines(self, queries: Tensor, rows: Tensor) -> Tensor:
        """float64 ``[M, C]``: each of ``queries [M, D]`` against its training ``rows [M, C]``."""
        dots = (self.train[rows].double() @ queries.double().unsqueeze(2)).squeeze(2)
        return dots / (self.norms[rows] * norms(queries).unsqueeze(1))

    def best(self, queries: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """Per query, the rule's winner among its ``candidates [M, C]`` (training indices) and
        its float64 cosine: ``([M] int64, [M] float64)``. A zero query wins index 0."""
        step = max(1, RESCORE_ELEMENTS // (candidates.shape[1] * self.train.shape[1]))
        best, score = [], []
        for start in range(0, len(queries), step):
            rows, query = candidates[start : start + step], queries[start : start + step]
            winner, top = lowest_of_maxima(self.cosines(query, rows), rows)
            zero = ~query.any(dim=1)
            best.append(torch.where(zero, 0, winner))
            score.append(torch.where(zero, 0.0, top))
        return torch.cat(best), torch.cat(score)

    def widely(self, queries: Tensor, train: Tensor, floor: Tensor) -> Tensor:
        """The rule's winner for each query among every training vector whose fp32 score
        (against ``train``, normalised fp32) reaches ``floor``: ``[M]`` int64."""
        step = max(1, RESCORE_ELEMENTS // self.train.shape[1])
        winners = []
        for query, least in zip(queries, floor, strict=True):
            reach = ((train @ F.normalize(query.float(), dim=0)) >= least).nonzero().flatten()
            cosine = torch.cat([self.cosines(query.unsqueeze(0), reach[None, start : start + step])
                                for start in range(0, len(reach), step)], dim=1)
            winners.append(lowest_of_maxima(cosine, reach.unsqueeze(0))[0])
        return torch.cat(winners)


def norms(vectors: Tensor) -> Tensor:
    """float64 L2 norms of ``[N, D]`` rows, at least 1e-12 (as ``F.normalize`` divides)."""
    return torch.linalg.vector_norm(vectors.double(), dim=1).clamp_min(1e-12)


def lowest_of_maxima(cosine: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Per row of ``cosine [M, C]``, the lowest of ``rows [M, C]`` whose cosine is within
    ``TIE`` of the row's largest, and that largest: ``([M] int64, [M] float64)``."""
    top = cosine.max(dim=1).values
    tied = cosine >= (top - TIE).unsqueeze(1)
    return torch.where(tied, rows, torch.iinfo(rows.dtype).max).min(dim=1).values, top


Found = tuple[int, Tensor, Tensor]  # first query, candidates [M, k], the k-th best fp32 score [M]


def matmul_candidates(train: Tensor, test_x: Tensor, k: int, chunk: int | None) -> list[Found]:
    """The ``k`` best training indices per query by fp32 matrix products, ``chunk`` queries
    at a time, each into the same ``[chunk, N_train]`` similarity block."""
    chunk = min(chunk or max(1, BLOCK_ELEMENTS // len(train)), len(test_x))
    block = torch.empty(chunk, len(train), device=train.device)
    found = []
    for start in range(0, len(test_x), chunk):
        query = F.normalize(test_x[start : start + chunk].float(), dim=1)
        similarity = block[: len(query)]
        torch.matmul(query, train.T, out=similarity)
        scores, indices = similarity.topk(k, dim=1)
        found.append((start, indices, scores[:, -1].double()))
    return found


def faiss_candidates(exact: Rescorer, test_x: Tensor, k: int, chunk: int | None) -> list[Found]:
    """The ``k`` best training indices per query by FAISS's exact inner-product search over
    `FAISS_ROWS` unit training vectors at a time (with `FAISS_BLOCKS`), ``chunk`` queries a
    call, merged in FAISS's heaps."""
    from vqpool.neighbours import blas_blocks, import_faiss

    faiss = import_faiss()
    chunk = chunk or len(test_x)
    starts = range(0, len(test_x), chunk)
    queries = [F.normalize(test_x[start : start + chunk].cpu().float(), dim=1).numpy()
               for start in starts]
    heaps = [faiss.ResultHeap(len(query), k, keep_max=True) for query in queries]
    buffer = torch.empty(min(FAISS_ROWS, len(exact.train)), exact.train.shape[1])
    with blas_blocks(faiss, FAISS_BLOCKS):
        for first in range(0, len(exact.train), FAISS_ROWS):
            stop = min(first + FAISS_ROWS, len(exact.train))
            unit = exact.unit(first, stop, out=buffer[: stop - first]).numpy()
            for query, heap in zip(queries, heaps, strict=True):
                scores, indices = faiss.knn(query, unit, min(k, len(unit)),
                                            metric=faiss.METRIC_INNER_PRODUCT)
                heap.add_result(scores, indices + first)
    found = []
    for start, heap in zip(starts, heaps, strict=True):
        heap.finalize()  # each row best first
        found.append((start, torch.from_numpy(heap.I), torch.from_numpy(heap.D[:, -1]).double()))
    return found


def one_nn_hits(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    chunk: int | None = None,
    device: str | torch.device = "cpu",
    search: str = "auto",
) -> Tensor:
    """Whether each test vector's nearest training vector carries its label: bool ``[N_test]``
    (what a bootstrap over test utterances resamples). ``search`` picks the backend
    (`SEARCHES`); every backend gives the same answers."""
    if len(test_x) == 0:
        raise ValueError("1-NN accuracy needs at least one test vector")
    nearest = nearest_neighbours(train_x, test_x, chunk=chunk, device=device, search=search)
    return train_y.cpu()[nearest] == test_y.cpu()


def one_nn_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
                    **options: Any) -> float:
    """Percentage of test vectors whose nearest training vector carries their label
    (``options``: ``chunk``, ``device`` and ``search``, as for `one_nn_hits`)."""
    return 100.0 * one_nn_hits(train_x, train_y, test_x, test_y, **options).double().mean().item()
