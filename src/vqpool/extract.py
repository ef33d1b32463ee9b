"""Manifest rows x upstream -> feature store: planned batches, resumable, optionally distributed.

The plan is computed from the manifest and the audio headers alone: utterances sorted longest
first and cut into batches of at most ``batch_seconds`` of padded audio (for upstreams that do
not pad safely, only utterances of identical length share a batch). Everything downstream
follows the plan, which is what makes a resumed or distributed run write the same bytes as an
uninterrupted one: each batch is always computed whole, with the same members.
"""

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vqpool import distributed
from vqpool.audio import ON_BAD_AUDIO, conform
from vqpool.batching import NONFINITE, forward, nonfinite_rows, plan_batches, prefetched
from vqpool.errors import BadAudioError, ParameterError, VqpoolError
from vqpool.progress import progress_bar
from vqpool.rows import canonical_rows, row_warnings
from vqpool.sources import Clip, row_clip
from vqpool.store import (
    HEADER,
    SHARD_BYTES,
    FeatureStore,
    Job,
    PooledOnly,
    StoreHeader,
    StoreWriter,
    UpstreamInfo,
    read_header,
    read_index,
    store_lock,
    store_status,
)

if TYPE_CHECKING:
    from vqpool.pooling import CorpusStats, PoolOptions
    from vqpool.upstream.base import Upstream

log = logging.getLogger(__name__)

# Kinds of bad audio that ``keep_audio`` may keep (with a warning) instead of stopping or skipping.
KEEPABLE = ("silent", "truncated")
MAX_SECONDS = 600.0  # the default longest utterance: longer ones are bad audio (a damaged header?)


@dataclass(frozen=True)
class Item:
    """One utterance of the plan; ``order`` is its position in the store."""

    order: int
    row: dict[str, str]  # the utterance's metadata, stored with it
    duration: float
    clip: Clip = field(repr=False, compare=False)


def plan(
    rows: Sequence[dict[str, str] | Clip],
    batch_seconds: float,
    *,
    pads_safely: bool,
    max_seconds: float | None = None,
    keep_audio: Sequence[str] = KEEPABLE,
    progress: bool = True,
) -> tuple[list[list[Item]], list[BadAudioError]]:
    """Batches in store order (the encoder's plan: longest first), and the files whose header
    could not be read, is damaged (a data chunk shorter than the header says, unless
    ``keep_audio`` has ``"truncated"``) or promises more than ``max_seconds`` of audio.
    ``rows`` are manifest rows or clips (`vqpool.sources`)."""
    clips, found, errors = [], [], []
    with progress_bar(progress, total=len(rows), desc="reading audio headers", unit="file") as bar:
        for row in rows:
            bar.update()
            try:
                clip = row if isinstance(row, Clip) else row_clip(row)
                _check_clip(clip, max_seconds, keep_audio)
            except BadAudioError as error:
                errors.append(error)
                continue
            clips.append(clip)
            found.append(metadata(row))
    batches: list[list[Item]] = []
    for batch in plan_batches(clips, batch_seconds, pads_safely=pads_safely):
        start = sum(len(b) for b in batches)
        batches.append([Item(start + k, found[c], clips[c].duration, clips[c]) for k, c in enumerate(batch)])
    return batches, errors


def _check_clip(clip: Clip, max_seconds: float | None, keep_audio: Sequence[str]) -> None:
    where = clip.meta.get("path") or clip.id
    if max_seconds is not None and clip.duration > max_seconds:
        raise BadAudioError(where, f"too long: {clip.duration:.1f} s of audio by its header, above "
                            f"the limit of {max_seconds:g} s (a damaged header, or raise the limit)")
    if clip.damage is not None:
        if "truncated" not in keep_audio:
            raise BadAudioError(where, clip.damage, kind="truncated")
        log.warning("%s: %s; kept as asked, %.2f s", where, clip.damage, clip.duration)


def metadata(row: dict[str, str] | Clip) -> dict[str, str]:
    """What the store keeps of a row or clip: the manifest row (a clip's id and metadata)."""
    if isinstance(row, Clip):
        return {"id": row.id, **row.meta}
    return dict(row)


