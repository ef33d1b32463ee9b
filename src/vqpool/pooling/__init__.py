"""Pooling: frames ``[B, L, D]`` (+ codes ``[B, L, G]``) -> one vector per utterance."""

from vqpool.pooling.api import (
    CODE_METHODS,
    HEADS,
    METHODS,
    SEMANTICS,
    STATS_METHODS,
    WEIGHTED_METHODS,
    frame_weights,
    output_dim,
    pool,
)
from vqpool.pooling.stats import CorpusStats

__all__ = [
    "CODE_METHODS",
    "HEADS",
    "METHODS",
    "SEMANTICS",
    "STATS_METHODS",
    "WEIGHTED_METHODS",
    "CorpusStats",
    "frame_weights",
    "output_dim",
    "pool",
]
