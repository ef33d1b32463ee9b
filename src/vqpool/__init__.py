"""vqpool: training-free pooling of speech representations by vector quantization.

The public names are imported lazily so that ``vqpool --help`` does not pay for importing torch.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from vqpool._version import __version__

_PUBLIC = {
    "METHODS": "vqpool.pooling",
    "pool": "vqpool.pooling",
    "frame_weights": "vqpool.pooling",
    "CorpusStats": "vqpool.pooling",
    "PoolOptions": "vqpool.pooling",
    "register_method": "vqpool.pooling",
    "register_upstream": "vqpool.upstream",
    "register_code_source": "vqpool.upstream",
    "heads": "vqpool.pooling.heads",
    "hear": "vqpool.hear",
    "Encoder": "vqpool.encode",
    "FeatureStore": "vqpool.store",
    "index": "vqpool.index",
}
_MODULES = ("heads", "hear", "index")  # names that are modules, not attributes of one

__all__ = [
    "METHODS",
    "CorpusStats",
    "Encoder",
    "FeatureStore",
    "PoolOptions",
    "__version__",
    "frame_weights",
    "heads",
    "hear",
    "index",
    "pool",
    "register_code_source",
    "register_method",
    "register_upstream",
]

if TYPE_CHECKING:
    from vqpool import hear, index
    from vqpool.encode import Encoder
    from vqpool.pooling import (
        METHODS,
        CorpusStats,
        PoolOptions,
        frame_weights,
        heads,
        pool,
        register_method,
    )
    from vqpool.store import FeatureStore
    from vqpool.upstream import register_code_source, register_upstream


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'vqpool' has no attribute {name!r}")
    module = import_module(_PUBLIC[name])
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value
    return value
