"""Shared test fixtures. Real data is read in place: the full Free Spoken Digit Dataset from the
shared folder beside the repository when it is there, else the subset under tests/data/fsdd."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VQPOOL_SHARED", REPO.parent / "shared"))
FSDD = SHARED / "data" / "fsdd"
FSDD_SUBSET = REPO / "tests" / "data" / "fsdd"  # 150 recordings, CC BY-SA 4.0: see its README.md
FSDD_RECORDINGS = 3000
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset"

# The subset is data, not tests.
collect_ignore = ["data/fsdd"]


def fsdd_folder() -> Path:
    """The full FSDD where the shared folder has it, else the subset in the repository."""
    return FSDD if FSDD.is_dir() else FSDD_SUBSET


@pytest.fixture(scope="session")
def fsdd_root() -> Path:
    root = fsdd_folder()
    if not root.is_dir():
        pytest.fail(f"FSDD recordings not found at {FSDD} nor at {FSDD_SUBSET}")
    return root


@pytest.fixture(scope="session")
def fsdd_full(fsdd_root: Path) -> Path:
    """All 3,000 recordings, for tests of the official splits' counts; skipped without them."""
    if len(list(fsdd_root.glob("*.wav"))) < FSDD_RECORDINGS:
        pytest.skip(f"needs all {FSDD_RECORDINGS} FSDD recordings, found only the subset at "
                    f"{fsdd_root}: get FSDD from {FSDD_URL} and set VQPOOL_SHARED to a folder "
                    "holding its recordings as data/fsdd")
    return fsdd_root

