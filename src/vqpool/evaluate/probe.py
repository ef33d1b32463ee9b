"""The supervised benchmark (paper Table 2): a linear layer on pooled vectors, best validation kept.

Fixed pooling methods are pooled once and the probe trains on the cached matrix; the heads
``sap``/``asp``/``vap`` are trained jointly with the linear layer on padded frame batches.
"""

import copy
import logging
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vqpool.arguments import at_least, check_device, positive
from vqpool.errors import ParameterError
from vqpool.evaluate.bootstrap import bootstrap_ci
from vqpool.evaluate.results import make_row, write_rows
from vqpool.evaluate.splits import encode_labels, resolve_task, select_folds, warn_about_rows
from vqpool.pooling import PoolOptions, get_method, method_names, requested_options, select_methods
from vqpool.pooling.heads import build_head
from vqpool.progress import progress_bar
from vqpool.store import Store, open_store, store_path
from vqpool.vectors import FoldPooler, resolve_pool_options, store_offers

log = logging.getLogger(__name__)

# docs/methods.md section 6: (learning rate, batch size, epochs) per task.
PROBE_DEFAULTS = {
    "kws": (1e-2, 4096, 200),
    "sid": (1e-3, 128, 50),
    "ic": (1e-3, 512, 200),
    "er": (1e-3, 512, 200),
}
GENERIC_DEFAULTS = (1e-3, 512, 200)

# Padded frame elements (utterances x longest length) fed to a head at once; a larger batch is
# split into micro-batches whose gradients add up to the whole batch's.
MAX_FRAMES = 1 << 16
# Frame stores up to this many bytes (fp16) are read into memory once for the heads' epochs.
CACHE_BYTES = 2 << 30


def probe_settings(task: str, *, lr: float | None = None, batch_size: int | None = None,
                   epochs: int | None = None) -> tuple[dict[str, Any], bool]:
    """The task's hyper-parameters with overrides, and whether the task had defaults of its own."""
    check_training(lr=lr, batch_size=batch_size, epochs=epochs)
    known = task in PROBE_DEFAULTS
    default_lr, default_batch, default_epochs = PROBE_DEFAULTS.get(task, GENERIC_DEFAULTS)
    return {
        "lr": default_lr if lr is None else lr,
        "batch_size": default_batch if batch_size is None else batch_size,
        "epochs": default_epochs if epochs is None else epochs,
    }, known


def check_training(*, lr: float | None = None, batch_size: int | None = None,
                   epochs: int | None = None, patience: int | None = None) -> None:
    """Refuse training settings that cannot train (``None``: not given)."""
    if lr is not None:
        positive("lr", lr)
    for name, value in (("batch_size", batch_size), ("epochs", epochs), ("patience", patience)):
        if value is not None:
            at_least(name, value, 1)


MicroBatch = tuple[Tensor, Tensor | None, Tensor]


class ProbeData(Protocol):
    """A labelled split: ``batches`` yields each batch as micro-batches ``(x, lengths|None, y)``."""

    y: Tensor

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[list[MicroBatch]]: ...


