"""Picking FSDD recordings so that a test gets as many from the subset as from the full set."""

from pathlib import Path


def spread(files: list[Path], count: int, step: int) -> list[Path]:
    """``files[::step][:count]`` where there are enough files (the full FSDD), else ``count``
    files spread evenly over them (the subset), so a test gets as many recordings either way."""
    if len(files[::step]) >= count:
        return files[::step][:count]
    return files[:: max(1, len(files) // count)][:count]
