"""Compiled CPU loops (numba) for the code tables of the vq-* methods.

With 8-32 codebooks (codecs) a method's work is a scatter into a table and a gather from it per
code: as PyTorch ops on a CPU that costs 4-5 ns a code, as much as AP's whole pass over the
frames. A compiled loop (`kernel_loops`) keeps one utterance's table in cache and touches each
code two or three times. Each function here computes exactly what the
batched PyTorch code of `partitions` and `weights` computes, which serves GPUs and CPUs
without numba; the tests compare the two. ``codes [B, L, G]`` are integers in ``[0, values)``
and ``lengths [B]`` count each utterance's true frames (the mask is a prefix, as `length_mask`
makes it); padding is never read: its counts are 0 and its labels -1. The loops run on one
thread: splitting a batch over threads did not pay reliably (docs/benchmarks.md).
"""

import functools
import importlib.util
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

NO_PART = -1  # the label of padding (partitions takes it from here)


@functools.cache
def _numba_installed() -> bool:
    # numba's wheels lag new Python releases by months: PyTorch serves until they come
    return importlib.util.find_spec("numba") is not None


def serves(codes: Tensor) -> bool:
    """Whether these loops compute for ``codes``: numba is installed and they are on a CPU."""
    return codes.device.type == "cpu" and _numba_installed()


def code_counts(codes: Tensor, lengths: Tensor, values: int, *, total: bool) -> Tensor:
    """`partitions.per_code`'s counts: int32 ``[B, L, G]``, or their sums over codebooks ``[B, L]``."""
    from vqpool.pooling import kernel_loops

    found = torch.zeros(codes.shape[:2] if total else codes.shape, dtype=torch.int32)
    unused = np.empty((0,) * (3 if total else 2), np.int32)  # the output not asked for
    each, totals = (unused, found.numpy()) if total else (found.numpy(), unused)
    kernel_loops.code_counts(_array(codes), _array(lengths), values, each, totals)
    return found


def corpus_totals(codes: Tensor, lengths: Tensor, counts: Tensor) -> Tensor:
    """int64 ``[B, L]``: ``sum_g counts[g, q_t^g]``, the corpus counts ``[G, V]`` of a frame's codes."""
    from vqpool.pooling import kernel_loops

    found = torch.zeros(codes.shape[:2], dtype=torch.int64)
    kernel_loops.corpus_totals(_array(codes), _array(lengths), _array(counts.long()), found.numpy())
    return found


def linked_components(codes: Tensor, lengths: Tensor, values: int) -> Tensor:
    """`partitions.allsquash_or`'s labels: the earliest frame of each frame's component of the
    graph linking frames that share a code in one codebook (union-find; roots are earliest)."""
    from vqpool.pooling import kernel_loops

    return _labels(codes, lengths, lambda q, n, out: kernel_loops.components(q, n, values, out))


def first_equal_tuples(codes: Tensor, lengths: Tensor) -> Tensor:
    """`partitions.allsquash_and`'s labels: the earliest frame of the utterance holding each
    frame's code tuple. Tuples are hashed into an open-addressing table and compared code by
    code, so the labels are exact (unlike a tuple key, no hash collision can merge tuples)."""
    from vqpool.pooling import kernel_loops

    return _labels(codes, lengths, kernel_loops.first_equal_tuples)


def runs_sharing_with_first(codes: Tensor, lengths: Tensor) -> Tensor:
    """`partitions.squash_or_first`'s labels: a run goes on while a frame shares a code (same
    codebook) with the run's first frame, which labels it."""
    from vqpool.pooling import kernel_loops

    return _labels(codes, lengths, kernel_loops.runs_sharing_with_first)


def greedy_chaining(codes: Tensor, lengths: Tensor, values: int) -> Tensor:
    """`partitions.allsquash_or_greedy`'s labels, in one pass over the runs of equal first code:
    a run joins the earliest seed whose second code is one of its running maxima, or seeds."""
    from vqpool.pooling import kernel_loops

    return _labels(codes, lengths, lambda q, n, out: kernel_loops.greedy_chaining(q, n, values, out))


def xor_of_words(codes: Tensor, words: Tensor) -> Tensor:
    """`stats.tuple_hash`: ``XOR_g words[g, q^g]`` of each tuple ``[..., G]`` (all of them,
    padding included), as int64 ``[...]``."""
    from vqpool.pooling import kernel_loops

    ids = torch.empty(codes.shape[:-1], dtype=torch.int64)
    tuples = _array(codes).reshape(-1, codes.shape[-1])
    kernel_loops.xor_of_words(tuples, _array(words), ids.view(-1).numpy())
    return ids


def zero_padded(codes: Tensor, lengths: Tensor) -> bool:
    """Whether every code beyond each utterance's length is 0 (reading only the padding)."""
    from vqpool.pooling import kernel_loops

    return bool(kernel_loops.zero_beyond(_array(codes), _array(lengths)))


def _labels(codes: Tensor, lengths: Tensor,
            loop: Callable[[np.ndarray, np.ndarray, np.ndarray], None]) -> Tensor:
    """int64 ``[B, L]`` labels, -1 on padding, filled by ``loop(codes, lengths, labels)``."""
    labels = torch.full(codes.shape[:2], NO_PART, dtype=torch.int64)
    loop(_array(codes), _array(lengths), labels.numpy())
    return labels


def _array(tensor: Tensor) -> np.ndarray:
    return tensor.contiguous().numpy()
