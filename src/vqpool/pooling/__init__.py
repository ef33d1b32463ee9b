"""Pooling: frames ``[B, L, D]`` (+ codes ``[B, L, G]``) -> one vector per utterance."""

from vqpool.defaults import DEFAULT_METHOD
from vqpool.pooling.api import frame_weights, pool
from vqpool.pooling.builtins import HEADS, METHODS
from vqpool.pooling.options import DEFAULT_OPTIONS, SEMANTICS, PoolOptions, requested_options
from vqpool.pooling.registry import (
    Available,
    Method,
    Selection,
    get_method,
    method_names,
    output_dim,
    register_method,
    select_methods,
)
from vqpool.pooling.stats import CorpusStats

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_OPTIONS",
    "HEADS",
    "METHODS",
    "SEMANTICS",
    "Available",
    "CorpusStats",
    "Method",
    "PoolOptions",
    "Selection",
    "frame_weights",
    "get_method",
    "method_names",
    "output_dim",
    "pool",
    "register_method",
    "requested_options",
    "select_methods",
]