@dataclass
class Vectors:
    """Pooled vectors ``[N, D]`` with labels ``[N]``."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[list[MicroBatch]]:
        order = _order(len(self), generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            yield [(self.x[rows], None, self.y[rows])]


@dataclass
class Frames:
    """Variable-length utterances (a sequence of ``[T, D]`` tensors) with labels ``[N]``."""

    items: Sequence[Tensor]
    y: Tensor
    max_frames: int = MAX_FRAMES

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[list[MicroBatch]]:
        order = _order(len(self), generator).tolist()
        for start in range(0, len(order), batch_size):
            yield list(self._micro(order[start : start + batch_size]))

    def _micro(self, rows: list[int]) -> Iterator[MicroBatch]:
        """Pad similar lengths together, keeping each piece under ``max_frames`` padded frames."""
        utterances = sorted(((self.items[i], i) for i in rows), key=lambda item: len(item[0]))
        piece: list[tuple[Tensor, int]] = []
        for utterance in utterances:
            if piece and (len(piece) + 1) * len(utterance[0]) > self.max_frames:
                yield self._pad(piece)
                piece = []
            piece.append(utterance)
        if piece:
            yield self._pad(piece)

    def _pad(self, piece: list[tuple[Tensor, int]]) -> MicroBatch:
        frames = nn.utils.rnn.pad_sequence([u.float() for u, _ in piece], batch_first=True)
        lengths = torch.tensor([len(u) for u, _ in piece], dtype=torch.long)
        return frames, lengths, self.y[[i for _, i in piece]]


def _order(n: int, generator: torch.Generator | None) -> Tensor:
    return torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)


class Probe(nn.Module):
    """A linear classifier on pooled vectors, or on a trainable pooling head's output."""

    def __init__(self, dim: int, num_classes: int, head: nn.Module | None = None) -> None:
        super().__init__()
        self.head = head
        self.linear = nn.Linear(head.output_dim if head is not None else dim, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.linear(self.head(x, lengths) if self.head is not None else x)


@dataclass
class ProbeResult:
    """``best_epoch`` indexes ``valid_curve`` (0 = after the first epoch); ``model`` is that
    epoch's; ``test_hits`` says which test utterances it classified right (bool ``[N_test]``, in
    the order ``test.batches(..., None)`` yields them: the same for every seed)."""

    test_accuracy: float
    valid_accuracy: float
    best_epoch: int
    valid_curve: list[float] = field(repr=False)
    model: Probe = field(repr=False)
    test_hits: Tensor | None = field(default=None, repr=False)

    @property
    def best_is_last(self) -> bool:
        """The last epoch scored best on validation: more epochs would likely score better."""
        return self.best_epoch == len(self.valid_curve) - 1


@torch.no_grad()
def hits(model: nn.Module, data: ProbeData, *, batch_size: int = 4096,
         device: str | torch.device = "cpu") -> Tensor:
    """Whether each utterance is classified right: bool ``[len(data)]``, in batch order."""
    model.eval()
    found = []
    for batch in data.batches(batch_size, None):
        for x, lengths, y in batch:
            logits = model(x.to(device), lengths.to(device) if lengths is not None else None)
            found.append(logits.argmax(dim=1).cpu() == y)
    return torch.cat(found) if found else torch.zeros(0, dtype=torch.bool)


def evaluate(model: nn.Module, data: ProbeData, *, batch_size: int = 4096,
             device: str | torch.device = "cpu") -> float:
    """Accuracy in percent."""
    return 100.0 * int(hits(model, data, batch_size=batch_size, device=device).sum()) / len(data)


def train_probe(
    train: ProbeData,
    valid: ProbeData,
    test: ProbeData,
    *,
    dim: int,
    num_classes: int,
    head: nn.Module | None = None,
    lr: float = 1e-3,
    batch_size: int = 512,
    epochs: int = 200,
    seed: int = 0,
    patience: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "probe",
) -> ProbeResult:
    """Train a linear probe (and ``head``) with cross-entropy and Adam (weight decay 0).

    After each epoch the validation accuracy is measured; the weights of the best epoch (the
    first, on ties) are kept and scored on ``test``. ``patience`` stops training after that many
    epochs without improvement.
    """
    check_training(lr=lr, batch_size=batch_size, epochs=epochs, patience=patience)
    torch.manual_seed(seed)  # the layer's initial weights (a head arrives initialised)
    shuffle = torch.Generator().manual_seed(seed)
    model = Probe(dim, num_classes, head).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=0.0)
    curve: list[float] = []
    best_state: dict[str, Tensor] = {}
    best_epoch = -1
    with progress_bar(progress, total=epochs, desc=desc, unit="epoch") as bar:
        for epoch in range(epochs):
            model.train()
            for batch in train.batches(batch_size, shuffle):
                optimizer.zero_grad()
                total = sum(len(y) for _, _, y in batch)
                for x, lengths, y in batch:
                    logits = model(x.to(device), lengths.to(device) if lengths is not None else None)
                    (F.cross_entropy(logits, y.to(device), reduction="sum") / total).backward()
                optimizer.step()
            curve.append(evaluate(model, valid, batch_size=batch_size, device=device))
            if best_epoch < 0 or curve[-1] > curve[best_epoch]:
                best_state, best_epoch = copy.deepcopy(model.state_dict()), epoch
            bar.set_postfix_str(f"valid {curve[-1]:.2f}, best {curve[best_epoch]:.2f}", refresh=False)
            bar.update()
            if patience is not None and epoch - best_epoch >= patience:
                break
    model.load_state_dict(best_state)
    test_hits = hits(model, test, batch_size=batch_size, device=device)
    return ProbeResult(
        test_accuracy=100.0 * int(test_hits.sum()) / len(test),
        valid_accuracy=curve[best_epoch],
        best_epoch=best_epoch,
        valid_curve=curve,
        model=model.cpu(),
        test_hits=test_hits,
    )