def extract(
    rows: Sequence[dict[str, str] | Clip],
    upstream: "Upstream",
    out: str | os.PathLike,
    *,
    batch_seconds: float = 60.0,
    pooled_only: Sequence[str] | None = None,
    stats: "CorpusStats | None" = None,
    options: "Mapping[str, Any] | PoolOptions | None" = None,
    resume: bool = False,
    on_bad_audio: str = "error",
    keep_audio: Sequence[str] = (),
    max_seconds: float | None = MAX_SECONDS,
    corpus: str | None = None,
    task: str | None = None,
    shard_bytes: int = SHARD_BYTES,
    prefetch: int = 2,
    progress: bool = True,
    require_codes: bool = False,
    **pool_options: Any,
) -> FeatureStore:
    """Extract every row's frames and codes (or pooled vectors) into the store at ``out``.

    ``require_codes`` refuses, before anything is written, an upstream that gives no codes (no
    quantizer, codebook or code source): its store would serve none of the VQ methods.

    ``rows`` are manifest rows (``path``, and ``id``, ``label``, ``split``, ...) or clips from
    `vqpool.sources` (a Hugging Face dataset's or lhotse cuts' audio, with their metadata).

    ``pooled_only`` keeps no frames, only vectors pooled on the fly (always with ``ap``, and
    codes when the upstream has them, so corpus statistics can be fitted later); methods that
    need corpus statistics require ``stats``; the pooling options (``options``, a mapping or a
    `PoolOptions`, and keyword options such as ``semantics="reference"`` or a registered method's
    own) go to ``vqpool.pool`` and are recorded in the header as ``pooled_options``.
    ``resume`` finishes an interrupted run, and returns a complete store as it is; either way
    the store must come from the same job (upstream, rows, batching, pooling, corpus and task).
    Rows are the same when their ids and files are: paths are taken (and stored in each
    utterance's metadata) in ``vqpool.rows.canonical_path`` spelling, absolute with symbolic
    links resolved, as ``vqpool data prepare`` writes them.
    ``on_bad_audio="skip"`` skips unusable files and lists them in the store's ``skipped.csv``:
    unreadable, empty, NaN-laden, too short, all-zero (``"silent"``), truncated (a data chunk
    shorter than its header says), longer than ``max_seconds`` by the header (None: no limit),
    with an implausible sample rate, or giving non-finite frames or vectors. ``keep_audio``
    names kinds to keep instead, with a warning: ``"silent"``, ``"truncated"``.
    Labels, splits and other metadata are not part of the job: a store whose rows carry other
    metadata is refused (``vqpool.relabel`` takes the new metadata without extracting again).
    One process writes a store at a time: the store's lock (``vqpool.store.lock``) refuses a
    second at once.
    Under ``torchrun`` every rank extracts its share of the batches into ``out/rank-XXXXX`` and
    rank 0 merges them (see ``vqpool.distributed``).
    ``prefetch`` batches of audio are read and resampled by threads while the model runs.
    """
    from vqpool.pooling import PoolOptions, requested_options

    if on_bad_audio not in ON_BAD_AUDIO:
        raise ParameterError("on_bad_audio", f"must be one of {', '.join(ON_BAD_AUDIO)}, not {on_bad_audio!r}")
    if require_codes and not upstream.num_codebooks:
        raise ParameterError(
            "codebook", f"is needed: upstream {upstream.name} has no quantizer, so the store would "
            "hold no codes and the VQ methods could not run on it. Fit one on the training split "
            f"(`vqpool codebook fit --upstream {upstream.name} --manifest M --out FILE`) or take "
            "codes from another source ({codes_from}); to keep frames only, pass {no_codes}")
    unknown = sorted(set(keep_audio) - set(KEEPABLE))
    if unknown:
        raise ParameterError("keep_audio", f"names {', '.join(map(repr, unknown))}; it keeps "
                             f"{' and '.join(KEEPABLE)} audio")
    if max_seconds is not None and not max_seconds > 0:
        raise ParameterError("max_seconds", f"must be positive, not {max_seconds}")
    if stats is not None and pooled_only is None:
        raise ParameterError("stats", "are only used to pool on the fly: pass {pooled_only} too")
    if (upstream.codebook_size or 0) > np.iinfo(np.int16).max:
        raise VqpoolError(f"codebooks of {upstream.codebook_size} codes do not fit the store's int16 codes")
    if not batch_seconds > 0:
        raise ParameterError("batch_seconds", f"must be positive, not {batch_seconds}")
    chosen = PoolOptions.of(**requested_options(options, pool_options))
    pooler = None
    if pooled_only is not None:
        pooler = _Pooler(pooled_only, stats, upstream, chosen)
    # One spelling of each file, whatever path reached it.
    rows = [row if isinstance(row, Clip) else canonical_rows([row])[0] for row in rows]
    _check_ids(rows)
    header = _header(upstream, rows, batch_seconds, pooler, corpus, task)
    rank, world = distributed.rank_and_world()
    if rank == 0:
        for warning in row_warnings([metadata(row) for row in rows], "the rows to extract"):
            log.warning("%s", warning)
    with ExitStack() as held:
        if rank == 0:  # rank 0 writes OUT (and merges into it): it holds OUT's lock throughout
            held.enter_context(store_lock(out))
        finished = _finished(out, header, rows, resume=resume, world=world, rank=rank)
        if finished is not None:
            return finished
        distributed.sync()  # every rank has looked at ``out`` before any of them writes there
        batches, unreadable = plan(rows, batch_seconds, pads_safely=upstream.pads_safely,
                                   max_seconds=max_seconds, keep_audio=keep_audio,
                                   progress=progress and rank == 0)
        if on_bad_audio == "error" and unreadable:
            raise unreadable[0]
        mine = batches[rank::world]  # neighbouring batches cost about the same: round robin balances
        target = out if world == 1 else distributed.rank_dir(out, rank)
        header = replace(header, job=replace(header.job, part=None if world == 1 else (rank, world),
                                             num_utterances=sum(len(batch) for batch in mine)))
        held.enter_context(store_lock(target))  # the same lock as OUT's for a single process
        if resume and (Path(target) / HEADER).is_file():
            check_same_job(Path(target), job_identity(read_header(target)), job_identity(header))
            check_same_metadata(Path(target), [r["meta"] for r in read_index(Path(target))[0]], rows)
        with StoreWriter(target, header, resume=resume, shard_bytes=shard_bytes) as writer:
            skipped = unreadable if rank == 0 else []
            skipped += _run(mine, upstream, writer, pooler, prefetch, stop_on_bad=on_bad_audio == "error",
                            keep_audio=keep_audio, progress=progress and rank == 0)
            writer.seal(skipped)
        if world > 1:
            distributed.finish(out, world, shard_bytes=shard_bytes)
    return FeatureStore(out)


