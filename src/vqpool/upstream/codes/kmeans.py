"""k-means codes: a vqpool codebook (`KMeansCodebook`) fitted on *any* upstream and layer(s),
a per-layer codebook included, or a fairseq ``km.bin`` (a joblib-pickled scikit-learn KMeans)
applied to a named upstream layer. The upstream the codebook was fitted on runs on the audio:
the frames' own model, once, when it is the same one (`OwnCodebook`, ``codebook=``)."""

from __future__ import annotations

import hashlib
import inspect
import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from vqpool.code_labels import kmeans_name
from vqpool.errors import ParameterError, VqpoolError
from vqpool.upstream.base import Selection, select_layers
from vqpool.upstream.codebook import KMeansCodebook
from vqpool.upstream.codes.base import CodesFrom, CodeSource, exact_rate
from vqpool.upstream.codes.registry import CodesContext, register_code_source

if TYPE_CHECKING:
    from vqpool.upstream.base import Hidden, Keys, Upstream

log = logging.getLogger(__name__)

KM_BIN_SUFFIXES = (".bin", ".pkl", ".pickle", ".joblib")


def codebook_selections(upstream: Upstream, codebook: KMeansCodebook) -> list[Selection]:
    """The selections of ``upstream`` whose concatenation ``codebook`` quantizes; a codebook of
    another upstream or dimension is refused."""
    selections = [upstream._parse(layer) for layer in codebook.layers]
    expected_dim = sum(map(upstream.dim_of, selections))
    if codebook.upstream != upstream.name or codebook.dim != expected_dim:
        raise VqpoolError(
            f"codebook {codebook.path}: fitted on {codebook.upstream!r} layer "
            f"{','.join(codebook.layers)!r} (dimension {codebook.dim}), not on {upstream.name!r} "
            f"(dimension {expected_dim}); fit one for this upstream with "
            "`vqpool codebook fit`"
        )
    return selections


class UpstreamCodes(CodeSource):
    """A k-means codebook applied to the layer(s) of the upstream it was fitted on: that
    upstream runs on the audio (the frames' own model, once, when it is the same one)."""

    kind = "kmeans"
    pads_safely = True  # the code upstream batches safely itself

    def __init__(self, request: CodesFrom, codebook: KMeansCodebook, upstream: Upstream,
                 shared: bool, file: dict[str, Any] | None = None) -> None:
        self.request, self.codebook, self.upstream, self.shared = request, codebook, upstream, shared
        self.selections = codebook_selections(upstream, codebook)
        self.num_codebooks, self.codebook_size = codebook.num_codebooks, codebook.codebook_size
        self.sample_rate = upstream.sample_rate
        self.rate = exact_rate(upstream.frame_rate)
        self.file = file or {}
        self.name = kmeans_name(codebook.upstream, codebook.layers)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "upstream": self.codebook.upstream, "layers": list(self.codebook.layers),
                "codebook": self.codebook.describe(), **self.file}

    def codes(self, waveforms: Tensor, lengths: Tensor, ids: list[str] | None = None) -> tuple[Tensor, Tensor]:
        output = self.upstream(waveforms, lengths, layers=self.codebook.layers[0])
        return output.codes, output.frame_lengths

    def frame_codes(self, upstream: Upstream, waveforms: Tensor, lengths: Tensor, hidden: Hidden,
                    frame_lengths: Tensor, keys: Keys) -> Tensor:
        if not self.shared:
            return super().frame_codes(upstream, waveforms, lengths, hidden, frame_lengths, keys)
        # the frames' own model: its hidden states hold the codebook's layers already
        return self.codebook.encode(select_layers(hidden, self.selections)[:, : int(frame_lengths.max())])


class OwnCodebook(UpstreamCodes):
    """A codebook fitted on the frames' own upstream, given as ``codebook=`` (``--codebook``):
    the codes an upstream without a quantizer gets. Store headers record it as the upstream's
    ``codebook``, not as codes from elsewhere."""

    kind = "codebook"
    from_elsewhere = False

    def __init__(self, codebook: KMeansCodebook, upstream: Upstream) -> None:
        super().__init__(CodesFrom(str(codebook.path or "codebook")), codebook, upstream, shared=True)


