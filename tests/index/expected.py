"""Expectations computed apart from the code under test."""

from pathlib import Path


def pooled_one_by_one(store_path: Path, method: str, stats=None):
    """Each utterance of a store pooled alone from its own frames (no batching, no padding):
    an expectation computed apart from the code under test. fp32 [N, D'] in store order."""
    import numpy as np
    import torch

    from vqpool import FeatureStore, pool

    store = FeatureStore(store_path)
    vectors = []
    for i in range(len(store)):
        frames, codes, _ = store[i]
        vectors.append(pool(frames[None], torch.tensor([len(frames)]), codes[None], method,
                            stats).numpy()[0])
    return np.stack(vectors).astype(np.float32)
