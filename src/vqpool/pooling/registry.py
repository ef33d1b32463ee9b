"""The method registry: one record per pooling method, and the one place that says what each needs.

Every layer (``pool``, bench, probe, ``extract --pooled-only``, report) asks this module which
methods exist and which can run on the inputs at hand. Users add their own methods with
`register_method`; packages ship them through the entry-point group ``vqpool.methods``.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from vqpool import plugins
from vqpool.errors import ParameterError, VqpoolError
from vqpool.pooling.options import PoolOptions, add_declared, declared_option
from vqpool.pooling.stats import CorpusStats

log = logging.getLogger(__name__)

# Internal signatures, for codes already checked (int32, 0 on padding) and mask [B, L]:
WeightsFn = Callable[[Tensor, Tensor | None, Tensor, CorpusStats | None, PoolOptions], Tensor]
"""``(lengths [B], codes [B, L, G] | None, mask [B, L], stats, options) -> fp32 [B, L]``."""
VectorsFn = Callable[[Tensor, Tensor, Tensor | None, CorpusStats | None, PoolOptions], Tensor]
"""``(frames [B, L, D], lengths [B], codes | None, stats, options) -> [B, factor * D]``."""
TransformFn = Callable[[Tensor, CorpusStats | None, PoolOptions], Tensor]
"""``(AP vectors [B, D], stats, options) -> [B, D]``."""


@dataclass(frozen=True)
class Method:
    """What one pooling method computes and needs. Exactly one of ``weights`` (a weighted
    average of frames), ``vectors`` (any other function of the frames), ``transform`` (a
    function of the AP vector alone, so stores of pooled AP vectors can derive it) or ``head``
    (a module trained with the probe, built for ``dim``-dimensional frames) is set."""

    name: str
    weights: WeightsFn | None = None
    vectors: VectorsFn | None = None
    transform: TransformFn | None = None
    head: Callable[[int], nn.Module] | None = None
    needs_codes: bool = False
    needs_stats: bool = False
    # The parts of CorpusStats (`vqpool.pooling.stats.PARTS`) it reads; empty: whatever is fitted.
    stats_parts: frozenset[str] = frozenset()
    options: frozenset[str] = frozenset()  # the options that change its output
    output_factor: int = 1  # output size = output_factor x frame size
    builtin: bool = False
    tags: frozenset[str] = frozenset()  # default selections it belongs to (`method_names`)
    description: str = ""

    def __post_init__(self) -> None:
        kinds = [self.weights, self.vectors, self.transform, self.head]
        if sum(kind is not None for kind in kinds) != 1:
            raise VqpoolError(f"method {self.name!r}: give exactly one of weights or pool")

    @property
    def trained(self) -> bool:
        return self.head is not None

    @property
    def needs_frames(self) -> bool:
        """False for transforms of the AP vector, which stored AP vectors serve."""
        return self.transform is None

    def output_dim(self, dim: int) -> int:
        return self.output_factor * dim


_REGISTRY: dict[str, Method] = {}


def _add(method: Method) -> Method:
    _REGISTRY[method.name] = method
    return method


# --- users' methods ---

def register_method(
    name: str,
    weights: Callable[..., Tensor] | None = None,
    *,
    pool: Callable[..., Tensor] | None = None,
    needs_codes: bool = False,
    needs_stats: bool = False,
    options: Mapping[str, Any] | None = None,
    output_factor: int = 1,
    description: str = "",
    replace: bool = False,
) -> Method:
    """Make a pooling method available by ``name`` everywhere vqpool takes one.

    ``weights(lengths [B], codes [B, L, G] | None, stats=None, **options)`` returns fp32 ``[B, L]``
    frame weights, 0 on padding and summing to 1 over each utterance (``L`` is the codes' length,
    or the longest utterance without codes); vqpool averages the frames with them. Or
    ``pool(frames [B, L, D], lengths, codes, stats=None, **options)`` returns ``[B, output_factor
    x D]`` vectors directly. ``codes`` are int64 with padding set to 0. ``needs_stats``: the
    method takes a `CorpusStats` fitted on the training split. ``options`` declares the method's
    own options with their defaults (``{"power": 1.0}``); it receives them as keyword arguments
    and they are taken like the built-in ones (``pool(..., power=2.0)``, ``--option power=2``).
    A built-in name is refused; re-registering a user's name needs ``replace=True``.
    """
    if not isinstance(name, str) or not name or name != name.strip() or "," in name:
        raise ParameterError("name", f"must be a non-empty string without commas or outer spaces; got {name!r}")
    if name in _REGISTRY and _REGISTRY[name].builtin:
        raise ParameterError("name", f"{name!r} is a built-in pooling method; choose another name")
    if name in _REGISTRY and not replace:
        raise ParameterError("name", f"{name!r} is already registered; pass replace=True to replace it")
    if (weights is None) == (pool is None):
        raise ParameterError("weights", "or pool: give exactly one of them")
    for parameter, function in (("weights", weights), ("pool", pool)):
        if function is not None and not callable(function):
            raise ParameterError(parameter, f"must be callable; got {type(function).__name__}")
    if not isinstance(output_factor, int) or output_factor < 1 or (weights is not None and output_factor != 1):
        raise ParameterError("output_factor", f"must be 1 for weights, a positive int for pool; got {output_factor!r}")
    declared = [declared_option(key, value) for key, value in (options or {}).items()]
    names = tuple(option.name for option in declared)
    method = Method(
        name,
        weights=None if weights is None else _user_weights(name, weights, names),
        vectors=None if pool is None else _user_vectors(name, pool, names, output_factor),
        needs_codes=bool(needs_codes),
        needs_stats=bool(needs_stats),
        options=frozenset(names),
        output_factor=output_factor,
        description=description,
    )
    for option in declared:
        add_declared(option)
    return _add(method)


def _user_weights(name: str, function: Callable[..., Tensor], names: tuple[str, ...]) -> WeightsFn:
    def call(lengths: Tensor, codes: Tensor | None, mask: Tensor, stats: CorpusStats | None,
             options: PoolOptions) -> Tensor:
        length = int(lengths.max()) if codes is None else codes.shape[1]
        kwargs = {option: options.value(option) for option in names}
        result = function(lengths, _documented(codes), stats=stats, **kwargs)
        _check_user_weights(name, result, mask[:, :length])
        if length < mask.shape[1]:  # no codes fixed L: pad to the frames' length
            result = nn.functional.pad(result, (0, mask.shape[1] - length))
        return result.float()

    return call


def _documented(codes: Tensor | None) -> Tensor | None:
    """Codes as `register_method` promises them to users' methods: int64 (vqpool's own work in
    int32, which a user's arithmetic such as ``q0 * V + q1`` could overflow)."""
    return None if codes is None else codes.long()