def _check_ids(rows: Sequence[dict[str, str] | Clip]) -> None:
    seen: dict[str, int] = {}
    for k, row in enumerate(rows):
        ident = str(metadata(row).get("id"))
        if ident in seen:
            raise ParameterError("rows", f"hold id {ident!r} twice (rows {seen[ident]} and {k}): "
                                 "every utterance needs an id of its own")
        seen[ident] = k


def _finished(out: str | os.PathLike, header: StoreHeader, rows: Sequence[dict[str, str] | Clip], *,
              resume: bool, world: int, rank: int) -> FeatureStore | None:
    """The store at ``out`` when it is already done; refuses what this run must not write over."""
    status = store_status(out)
    if status != "absent" and not resume:
        raise VqpoolError(
            f"{out}: already holds a {status} feature store; "
            + ("pass --resume to finish it" if status == "partial" else "choose another output folder")
        )
    if status != "complete":
        if world == 1 and any(Path(out).glob("rank-*")):
            raise VqpoolError(
                f"{out}: holds the rank stores of a torchrun extraction: rerun the same torchrun "
                "command with --resume (or, if every rank finished, `vqpool extract --merge --out OUT`)"
            )
        return None
    if rank == 0:  # holding OUT's lock
        distributed.remove_leftovers(out)
    store = FeatureStore(out)
    check_same_job(Path(out), _reusable(job_identity(store.header)), _reusable(job_identity(header)),
                   complete=True)
    check_same_metadata(Path(out), store.meta, rows, complete=True)
    return store


def _reusable(identity: dict[str, Any]) -> dict[str, Any]:
    """What a finished store must match to be reused: how it was split up, and the library
    versions it was made with (its header records them), do not matter any more."""
    upstream = {k: v for k, v in identity["upstream"].items() if k != "versions"}
    return {**{k: v for k, v in identity.items() if k not in ("part", "num_utterances")}, "upstream": upstream}


def job_identity(header: StoreHeader) -> dict[str, Any]:
    """What two runs writing one store must share: all of its header but the format stamp,
    the job's own fields at the top (as the refusals name them)."""
    identity = header.to_json()
    for key in ("format", "format_version"):
        del identity[key]
    job = identity.pop("job")
    return {**identity, **job}


