import importlib.util
import math
import sys
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vqpool.evaluate.knn as knn
from vqpool.errors import ParameterError, VqpoolError
from vqpool.evaluate.knn import (
    CANDIDATES,
    FAISS_ROWS,
    TIE,
    fp32_error,
    nearest_neighbours,
    one_nn_accuracy,
    resolve_search,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
BACKENDS = ["matmul", "faiss"]
INSTALLED = [b for b in BACKENDS if b != "faiss" or importlib.util.find_spec("faiss")]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "faiss":
        pytest.importorskip("faiss")
    return request.param


def brute_force(train: torch.Tensor, test: torch.Tensor) -> list[tuple[int, float, float]]:
    """(index, best similarity, runner-up similarity) per query: a float64 Python loop."""
    def cosine(u: list[float], v: list[float]) -> float:
        nu, nv = math.sqrt(sum(x * x for x in u)), math.sqrt(sum(x * x for x in v))
        return 0.0 if nu == 0 or nv == 0 else sum(x * y for x, y in zip(u, v, strict=True)) / (nu * nv)

    found = []
    for query in test.tolist():
        sims = [cosine(query, row) for row in train.tolist()]
        best = 0
        for j, sim in enumerate(sims):
            if sim > sims[best]:  # strict: the lowest index wins a tie
                best = j
        runner_up = max((s for j, s in enumerate(sims) if j != best), default=-2.0)
        found.append((best, sims[best], runner_up))
    return found


@pytest.mark.parametrize("device", DEVICES)
def test_matches_brute_force_on_random_data(device: str) -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        train = torch.randn(40, 6, generator=generator) * torch.rand(40, 1, generator=generator) * 10
        test = torch.randn(23, 6, generator=generator)
        expected = brute_force(train, test)
        for chunk in (1, 7, None):
            fast = nearest_neighbours(train, test, chunk=chunk, device=device).tolist()
            for k, (best, sim, runner_up) in enumerate(expected):
                if sim - runner_up > 1e-5:  # a float32 near-tie may legitimately go either way
                    assert fast[k] == best


@pytest.mark.parametrize("device", DEVICES)
def test_ties_go_to_the_lowest_index(device: str, backend: str) -> None:
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(12, 5, generator=generator)
    train[7] = train[3]  # identical
    train[10] = 4 * train[3]  # same direction: the same cosine
    train[11] = train[5]
    queries = torch.stack([train[7], train[10], 0.5 * train[3], train[11], train[5]])
    expected = [best for best, _, _ in brute_force(train, queries)]
    assert expected == [3, 3, 3, 5, 5]
    for chunk in (1, 2, None):
        found = nearest_neighbours(train, queries, chunk=chunk, device=device, search=backend)
        assert found.tolist() == expected


def test_accuracy_in_percent_against_brute_force() -> None:
    generator = torch.Generator().manual_seed(1)
    train, test = torch.randn(30, 4, generator=generator), torch.randn(16, 4, generator=generator)
    train_y, test_y = torch.randint(0, 3, (30,), generator=generator), torch.randint(0, 3, (16,), generator=generator)
    hits = sum(int(train_y[best] == y) for (best, _, _), y in zip(brute_force(train, test), test_y, strict=True))
    assert one_nn_accuracy(train, train_y, test, test_y, chunk=5) == pytest.approx(100 * hits / 16)


def test_zero_vector_and_shape_errors(backend: str) -> None:
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # A zero query is equally (un)similar to everything: the first training vector.
    assert nearest_neighbours(train, torch.zeros(1, 2), search=backend).tolist() == [0]
    with pytest.raises(ValueError):
        nearest_neighbours(train, torch.zeros(1, 3))
    with pytest.raises(ValueError):
        nearest_neighbours(torch.zeros(0, 2), torch.zeros(1, 2))


def rule_reference(train: torch.Tensor, test: torch.Tensor) -> list[int]:
    """The documented rule by a float64 Python loop: the lowest index whose cosine is within
    TIE of the largest (0 for a zero vector, as ``brute_force`` defines it)."""
    def cosine(u: list[float], v: list[float]) -> float:
        nu, nv = math.sqrt(math.fsum(x * x for x in u)), math.sqrt(math.fsum(x * x for x in v))
        return 0.0 if nu == 0 or nv == 0 else math.fsum(x * y for x, y in zip(u, v, strict=True)) / (nu * nv)

    found = []
    for query in test.tolist():
        sims = [cosine(query, row) for row in train.tolist()]
        found.append(next(j for j, s in enumerate(sims) if s >= max(sims) - TIE))
    return found


@st.composite
def planted(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    """Small-integer vectors (distinct cosines differ by far more than TIE), with copies,
    rescaled copies and zero vectors planted in the training set and among the queries; more
    copies of one vector than CANDIDATES, at times, so that the wide pass must decide."""
    dim = draw(st.integers(2, 6))
    entries = st.lists(st.integers(-3, 3), min_size=dim, max_size=dim)
    train = [draw(entries) for _ in range(draw(st.integers(1, 30)))]
    scales = st.sampled_from([1.0, 0.5, 3.0, 7.25, 1e-3, 1e3])
    for _ in range(draw(st.integers(0, 3 * CANDIDATES))):
        source = draw(st.sampled_from(train))
        scale = draw(scales)
        train.insert(draw(st.integers(0, len(train))), [scale * x for x in source])
    if draw(st.booleans()):
        train.insert(draw(st.integers(0, len(train))), [0.0] * dim)
    queries = [draw(entries) for _ in range(draw(st.integers(1, 8)))]
    queries += [[draw(scales) * x for x in draw(st.sampled_from(train))]
                for _ in range(draw(st.integers(0, 4)))]
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    return torch.tensor(train, dtype=dtype), torch.tensor(queries, dtype=dtype)


@settings(max_examples=150, deadline=None)
@given(data=planted(), chunk=st.sampled_from([None, 1, 3]), rows=st.sampled_from([FAISS_ROWS, 1, 5]))
def test_every_backend_follows_the_rule(data: tuple[torch.Tensor, torch.Tensor],
                                        chunk: int | None, rows: int) -> None:
    """``rows``: training rows FAISS searches a call, small so that copies and ties fall in
    different slices and a last slice can be shorter than CANDIDATES."""
    train, test = data
    expected = rule_reference(train, test)
    with mock.patch.object(knn, "FAISS_ROWS", rows):
        for search in INSTALLED:
            found = nearest_neighbours(train, test, chunk=chunk, search=search).tolist()
            assert found == expected, search


@pytest.mark.parametrize("rows", [FAISS_ROWS, 7])
def test_many_near_equal_vectors_are_decided_in_float64(backend: str, rows: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """40 rescaled copies of one direction: fp32 scores differ from copy to copy by rounding,
    so the 8 best fp32 scores are not those of the lowest copies; the wide pass finds them
    (FAISS searching all 240 rows at once, or 7 a call)."""
    monkeypatch.setattr(knn, "FAISS_ROWS", rows)
    generator = torch.Generator().manual_seed(3)
    direction = torch.randn(64, generator=generator)
    others = torch.randn(200, 64, generator=generator)
    scales = torch.rand(40, 1, generator=generator) * 10 + 0.1
    train = torch.cat([others, scales * direction])[torch.randperm(240, generator=generator)]
    query = (direction + 1e-9 * torch.randn(64, generator=generator)).unsqueeze(0)
    expected = rule_reference(train.double(), query.double())
    assert nearest_neighbours(train, query, search=backend).tolist() == expected
    copies = [j for j, row in enumerate(train) if torch.allclose(row / row.norm(),
                                                               direction / direction.norm())]
    assert expected == [copies[0]]


@settings(max_examples=60, deadline=None)
@given(dim=st.integers(1, 1024), seed=st.integers(0, 2**31 - 1))
def test_fp32_scores_are_within_the_bound(dim: int, seed: int) -> None:
    """What the candidates' certificate rests on: normalised fp32 products (torch's and
    FAISS's order of summation alike) are within fp32_error(D) of the float64 cosine."""
    generator = torch.Generator().manual_seed(seed)
    train = torch.randn(50, dim, generator=generator) * torch.rand(50, 1, generator=generator) * 100
    test = torch.randn(20, dim, generator=generator)
    fp32 = torch.nn.functional.normalize(test, dim=1) @ torch.nn.functional.normalize(train, dim=1).T
    exact = (torch.nn.functional.normalize(test.double(), dim=1)
             @ torch.nn.functional.normalize(train.double(), dim=1).T)
    assert (fp32.double() - exact).abs().max().item() <= fp32_error(dim)
    assert fp32_error(768) < 1e-4  # the bound leaves real neighbours their margin


def test_search_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faiss")
    assert resolve_search("auto") == "faiss"
    assert resolve_search("auto", "cuda") == "matmul"  # the matmul runs on the GPU
    assert resolve_search("matmul") == "matmul"
    with pytest.raises(ParameterError, match="^search must be one of auto, faiss, matmul"):
        resolve_search("exact")
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if not installed
    assert resolve_search("auto") == "matmul"
    with pytest.raises(VqpoolError, match=r"faiss is not installed.*vqpool\[faiss\]"):
        resolve_search("faiss")
