"""The code-table work runs in compiled loops on a CPU (`vqpool.pooling.kernels`) and in batched
PyTorch ops on a GPU. Tests that use `code_loops` run once each way on this CPU."""

from unittest import mock

import pytest
import torch

from vqpool.pooling import kernels


@pytest.fixture(params=["compiled", "pytorch"])
def code_loops(request: pytest.FixtureRequest):
    if request.param == "pytorch":
        with mock.patch.object(kernels, "serves", lambda codes: False):
            yield request.param
        return
    if not kernels.serves(torch.zeros(1)):
        pytest.skip("numba is not installed: PyTorch computes on CPUs too")
    yield request.param