class _Estimator:
    """Stands in for the scikit-learn KMeans a km.bin holds: keeps its state, runs no code."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def read_km_bin(path: Path) -> np.ndarray:
    """The ``cluster_centers_ [V, D]`` of a joblib-pickled scikit-learn (MiniBatch)KMeans.

    A pickle can name any function to call while it loads. This one is read by joblib's
    unpickler restricted to numpy's array and dtype rebuilding and to joblib's array wrapper;
    the KMeans classes are replaced by a stand-in that only keeps their state, so no
    scikit-learn code runs either. Anything else named (``os.system``, ...) stops the load."""
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]

    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("joblib.numpy_pickle", "NumpyArrayWrapper"): NumpyArrayWrapper}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[module, "_reconstruct"] = multiarray._reconstruct
        allowed[module, "scalar"] = multiarray.scalar
    estimators = {"KMeans", "MiniBatchKMeans"}
    modules = {"sklearn.cluster._kmeans", "sklearn.cluster.k_means_", "sklearn.cluster._k_means"}

    class Restricted(NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module in modules and name in estimators:
                return _Estimator
            if (module, name) in allowed:
                return allowed[module, name]
            raise pickle.UnpicklingError(f"it names {module}.{name}")

    # joblib >= 1.4 takes ensure_native_byte_order; earlier ones do not
    native = {"ensure_native_byte_order": True} if "ensure_native_byte_order" in inspect.signature(
        NumpyUnpickler.__init__).parameters else {}
    try:
        with path.open("rb") as file:
            model = Restricted(str(path), file, **native).load()
    except FileNotFoundError:
        raise ParameterError("codes_from", f"{path}: no such file") from None
    except Exception as error:  # a damaged or hostile pickle fails in many ways
        raise VqpoolError(f"{path}: refused as a km.bin ({error}); only numpy arrays and "
                          "scikit-learn's KMeans / MiniBatchKMeans may be in it") from None
    centers = getattr(model, "state", {}).get("cluster_centers_") if isinstance(model, _Estimator) else None
    if not isinstance(centers, np.ndarray) or centers.ndim != 2 or centers.dtype.kind != "f":
        raise VqpoolError(f"{path}: not a fitted scikit-learn KMeans (no cluster_centers_ [V, D])")
    return centers


def _file(path: Path, **extra: str) -> dict[str, Any]:
    return {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), **extra}


def _upstream_codes(request: CodesFrom, codebook: KMeansCodebook, context: CodesContext,
                    file: dict[str, Any]) -> UpstreamCodes:
    frames = context.upstream
    if codebook.upstream == frames.name:
        return UpstreamCodes(request, codebook, frames, shared=True, file=file)
    log.info("codes from %s: running upstream %s as well", request.spec, codebook.upstream)
    other = context.load_upstream(codebook.upstream, layers=codebook.layers[0], codebook=codebook,
                                  device=frames.device, allow_download=context.allow_download)
    return UpstreamCodes(request, codebook, other, shared=False, file=file)


def _km_bin(request: CodesFrom, context: CodesContext) -> UpstreamCodes:
    path = Path(request.spec).expanduser()
    if request.layer is None:
        raise ParameterError("codes_from.layer", f"is needed with a km.bin ({path}): the upstream "
                             "layer its k-means was fitted on, e.g. 6")
    centers = read_km_bin(path)
    codebook = KMeansCodebook([torch.from_numpy(np.asarray(centers, dtype=np.float32))], {
        "upstream": request.upstream or context.upstream.name, "layer": request.layer,
        "num_codebooks": 1, "codebook_size": int(centers.shape[0]), "dim": int(centers.shape[1]),
        "format": "km.bin"}, path)
    return _upstream_codes(request, codebook, context, _file(path, format="fairseq km.bin"))


def _vqpool_codebook(request: CodesFrom, context: CodesContext) -> UpstreamCodes:
    path = Path(request.spec).expanduser()
    return _upstream_codes(request, KMeansCodebook.load(path), context, _file(path))


register_code_source("km.bin", _km_bin, suffixes=KM_BIN_SUFFIXES, builtin=True,
                     description="a fairseq km.bin (scikit-learn KMeans) on an upstream layer")
# Any other file is read as a vqpool codebook (its own format check names what is wrong).
register_code_source("kmeans", _vqpool_codebook, suffixes=(".pt", ".codebook"), builtin=True, fallback=True,
                     matches=lambda request: Path(request.spec).expanduser().is_file(),
                     description="a vqpool k-means codebook of any upstream and layer(s)")