def _warn_if_under_trained(best_epochs: Mapping[str, list[list[int]]], epochs: int) -> None:
    """One warning naming every method whose best validation epoch was its last (a run that
    patience stopped early cannot be one): its score is likely still rising."""
    last = [method for method, runs in best_epochs.items()
            if any(best == epochs for seeds in runs for best in seeds)]
    if last:
        log.warning(
            "warning: the best validation epoch of %s was the last of %d: %s may be under-trained "
            "and score higher with more epochs", ", ".join(last), epochs,
            "this probe" if len(last) == 1 else "these probes")


class StoreFrames(Sequence[Tensor]):
    """Frames of some store rows, read on demand or taken from ``cache`` (store index -> frames)."""

    def __init__(self, store: Store, indices: Sequence[int],
                 cache: Mapping[int, Tensor] | None = None) -> None:
        self.store = store
        self.indices = list(indices)
        self.cache = cache

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> Tensor:  # type: ignore[override]
        if self.cache is not None:
            return self.cache[self.indices[k]]
        return torch.as_tensor(self.store[self.indices[k]][0])


def _frame_cache(store: Store, rows: list[int], cache_frames: bool | None,
                 progress: bool) -> dict[int, Tensor] | None:
    """Frames of ``rows`` in RAM (fp16) when asked, or by default when they fit ``CACHE_BYTES``."""
    if cache_frames is None:
        total = sum(int(store.meta[i].get("num_frames", 0)) for i in rows)
        cache_frames = 0 < total * store.dim * 2 <= CACHE_BYTES
    if not cache_frames:
        return None
    cache = {}
    with progress_bar(progress, total=len(rows), desc="reading frames", unit="utt") as bar:
        for i in rows:
            cache[i] = torch.as_tensor(store[i][0]).half()
            bar.update()
    return cache


