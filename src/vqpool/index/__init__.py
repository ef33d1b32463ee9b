"""A FAISS index over a store's pooled vectors: ``build(...)``, then ``Index.search(vectors, k)``.

```python
from vqpool.index import Index, build

index = build("stores/fsdd-ge2e", "fsdd.index", method="vq-lp")   # or Index.load("fsdd.index")
hits = index.search(index.encode(["query.wav"]), k=10)             # hits.scores, hits.rows, hits.ids
```

FAISS is optional: ``pip install 'vqpool[faiss]'``.
"""

from vqpool.index.reader import Hits, Index
from vqpool.index.writer import build
from vqpool.neighbours import KINDS, IndexParams

__all__ = ["KINDS", "Hits", "Index", "IndexParams", "build"]