def check_same_job(path: Path, stored: dict[str, Any], requested: dict[str, Any], *, complete: bool = False) -> None:
    """Refuse to resume (or, when ``complete``, to reuse) a store made with other settings, naming them."""
    differing = _differences(stored, requested)
    if differing:
        shown = _some(differing, 4)
        raise VqpoolError(
            f"{path}: already holds a complete feature store extracted with different settings "
            f"({shown}); choose another output folder, or delete this one to extract it again"
            if complete else f"{path}: cannot resume: the store was started with different "
            f"settings ({shown}); resume with the original ones or start a new store"
        )


def _some(found: list[str], most: int) -> str:
    return "; ".join(found[:most]) + (f"; and {len(found) - most} more" if len(found) > most else "")


def check_same_metadata(path: Path, stored: Sequence[Mapping[str, Any]], rows: Sequence[dict[str, str] | Clip],
                        *, complete: bool = False) -> None:
    """Refuse a store whose utterances carry other metadata (labels, splits…) than ``rows``
    give them: a finished one is not reused, an unfinished one not resumed, so that a changed
    manifest never leaves old labels behind nor mixes old and new ones."""
    changed = metadata_changes(stored, rows)
    if changed:
        whose = "its utterances" if complete else "the utterances already written"
        what = (f"{len(changed)} of {whose} carry other labels, splits or metadata than the rows "
                f"give now ({_some(changed, 3)})")
        raise VqpoolError(
            f"{path}: already holds a complete feature store of these files, but {what}; take the "
            "new ones with `vqpool relabel` (no frames are extracted again), or choose another "
            "output folder" if complete else f"{path}: cannot resume: {what}; take the new ones "
            "first with `vqpool relabel`, then resume, or resume with the original rows"
        )


def metadata_changes(stored: Sequence[Mapping[str, Any]], rows: Sequence[dict[str, str] | Clip]) -> list[str]:
    """``"id: key old -> new"`` for each stored utterance whose row now says otherwise (the
    measured ``duration`` and ``num_frames`` aside; an empty value is the same as none, as in
    a CSV)."""
    def given(meta: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in meta.items() if v not in ("", None) and k not in ("duration", "num_frames")}

    wanted = {str(meta.get("id")): given(meta) for meta in map(metadata, rows)}
    changed = []
    for meta in stored:
        new, old = wanted.get(str(meta.get("id"))), given(meta)
        if new is None or new == old:
            continue
        key = next(k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k))
        changed.append(f"{meta.get('id')}: {key} {_short(old.get(key))} -> {_short(new.get(key))}")
    return changed


def _differences(stored: dict[str, Any], requested: dict[str, Any], prefix: str = "") -> list[str]:
    """``"key: old in the store, new now"`` for every differing leaf (nested dicts as ``a.b``).

    Another upstream ``spec`` explains all its other differences, so it is named alone.
    """
    keys = sorted(key for key in stored.keys() | requested.keys() if stored.get(key) != requested.get(key))
    found = []
    for key in ["spec"] if "spec" in keys else keys:
        old, new = stored.get(key), requested.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += _differences(old, new, f"{prefix}{key}.")
        elif key == "rows_sha256":  # a digest says nothing to a reader
            found.append(f"{prefix}rows: another manifest or corpus")
        else:
            found.append(f"{prefix}{key}: {_short(old)} in the store, {_short(new)} now")
    return found


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _header(
    upstream: "Upstream",
    rows: Sequence[dict[str, str] | Clip],
    batch_seconds: float,
    pooler: "_Pooler | None",
    corpus: str | None,
    task: str | None,
) -> StoreHeader:
    """The header of a whole (single-process) store of this job; a rank's share sets ``part``."""
    digest = rows_digest(rows)
    pooled = None if pooler is None else PooledOnly(
        dims=dict(pooler.dims), stats=pooler.options["stats"], semantics=pooler.pool.semantics,
        a=pooler.pool.a, smoothing=pooler.pool.smoothing, extra=dict(pooler.pool.extra))
    return StoreHeader(
        upstream=UpstreamInfo.from_json(upstream.describe(), f"upstream {upstream.name}"),
        corpus=corpus,
        task=task,
        pooled_only=pooled,
        job=Job(rows_sha256=digest, batch_seconds=batch_seconds, part=None, num_utterances=len(rows)),
    )


