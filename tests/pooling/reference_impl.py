"""A slow, literal reading of docs/methods.md sections 2-3: one utterance at a time, plain Python.

Everything works on ``codes``, a list of code tuples (one per true frame), and returns a list
of weights, one per frame. The fast path in vqpool.pooling must agree with this.
"""

from collections import Counter
from itertools import groupby

Codes = list[tuple[int, ...]]
Parts = list[list[int]]


def shares(p: tuple[int, ...], q: tuple[int, ...]) -> bool:
    """Two frames share a code in the same codebook."""
    return any(a == b for a, b in zip(p, q, strict=True))


def squash_and(codes: Codes) -> Parts:
    parts, t = [], 0
    for _, run in groupby(codes):
        size = len(list(run))
        parts.append(list(range(t, t + size)))
        t += size
    return parts


def squash_or(codes: Codes, semantics: str) -> Parts:
    """Paper: a frame joins the run if it shares a code with its predecessor; reference: with
    the run's first frame."""
    parts = [[0]]
    for t in range(1, len(codes)):
        anchor = parts[-1][-1] if semantics == "paper" else parts[-1][0]
        if shares(codes[t], codes[anchor]):
            parts[-1].append(t)
        else:
            parts.append([t])
    return parts


def allsquash_and(codes: Codes) -> Parts:
    parts: dict[tuple[int, ...], list[int]] = {}
    for t, q in enumerate(codes):
        parts.setdefault(q, []).append(t)
    return list(parts.values())


def allsquash_or(codes: Codes) -> Parts:
    """Connected components by union-find: each frame is united with the first frame that holds
    the same code in the same codebook."""
    parent = list(range(len(codes)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[tuple[int, int], int] = {}
    for t, q in enumerate(codes):
        for g, c in enumerate(q):
            s = first.setdefault((g, c), t)
            parent[find(t)] = find(s)
    parts: dict[int, list[int]] = {}
    for t in range(len(codes)):
        parts.setdefault(find(t), []).append(t)
    return list(parts.values())


def greedy_chaining(codes: Codes) -> Parts:
    """The reference vq-allsquash-or, step by step as docs/methods.md states it."""
    second = min(1, len(codes[0]) - 1)  # with one codebook its code plays both roles
    runs, t = [], 0
    for _, run in groupby(codes, key=lambda q: q[0]):
        size = len(list(run))
        runs.append(list(range(t, t + size)))
        t += size
    parts = []
    while runs:
        seed, *others = runs
        v = codes[seed[0]][second]
        part, remaining = list(seed), []
        for run in others:
            merged = False
            for f in run:
                if codes[f][second] == v:
                    merged = True
                    break
                if codes[f][second] > v:
                    break
            if merged:
                part.extend(run)
            else:
                remaining.append(run)
        parts.append(sorted(part))
        runs = remaining
    return parts


def partition_weights(parts: Parts, length: int) -> list[float]:
    w = [0.0] * length
    for part in parts:
        for t in part:
            w[t] = 1 / (len(parts) * len(part))
    return w


def greedy_weights(parts: Parts, codes: Codes) -> list[float]:
    """Per code tuple, in part creation order, the later part overwriting; no renormalisation."""
    value = {}
    for part in parts:
        for t in part:
            value[codes[t]] = 1 / (len(part) * len(parts))
    return [value[q] for q in codes]


def normalize(w: list[float]) -> list[float]:
    total = sum(w)
    return [x / total for x in w]


def local_probability(codes: Codes) -> list[float]:
    counts = [Counter(q[g] for q in codes) for g in range(len(codes[0]))]
    return normalize([1 / sum(counts[g][c] for g, c in enumerate(q)) for q in codes])


class Corpus:
    """The training corpus's counts: per codebook, and per whole code tuple."""

    def __init__(self, corpus: Codes) -> None:
        self.codes = (
            [Counter(q[g] for q in corpus) for g in range(len(corpus[0]))] if corpus else []
        )
        self.tuples = Counter(corpus)
        self.total = len(corpus)


def global_probability(codes: Codes, corpus: Corpus, smoothing: float) -> list[float]:
    return normalize(
        [1 / sum(corpus.codes[g][c] + smoothing for g, c in enumerate(q)) for q in codes]
    )


def sif(codes: Codes, corpus: Corpus, a: float) -> list[float]:
    return normalize([a / (a + corpus.tuples[q] / corpus.total) for q in codes])


def weights(
    method: str,
    codes: Codes,
    semantics: str,
    corpus: Corpus | None = None,
    *,
    a: float = 1e-3,
    smoothing: float = 1.0,
) -> list[float]:
    """The frame weights of one utterance (``corpus``: for vq-gp, vq-bp, vq-sif)."""
    if method == "ap":
        return [1 / len(codes)] * len(codes)
    if method == "vq-squash-and":
        return partition_weights(squash_and(codes), len(codes))
    if method == "vq-squash-or":
        return partition_weights(squash_or(codes, semantics), len(codes))
    if method == "vq-allsquash-and":
        return partition_weights(allsquash_and(codes), len(codes))
    if method == "vq-allsquash-or" and semantics == "paper":
        return partition_weights(allsquash_or(codes), len(codes))
    if method == "vq-allsquash-or":
        return greedy_weights(greedy_chaining(codes), codes)
    if method == "vq-lp":
        return local_probability(codes)
    if method == "vq-gp":
        return global_probability(codes, corpus, smoothing)
    if method == "vq-bp":
        lp, gp = local_probability(codes), global_probability(codes, corpus, smoothing)
        return normalize([x * y for x, y in zip(lp, gp, strict=True)])
    if method == "vq-sif":
        return sif(codes, corpus, a)
    raise ValueError(method)
