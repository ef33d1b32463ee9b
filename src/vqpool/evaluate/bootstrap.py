"""How sure an accuracy is: a seeded bootstrap over the test utterances (docs/methods.md section 6).

An accuracy here is a mean over folds of a mean over seeds of the share of test utterances
classified right. A resample draws, in every fold, as many of its test utterances as it has, with
replacement; the same draw serves every seed of the fold, so the spread between seeds is not
counted twice. The interval holds the middle 95% of the resampled accuracies.
"""

from collections.abc import Sequence

import torch
from torch import Tensor

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
# Utterance draws held at once: resamples are drawn in chunks that keep memory small.
DRAWS_AT_ONCE = 1 << 21


def bootstrap_ci(
    hits: Sequence[Sequence[Tensor]],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> list[float]:
    """``[low, high]`` in percent: the ``level`` bootstrap interval of the accuracy.

    ``hits[fold][seed]`` is a bool ``[N_fold]`` tensor (right or wrong per test utterance, in
    one order for every seed of a fold). The same ``seed`` gives the same interval every time.
    """
    if not hits or any(not seeds for seeds in hits):
        raise ValueError("the bootstrap needs at least one fold with at least one seed")
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(resamples, dtype=torch.float64)
    for seeds in hits:
        outcome = torch.stack([torch.as_tensor(h, dtype=torch.bool) for h in seeds]).double()
        count = outcome.shape[1]
        if count == 0:
            raise ValueError("a fold without test utterances has no accuracy")
        per_chunk = max(1, DRAWS_AT_ONCE // count)
        for start in range(0, resamples, per_chunk):
            draws = torch.randint(count, (min(per_chunk, resamples - start), count),
                                  generator=generator)
            # [seeds, chunk, count] -> accuracy per resample, averaged over the seeds
            total[start : start + len(draws)] += outcome[:, draws].mean(dim=2).mean(dim=0)
    accuracy = 100.0 * total / len(hits)
    tail = (1.0 - level) / 2
    low, high = torch.quantile(accuracy, torch.tensor([tail, 1.0 - tail], dtype=torch.float64))
    return [round(float(low), 4), round(float(high), 4)]