def rows_digest(rows: Sequence[dict[str, str] | Clip]) -> str:
    """The job's digest of its rows: their ids and canonical paths, in order (not their labels)."""
    keys = [[meta.get("id"), meta.get("path")] for meta in map(metadata, rows)]
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()


class _Pooler:
    """Pools a batch with ``vqpool.pool`` for pooled-only stores."""

    def __init__(self, methods: Sequence[str], stats: "CorpusStats | None", upstream: "Upstream",
                 options: "PoolOptions") -> None:
        from vqpool.pooling import Available, output_dim, select_methods

        # Checked here, not by the first pool() call, so that a bad method starts no store.
        available = Available(codes=bool(upstream.num_codebooks), stats=stats is not None)
        chosen = select_methods(methods, available).require(parameter="pooled_only", hints={
            "stats": "A pooled-only extraction cannot fit them while it runs: pass {stats} (a "
                     "CorpusStats of the training split, `vqpool stats fit`), or leave these "
                     "methods out: a pooled-only store keeps the AP vectors and codes, from which "
                     "whitening, softdecay and the code statistics are fitted at bench time",
            "codes": f"Upstream {upstream.name} has no quantizer: pass a k-means {{codebook}} "
                     "(`vqpool codebook fit`)",
        })
        if stats is not None:
            _check_stats(stats, upstream)
        self.methods = ["ap", *(m for m in chosen if m != "ap")]
        self.stats = stats
        self.dims = {m: output_dim(m, upstream.dim) for m in self.methods}
        self.pool = options
        self.pool_options = options.as_dict()
        self.options = {"methods": self.methods, "stats": None if stats is None else _stats_id(stats),
                        **self.pool_options}

    def __call__(self, frames: torch.Tensor, lengths: torch.Tensor, codes: torch.Tensor | None) -> dict[str, np.ndarray]:
        from vqpool.pooling import pool

        return {m: pool(frames, lengths, codes, method=m, stats=self.stats, **self.pool_options).float().cpu().numpy()
                for m in self.methods}


def _check_stats(stats: "CorpusStats", upstream: "Upstream") -> None:
    """Statistics of another upstream's frames or codes (another D, G or V) would only fail
    mid-run, or pool silently wrong: refuse them before a store is started."""
    fitted = {"frame dimension D": stats.dim, "codebooks G": stats.num_codebooks,
              "codebook size V": stats.codebook_size}
    here = {"frame dimension D": upstream.dim, "codebooks G": upstream.num_codebooks,
            "codebook size V": upstream.codebook_size}
    differ = [f"{name} {fitted[name]}, not {here[name]}" for name in fitted
              if fitted[name] is not None and fitted[name] != here[name]]
    if differ:
        raise ParameterError("stats", f"were fitted on another upstream's frames or codes "
                             f"({'; '.join(differ)} as upstream {upstream.name} gives); fit them on "
                             "a store of this upstream and codebook (`vqpool stats fit`)")


def _stats_id(stats: "CorpusStats") -> dict[str, Any]:
    """Enough to tell two statistics apart when a pooled-only run is resumed."""
    return {"include": list(stats.include), "num_utterances": stats.num_utterances,
            "total_frames": stats.total_frames, "codebook_size": stats.codebook_size, "dim": stats.dim}


def _run(
    batches: list[list[Item]],
    upstream: "Upstream",
    writer: StoreWriter,
    pooler: "_Pooler | None",
    prefetch: int,
    *,
    stop_on_bad: bool,
    keep_audio: Sequence[str] = (),
    progress: bool,
) -> list[BadAudioError]:
    """Extract the batches not yet committed; returns the files skipped as bad audio."""
    todo = [batch for batch in batches if any(item.order not in writer.committed for item in batch)]
    skipped: list[BadAudioError] = []
    bar = progress_bar(progress, total=sum(len(b) for b in todo), desc="extracting", unit="utt")
    audio_seconds, start = 0.0, time.perf_counter()
    with bar:
        for loaded in prefetched(lambda batch: _load(batch, upstream, keep_audio), todo, prefetch):
            usable = [(item, wave) for item, wave in loaded if not isinstance(wave, BadAudioError)]
            bad = [wave for _, wave in loaded if isinstance(wave, BadAudioError)]
            if bad and stop_on_bad:
                raise bad[0]
            skipped += bad
            if any(item.order not in writer.committed for item, _ in usable):
                records, unusable = _forward(usable, upstream, pooler, writer.committed)
                if unusable and stop_on_bad:
                    raise unusable[0]
                skipped += unusable
                writer.write(records)
            audio_seconds += sum(item.duration for item, _ in loaded)
            bar.update(len(loaded))
            bar.set_postfix_str(f"RTF {(time.perf_counter() - start) / max(audio_seconds, 1e-9):.4f}", refresh=False)
    return skipped


