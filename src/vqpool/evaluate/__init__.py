"""The two evaluation protocols of docs/methods.md section 6: 1-NN (Table 1) and linear probe (Table 2).

Public names are imported lazily so that reading a results file does not import the pooling code.
"""

from importlib import import_module
from typing import Any

_PUBLIC = {
    "nearest_neighbours": "vqpool.evaluate.knn",
    "one_nn_accuracy": "vqpool.evaluate.knn",
    "pool_split": "vqpool.vectors",
    "fit_stats": "vqpool.vectors",
    "PoolOptions": "vqpool.pooling",
    "run_bench": "vqpool.evaluate.bench",
    "run_probe": "vqpool.evaluate.probe",
    "train_probe": "vqpool.evaluate.probe",
    "probe_settings": "vqpool.evaluate.probe",
    "ProbeResult": "vqpool.evaluate.probe",
    "Vectors": "vqpool.evaluate.probe",
    "Frames": "vqpool.evaluate.probe",
    "PROBE_DEFAULTS": "vqpool.evaluate.probe",
    "append_result": "vqpool.evaluate.results",
    "read_results": "vqpool.evaluate.results",
    "validate_row": "vqpool.evaluate.results",
    "format_table": "vqpool.evaluate.results",
}

__all__ = list(_PUBLIC)

def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'vqpool.evaluate' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
