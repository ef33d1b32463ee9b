"""Hypothesis strategies: random padded batches of codes with heavy repetition, and helpers."""

import torch
from hypothesis import strategies as st
from torch import Tensor

from vqpool.pooling import CorpusStats


@st.composite
def code_column(draw: st.DrawFn, length: int, values: int) -> list[int]:
    """One codebook's codes for one utterance: runs of 1-4 equal codes."""
    column: list[int] = []
    while len(column) < length:
        code, run = draw(st.integers(0, values - 1)), draw(st.integers(1, 4))
        column += [code] * run
    return column[:length]


@st.composite
def code_batches(
    draw: st.DrawFn,
    max_batch: int = 4,
    max_length: int = 12,
    groups: int | None = None,
    values: int | None = None,
) -> tuple[Tensor, Tensor, int]:
    """``(codes [B, L, G], lengths [B], V)``, G in 1..3 and V in 2..5 unless given; padding
    holds garbage, even negative codes."""
    groups = groups or draw(st.integers(1, 3))
    values = values or draw(st.integers(2, 5))
    lengths = draw(st.lists(st.integers(1, max_length), min_size=1, max_size=max_batch))
    length = max(lengths) + draw(st.integers(0, 2))
    garbage = draw(st.integers(-5, 50))
    codes = torch.full((len(lengths), length, groups), garbage)
    for b, n in enumerate(lengths):
        for g in range(groups):
            codes[b, :n, g] = torch.tensor(draw(code_column(n, values)))
    return codes, torch.tensor(lengths), values


def utterance(codes: Tensor, lengths: Tensor, b: int) -> list[tuple[int, ...]]:
    """The true frames' code tuples of utterance ``b``."""
    return [tuple(q) for q in codes[b, : lengths[b]].tolist()]


def frames_for(codes: Tensor, dim: int = 6, seed: int = 0) -> Tensor:
    """Random fp32 frames ``[B, L, dim]`` to go with ``codes``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*codes.shape[:2], dim, generator=generator)


def fit_stats(codes: Tensor, lengths: Tensor, values: int) -> CorpusStats:
    """Real corpus code statistics fitted on one batch."""
    return CorpusStats.fit([(None, lengths, codes)], codebook_size=values, include=["counts"])