def _where(item: Item) -> str:
    return item.row.get("path") or item.row["id"]


def _load(batch: list[Item], upstream: "Upstream",
          keep_audio: Sequence[str] = ()) -> list[tuple[Item, np.ndarray | BadAudioError]]:
    loaded: list[tuple[Item, np.ndarray | BadAudioError]] = []
    keep_silent = "silent" in keep_audio
    for item in batch:
        try:
            data, rate = item.clip.read()
            wave = conform(data, rate, upstream.sample_rate, _where(item),
                           min_samples=upstream.min_samples, reject_silent=not keep_silent)
            if keep_silent and not np.any(wave):
                log.warning("%s: all-silent audio (every sample is 0); kept as asked", _where(item))
            loaded.append((item, wave))
        except BadAudioError as error:
            loaded.append((item, error))
    return loaded


def _forward(
    usable: list[tuple[Item, np.ndarray]],
    upstream: "Upstream",
    pooler: "_Pooler | None",
    committed: set[int],
) -> tuple[list[tuple[int, dict[str, Any], dict[str, np.ndarray]]], list[BadAudioError]]:
    """Run the upstream on the whole batch; return the records not committed yet, and the files
    whose frames or pooled vectors are not finite.

    Each such file is found by running the batch's members one by one (a batch's output does
    not say which input spoilt it), and the batch runs again without them. That depends only
    on the audio, so a resumed or distributed run finds the same files and writes the same bytes.
    """
    arrays, frame_lengths, bad = _compute(usable, upstream, pooler)
    unusable: list[BadAudioError] = []
    while bad:
        if len(usable) > 1:
            alone = {row: next(iter(reasons.values())) for row in range(len(usable))
                     if (reasons := _compute(usable[row : row + 1], upstream, pooler)[2])}
            bad = alone or bad  # none is bad alone: the batch together is, so each of its bad rows is
        unusable += [BadAudioError(_where(usable[row][0]), reason) for row, reason in sorted(bad.items())]
        usable = [pair for row, pair in enumerate(usable) if row not in bad]
        if not usable:
            return [], unusable
        arrays, frame_lengths, bad = _compute(usable, upstream, pooler)
    records = []
    for row, (item, _) in enumerate(usable):
        if item.order in committed:
            continue
        length = int(frame_lengths[row])
        meta = {**item.row, "duration": item.duration, "num_frames": length}
        records.append((item.order, meta, {
            stream: array[row] if stream.startswith("pooled-") else array[row, :length]
            for stream, array in arrays.items()
        }))
    return records, unusable


def _compute(usable: list[tuple[Item, np.ndarray]], upstream: "Upstream",
             pooler: "_Pooler | None") -> tuple[dict[str, np.ndarray], torch.Tensor, dict[int, str]]:
    """The batch's arrays by stream, its frame lengths, and its rows that are not finite (why)."""
    frames, frame_lengths, codes = forward(upstream, [wave for _, wave in usable],
                                           [_where(item) for item, _ in usable],
                                           [item.row.get("id") for item, _ in usable],
                                           paths=[item.row.get("path") for item, _ in usable], check=False)
    bad = dict.fromkeys(nonfinite_rows(frames), NONFINITE)
    arrays: dict[str, np.ndarray] = {}
    if codes is not None:
        arrays["codes"] = codes.to(torch.int16).cpu().numpy()
    if pooler is None:
        arrays["frames"] = frames.cpu().numpy()
    elif not bad:  # pooling non-finite frames would only spread them
        for method, vectors in pooler(frames, frame_lengths, codes).items():
            arrays["pooled-" + method] = vectors
            for row in nonfinite_rows(vectors):
                bad.setdefault(row, f"pooling with {method} gave NaN or infinite values")
    return arrays, frame_lengths.cpu(), bad
