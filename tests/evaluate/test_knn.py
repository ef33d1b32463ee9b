import math

import pytest
import torch

from vqpool.evaluate.knn import nearest_neighbours, one_nn_accuracy

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]


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
def test_ties_go_to_the_lowest_index(device: str) -> None:
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(12, 5, generator=generator)
    train[7] = train[3]  # identical
    train[10] = 4 * train[3]  # same direction: the same cosine
    train[11] = train[5]
    queries = torch.stack([train[7], train[10], 0.5 * train[3], train[11], train[5]])
    expected = [best for best, _, _ in brute_force(train, queries)]
    assert expected == [3, 3, 3, 5, 5]
    for chunk in (1, 2, None):
        assert nearest_neighbours(train, queries, chunk=chunk, device=device).tolist() == expected


def test_accuracy_in_percent_against_brute_force() -> None:
    generator = torch.Generator().manual_seed(1)
    train, test = torch.randn(30, 4, generator=generator), torch.randn(16, 4, generator=generator)
    train_y, test_y = torch.randint(0, 3, (30,), generator=generator), torch.randint(0, 3, (16,), generator=generator)
    hits = sum(int(train_y[best] == y) for (best, _, _), y in zip(brute_force(train, test), test_y, strict=True))
    assert one_nn_accuracy(train, train_y, test, test_y, chunk=5) == pytest.approx(100 * hits / 16)


def test_zero_vector_and_shape_errors() -> None:
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # A zero query is equally (un)similar to everything: the first training vector.
    assert nearest_neighbours(train, torch.zeros(1, 2)).tolist() == [0]
    with pytest.raises(ValueError):
        nearest_neighbours(train, torch.zeros(1, 3))
    with pytest.raises(ValueError):
        nearest_neighbours(torch.zeros(0, 2), torch.zeros(1, 2))