def run_probe(
    store: Store | str | Path,
    methods: Sequence[str] | str | None = None,
    *,
    task: str | None = None,
    seeds: int | Sequence[int] = 3,
    lr: float | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    patience: int | None = None,
    folds: str | int | Sequence[int] = "all",
    splits: Sequence[Sequence[str]] | None = None,
    options: Mapping[str, Any] | PoolOptions | None = None,
    include_validation: bool = False,
    device: str | torch.device = "cpu",
    cache_frames: bool | None = None,
    max_frames: int | None = None,
    results: str | Path | None = None,
    write: bool = True,
    progress: bool = True,
    **pool_options: Any,
) -> list[dict[str, Any]]:
    """Linear-probe accuracy of each method: mean over folds and seeds, std over seeds.

    Hyper-parameters default to the task's (``PROBE_DEFAULTS``; others get ``GENERIC_DEFAULTS``,
    recorded as ``settings.generic_defaults``). Every fold needs validation rows: for IEMOCAP,
    ``vqpool.data.folds`` holds them out of the training sessions. Statistics for the fixed
    methods come from the training rows. ``methods`` defaults to the paper's Table 2 (ap, sp,
    vq-lp and the sap/asp/vap heads); "all" is every registered method and head the store can
    give. Pooling options are those of ``run_bench``. Rows go to ``results`` (default
    ``STORE/results.jsonl``).
    """
    device = check_device(device)
    if isinstance(seeds, int):
        at_least("seeds", seeds, 1)
    elif not seeds:
        raise ParameterError("seeds", "names no seed: give at least one")
    check_training(lr=lr, batch_size=batch_size, epochs=epochs, patience=patience)
    if max_frames is not None:
        at_least("max_frames", max_frames, 1)
    store = open_store(store)
    where = str(store_path(store) or "the store")
    warn_about_rows(store, where)
    if methods is None:
        methods = method_names(trained=None, tag="probe")
    methods = select_methods(methods, store_offers(store, training=True)).require(where)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    heads = [m for m in methods if get_method(m).trained]
    fixed = [m for m in methods if m not in heads]
    resolved, pooled_with = resolve_pool_options(store, fixed, requested_options(options, pool_options),
                                                 where=where)
    # The validation rows select the best epoch.
    chosen = select_folds(store.meta, folds, splits, where=where, need=("train", "validation", "test"))
    labels, classes = encode_labels(store.meta, sorted({i for f in chosen for i in f.used}))
    pooler = FoldPooler(store, fixed, resolved, include_validation=include_validation,
                        device=device, max_frames=max_frames, progress=progress) if fixed else None
    task = resolve_task(store, task)
    hyper, known = probe_settings(task, lr=lr, batch_size=batch_size, epochs=epochs)
    if not known:
        log.info("note: task %r has no defaults in docs/methods.md; using lr %s, batch size %s, "
                 "%s epochs", task, hyper["lr"], hyper["batch_size"], hyper["epochs"])
    cache = (_frame_cache(store, sorted({i for f in chosen for i in f.used}), cache_frames, progress)
             if heads else None)

    scores: dict[str, list[list[float]]] = {m: [] for m in methods}  # [fold][seed]
    test_hits: dict[str, list[list[Tensor]]] = {m: [] for m in methods}  # [fold][seed]
    best_epochs: dict[str, list[list[int]]] = {m: [] for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    common = {"num_classes": len(classes), "lr": hyper["lr"], "batch_size": hyper["batch_size"],
              "epochs": hyper["epochs"], "patience": patience, "device": device,
              "progress": progress}
    for fold in chosen:
        vectors = pooler.vectors(fold) if pooler is not None else {}
        # A fixed method the fold's statistics could not serve is left out (the pooler says why).
        methods = [m for m in methods if m in heads or m in vectors]
        for number, method in enumerate(methods, start=1):
            if method in heads:
                dim = store.dim
                splits_data = [Frames(StoreFrames(store, rows, cache), labels[rows],
                                      max_frames or MAX_FRAMES)
                               for rows in (fold.train, fold.validation, fold.test)]
            else:
                dim = vectors[method].shape[1]
                splits_data = [Vectors(vectors[method][rows], labels[rows])
                               for rows in (fold.train, fold.validation, fold.test)]
            for record in (scores, test_hits, best_epochs):
                record[method].append([])
            started = time.perf_counter()
            for seed in seed_list:
                torch.manual_seed(seed)  # the head's initial weights follow the seed too
                head = build_head(method, dim) if method in heads else None
                result = train_probe(*splits_data, dim=dim, head=head, seed=seed,
                                     desc=f"{method} fold {fold.number} seed {seed}", **common)
                scores[method][-1].append(result.test_accuracy)
                test_hits[method][-1].append(result.test_hits)
                best_epochs[method][-1].append(result.best_epoch + 1)
            seconds[method] += time.perf_counter() - started
            # One line per method, for logs as much as for terminals (the bar is a terminal's).
            where = f" fold {fold.number}/{len(chosen)}" if len(chosen) > 1 else ""
            log.info("probe %d/%d %s%s: test %.2f%%, best validation epoch %s of %d, %.0f s",
                     number, len(methods), method, where, statistics.fmean(scores[method][-1]),
                     "/".join(map(str, best_epochs[method][-1])), hyper["epochs"],
                     time.perf_counter() - started)
    _warn_if_under_trained(best_epochs, hyper["epochs"])

    settings = {
        **hyper, "seeds": seed_list, "patience": patience,
        "include_validation": include_validation, "generic_defaults": not known,
        "folds": [fold.number for fold in chosen],
        "fold_sizes": [[len(f.train), len(f.validation), len(f.test)] for f in chosen],
        "device": str(device),
    }
    path = store_path(store)
    rows = []
    for method in methods:
        per_fold = [statistics.fmean(seed_scores) for seed_scores in scores[method]]
        per_seed = [statistics.fmean(fold_scores) for fold_scores in zip(*scores[method], strict=True)]
        pool_seconds = pooler.seconds.get(method, 0.0) if pooler is not None else 0.0
        rows.append(make_row(
            protocol="probe", method=method, task=task, header=store.header,
            store=str(path) if path else None, per_fold=per_fold, per_seed=per_seed,
            num_train=sum(len(f.train) for f in chosen), num_test=sum(len(f.test) for f in chosen),
            settings={**pooled_with.get(method, resolved).as_dict(), **settings,
                      "best_epochs": best_epochs[method]},
            seconds=pool_seconds + seconds[method],
            timings={"pool": pool_seconds, "train": seconds[method]},
            ci95=bootstrap_ci(test_hits[method]),
        ))
    if write:
        write_rows(store, rows, results)
    return rows
