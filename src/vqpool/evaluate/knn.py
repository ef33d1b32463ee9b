"""Exact cosine 1-nearest-neighbour classification (paper Table 1), by chunked matrix products."""

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

# Elements of one [chunk, N_train] similarity block: 2^26 fp32 = 256 MiB.
BLOCK_ELEMENTS = 1 << 26


def nearest_neighbours(
    train_x: Tensor,
    test_x: Tensor,
    *,
    chunk: int | None = None,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Index of each test vector's most cosine-similar training vector: ``[N_test]`` int64.

    Exact search: normalise, multiply a chunk of test rows by all training rows, argmax.
    Ties go to the lowest training index (``torch.argmax`` returns the first maximum).
    A zero vector has similarity 0 to everything.
    """
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"expected [N, D] matrices of one D, got {train_x.shape}, {test_x.shape}")
    if len(train_x) == 0:
        raise ValueError("1-NN needs at least one training vector")
    train = F.normalize(train_x.to(device, torch.float32), dim=1)
    chunk = chunk or max(1, BLOCK_ELEMENTS // len(train))
    found = []
    for start in range(0, len(test_x), chunk):
        query = F.normalize(test_x[start : start + chunk].to(device, torch.float32), dim=1)
        found.append((query @ train.T).argmax(dim=1).cpu())
    return torch.cat(found) if found else torch.empty(0, dtype=torch.long)


def one_nn_hits(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    chunk: int | None = None,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Whether each test vector's nearest training vector carries its label: bool ``[N_test]``
    (what a bootstrap over test utterances resamples)."""
    if len(test_x) == 0:
        raise ValueError("1-NN accuracy needs at least one test vector")
    predicted = train_y.cpu()[nearest_neighbours(train_x, test_x, chunk=chunk, device=device)]
    return predicted == test_y.cpu()


def one_nn_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
                    **search: Any) -> float:
    """Percentage of test vectors whose nearest training vector carries their label
    (``search``: ``chunk`` and ``device``, as for `one_nn_hits`)."""
    return 100.0 * one_nn_hits(train_x, train_y, test_x, test_y, **search).double().mean().item()