def _check_user_weights(name: str, result: Any, mask: Tensor) -> None:
    """The contract of `register_method`'s ``weights``, checked on every call (cheap next to
    the average itself): a broken plugin fails loudly instead of pooling wrong."""
    import torch

    where = f"pooling method {name!r} returned"
    if not isinstance(result, Tensor) or not result.is_floating_point():
        raise VqpoolError(f"{where} {type(result).__name__}, not a float tensor [B, L]")
    if tuple(result.shape) != tuple(mask.shape):
        raise VqpoolError(f"{where} weights of shape {tuple(result.shape)}, expected {tuple(mask.shape)}")
    if result.device != mask.device:
        raise VqpoolError(f"{where} weights on {result.device}, expected {mask.device}")
    values = result.float()
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise VqpoolError(f"{where} negative or non-finite weights")
    if bool(values[~mask].any()):
        raise VqpoolError(f"{where} non-zero weights on padding frames")
    if not torch.allclose(values.sum(1), torch.ones(()), atol=1e-4):
        raise VqpoolError(f"{where} weights that do not sum to 1 over each utterance")


def _user_vectors(name: str, function: Callable[..., Tensor], names: tuple[str, ...],
                  factor: int) -> VectorsFn:
    def call(frames: Tensor, lengths: Tensor, codes: Tensor | None, stats: CorpusStats | None,
             options: PoolOptions) -> Tensor:
        kwargs = {option: options.value(option) for option in names}
        result = function(frames, lengths, _documented(codes), stats=stats, **kwargs)
        expected = (frames.shape[0], factor * frames.shape[2])
        if not isinstance(result, Tensor) or tuple(result.shape) != expected:
            shown = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
            raise VqpoolError(f"pooling method {name!r} returned {shown}, expected a tensor {expected}")
        return result.float()

    return call


def load_plugins() -> None:
    """Run every ``vqpool.methods`` entry point once (`vqpool.plugins`)."""
    plugins.load(plugins.METHODS)


def get_method(name: str) -> Method:
    """The record of ``name``; an unknown name first loads the plugins, then names the choices."""
    if name not in _REGISTRY:
        load_plugins()
    if name not in _REGISTRY:
        raise ParameterError("method", f"{name!r} is not a pooling method; choose from {', '.join(method_names(trained=None))}")
    return _REGISTRY[name]


