"""Checks of arguments that several layers take: numbers with bounds, torch devices. Errors name
the Python parameter (the CLI shows the matching flag)."""

import math

import torch

from vqpool.errors import ParameterError


def at_least(name: str, value: float, minimum: float) -> None:
    if not value >= minimum:  # NaN fails too
        raise ParameterError(name, f"must be at least {minimum}; got {value}")


def positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ParameterError(name, f"must be a positive number; got {value}")


def check_device(device: str | torch.device) -> torch.device:
    """A device this torch can use: ``device="bogus"`` or CUDA on a CPU-only build is refused."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError("device", f"{device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if parsed.type == "cpu":
        return parsed
    backend = getattr(torch, parsed.type, None)  # torch.cuda, torch.mps, torch.xpu, ...
    if not hasattr(backend, "is_available") or not backend.is_available():
        raise ParameterError("device", f"{device}: this torch ({torch.__version__}) has no usable "
                             f"{parsed.type} device; use cpu")
    count = getattr(backend, "device_count", None)
    if parsed.index is not None and count is not None and parsed.index >= count():
        raise ParameterError("device", f"{device}: there are {count()} {parsed.type} device(s), "
                             "numbered from 0")
    return parsed
