"""Shared test fixtures. Real data is read in place from the shared folder beside the repository."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VQPOOL_SHARED", REPO.parent / "shared"))
FSDD = SHARED / "data" / "fsdd"


@pytest.fixture(scope="session")
def fsdd_root() -> Path:
    if not FSDD.is_dir():
        pytest.fail(f"FSDD recordings not found at {FSDD} (set VQPOOL_SHARED to the shared folder)")
    return FSDD