def method_names(*, trained: bool | None = False, tag: str | None = None) -> tuple[str, ...]:
    """Every registered method (plugins loaded) in registration order: training-free ones
    (``trained=False``), heads (``True``) or both (``None``); ``tag`` narrows to a default
    selection ("probe": the paper's Table 2; "frame-weights": Figure 3's panels, with
    "frame-weights-stats" when statistics are given; "map": Figure 2's t-SNE maps)."""
    load_plugins()
    return tuple(
        name for name, method in _REGISTRY.items()
        if (trained is None or method.trained == trained) and (tag is None or tag in method.tags)
    )


# --- which methods can run here ---

MISSING = {
    "frames": "frames (the store keeps pooled vectors only: extract it again with frames)",
    "codes": "codes (there are none: use an upstream with a quantizer, or a k-means codebook)",
    "stats": "corpus statistics",
    "training": "training (a supervised head: see the probe)",
    "weights": "frame weights (it is not a weighted average of frames)",
}


@dataclass(frozen=True)
class Available:
    """What a caller can pool from: frames or only ``pooled`` vectors (a pooled-only store),
    codes, corpus statistics (given or fittable), whether heads can be trained (the probe), and
    whether it needs frame weights (a figure of them)."""

    frames: bool = True
    pooled: tuple[str, ...] = ()
    codes: bool = True
    stats: bool = True
    training: bool = False
    frame_weights: bool = False

    def missing(self, method: Method) -> str | None:
        """The first thing ``method`` needs and lacks here (a key of `MISSING`), or None."""
        if method.name in self.pooled:
            return None
        if not self.frames and (method.needs_frames or "ap" not in self.pooled):
            return "frames"
        if method.trained and not self.training:
            return "training"
        if self.frame_weights and method.weights is None:
            return "weights"
        if method.needs_codes and not self.codes:
            return "codes"
        if method.needs_stats and not self.stats:
            return "stats"
        return None


@dataclass
class Selection:
    """The methods that can run, in the order asked, and those that cannot with what they lack.
    For "all" (``everything``) the others are left out, not refused: `reasons` says why."""

    methods: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # method -> key of `MISSING`
    everything: bool = False

    def reasons(self, hints: Mapping[str, str] | None = None) -> list[str]:
        """One clause per missing kind: ``"vq-lp, vq-gp need codes (...)"``, each followed by
        its hint when ``hints`` has one for that kind."""
        groups: dict[str, list[str]] = {}
        for method, missing in self.skipped.items():
            groups.setdefault(missing, []).append(method)
        hints = hints or {}
        return [f"{', '.join(names)} {'needs' if len(names) == 1 else 'need'} {MISSING[missing]}"
                + (f". {hints[missing]}" if missing in hints else "")
                for missing, names in groups.items()]

    def require(self, where: str = "", hints: Mapping[str, str] | None = None,
                parameter: str = "methods") -> list[str]:
        """The methods, or an error naming every one that cannot run (on ``where``) and why.
        ``hints`` add advice per missing kind; ``{name}`` in them names another parameter."""
        on = f" on {where}" if where else ""
        if self.skipped and not self.everything:
            raise ParameterError(parameter, f"names methods that cannot run{on}: "
                                 + "; ".join(self.reasons(hints)))
        if not self.methods and self.everything:
            raise VqpoolError(f"no method can run{on}: " + "; ".join(self.reasons(hints)))
        if not self.methods:
            raise ParameterError(parameter, "names no method: give e.g. ['ap', 'vq-lp']")
        return self.methods


def select_methods(methods: Sequence[str] | str, available: Available = Available()) -> Selection:
    """Which of ``methods`` (names, or "all") can run on ``available``. "all" is every
    registered training-free method, and the heads where they can be trained."""
    if methods == "all":
        names: Iterable[str] = method_names(trained=None if available.training else False)
    else:
        names = [methods] if isinstance(methods, str) else list(methods)
    records = [get_method(name) for name in dict.fromkeys(names)]
    skipped = {m.name: why for m in records if (why := available.missing(m)) is not None}
    return Selection([m.name for m in records if m.name not in skipped], skipped, methods == "all")


def output_dim(method: str, dim: int) -> int:
    """Size of ``method``'s pooled vector for frames of size ``dim`` (2 dim for sp, asp, vap)."""
    return get_method(method).output_dim(dim)
