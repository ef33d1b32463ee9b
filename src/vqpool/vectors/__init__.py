"""The pooled-vector layer: a feature store -> one vector per utterance, for a method and options.

Below `evaluate`, `index`, `export` and `report`, which all take their vectors from here, so
that the vectors ``bench`` scores are the ones ``index build`` and ``export`` hand out:

- `options`: the pooling options a store is pooled with (`resolve_pool_options`);
- `folds`: `Fold`, the rows statistics are fitted on and the rows pooled with them;
- `pooler`: one pass over a store pools a batch with every method (`pool_split`), and
  `FoldPooler` pools fold after fold, reusing what does not depend on the fold;
- `chunks`: the rows of some splits in chunks, with statistics fitted on the training split
  (`plan_pooling`, `pooled_chunks`).
"""

from vqpool.vectors.chunks import CHUNK_ROWS, StorePooling, plan_pooling, pooled_chunks, select_rows
from vqpool.vectors.folds import Fold
from vqpool.vectors.options import resolve_pool_options, stored_options
from vqpool.vectors.pooler import (
    FoldPooler,
    choose_methods,
    fit_stats,
    pool_split,
    store_batches,
    store_offers,
)

__all__ = [
    "CHUNK_ROWS",
    "Fold",
    "FoldPooler",
    "StorePooling",
    "choose_methods",
    "fit_stats",
    "plan_pooling",
    "pool_split",
    "pooled_chunks",
    "resolve_pool_options",
    "select_rows",
    "store_batches",
    "store_offers",
    "stored_options",
]
