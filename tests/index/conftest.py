"""A small real store for the index and export tests: FSDD voices through the pretrained GE2E
encoder, coded by a k-means codebook fitted on the training voices."""

from pathlib import Path

import pytest

from vqpool.data import prepare
from vqpool.extract import extract
from vqpool.upstream import load_upstream
from vqpool.upstream.codebook import fit_codebook


@pytest.fixture(scope="session")
def speaker_store(fsdd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All six speakers x digits 0-4 x takes 0-1 (60 recordings); splits hold speakers out
    (`prepare(..., split="speaker")`: one test voice, one validation voice, four training)."""
    rows = [row for row in prepare("fsdd", fsdd_root, split="speaker")
            if int(row["label"]) < 5 and int(row["id"].rsplit("_", 1)[1]) < 2]
    folder = tmp_path_factory.mktemp("speaker-store")
    codebook = fit_codebook(load_upstream("ge2e"), [r["path"] for r in rows if r["split"] == "train"],
                            codebook_size=16, max_frames=5000, progress=False)
    codebook.save(folder / "ge2e.codebook")
    upstream = load_upstream("ge2e", codebook=folder / "ge2e.codebook")
    extract(rows, upstream, folder / "store", corpus="fsdd", progress=False)
    extract(rows, upstream, folder / "pooled", corpus="fsdd", pooled_only=["ap", "vq-lp"],
            progress=False)
    return folder / "store"


@pytest.fixture(scope="session")
def pooled_store(speaker_store: Path) -> Path:
    """The same recordings in a pooled-only store (ap and vq-lp vectors and codes, no frames)."""
    return speaker_store.parent / "pooled"

