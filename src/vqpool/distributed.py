"""Extraction on many processes (``torchrun``): disjoint shards per rank, then one merge.

Every rank computes the same plan (see ``vqpool.extract``) and extracts batches
``rank, rank + W, rank + 2W, …`` into its own store ``OUT/rank-XXXXX``. After a barrier rank 0
merges the rank stores in plan order, which gives exactly the store a single process writes,
and removes them. The merge only reads finished rank stores, so it can also be run on its own
(``merge``, ``merge_ranks`` or ``vqpool extract --merge``), e.g. after copying the rank folders
of several machines into one place.
"""

import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from vqpool.errors import BadAudioError, VqpoolError
from vqpool.store import (
    SHARD_BYTES,
    FeatureStore,
    StoreHeader,
    StoreWriter,
    store_lock,
    store_status,
)
from vqpool.store.writer import remove_debris

MERGE_CHUNK = 256  # utterances per commit while merging

log = logging.getLogger(__name__)


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextmanager
def session(device: str) -> Iterator[str]:
    """Join torchrun's process group when launched by it; yields the device this rank uses."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 or dist.is_initialized():
        yield device
        return
    cuda = device.startswith("cuda")
    if cuda:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    # Fast ranks wait at the merge barrier for the slowest one: allow a long extraction.
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(hours=48))
    try:
        yield device
    finally:
        dist.destroy_process_group()


def rank_dir(out: str | os.PathLike, rank: int) -> Path:
    return Path(out) / f"rank-{rank:05d}"


def sync() -> None:
    """Wait for every rank (nothing to wait for in a single process)."""
    if rank_and_world()[1] > 1:
        dist.barrier()


def finish(out: str | os.PathLike, world: int, *, shard_bytes: int = SHARD_BYTES) -> None:
    """Called by every rank once its own store is sealed: rank 0 merges, the others wait."""
    sync()
    if dist.get_rank() == 0:
        merge_ranks(out, world=world, shard_bytes=shard_bytes)
    sync()


def merge_ranks(out: str | os.PathLike, *, world: int | None = None, shard_bytes: int = SHARD_BYTES) -> FeatureStore:
    """Merge the rank stores ``out/rank-XXXXX`` into the store ``out`` and remove them.

    Holds ``out``'s lock. When ``out`` is already sealed, an earlier merge finished and was
    stopped while removing the rank stores: what is left of them is removed, nothing merged."""
    with store_lock(out):
        if store_status(out) == "complete":
            remove_leftovers(out)
            return FeatureStore(out)
        return _merge_ranks(out, world, shard_bytes)


def _merge_ranks(out: str | os.PathLike, world: int | None, shard_bytes: int) -> FeatureStore:
    found = sorted(Path(out).glob("rank-[0-9][0-9][0-9][0-9][0-9]"))
    if world is None:
        world = len(found)
    parts = [rank_dir(out, rank) for rank in range(world)]
    missing = [part.name for part in parts if part not in found]
    if missing or not parts:
        raise VqpoolError(
            f"{out}: rank stores {', '.join(missing) or 'rank-*'} not found. With several "
            "machines, OUT must be on a filesystem they share, or copy every machine's rank-* "
            "folders into OUT and run `vqpool extract --merge --out OUT`"
        )
    store = merge(parts, out, shard_bytes=shard_bytes)
    for part in parts:
        shutil.rmtree(part)
    return store


def remove_leftovers(out: str | os.PathLike) -> None:
    """Remove what a killed run left beside a sealed store: rank stores whose merge into it
    finished (the merge seals before it removes them), and temporaries. Hold OUT's lock."""
    remove_debris(Path(out))
    for part in sorted(Path(out).glob("rank-[0-9][0-9][0-9][0-9][0-9]")):
        log.info("%s: removing %s, left by a merge that finished", out, part.name)
        shutil.rmtree(part)


def merge(
    parts: Sequence[str | os.PathLike], out: str | os.PathLike, *, shard_bytes: int = SHARD_BYTES
) -> FeatureStore:
    """Join finished stores of one job (disjoint shares of its plan) into ``out``, in plan order.

    Arrays are copied byte for byte, so the result equals what one process would have written.
    """
    stores = [FeatureStore(part) for part in parts]
    shared = [_whole(store.header) for store in stores]
    if any(header != shared[0] for header in shared):
        raise VqpoolError(f"{out}: the stores to merge come from different extraction jobs")
    entries = sorted((order, s, i) for s, store in enumerate(stores) for i, order in enumerate(store.orders))
    orders = [order for order, _, _ in entries]
    if len(set(orders)) != len(orders):
        raise VqpoolError(f"{out}: the stores to merge overlap (an utterance is in two of them)")
    header = replace(shared[0], job=replace(shared[0].job, num_utterances=len(entries)))
    streams = header.streams
    with StoreWriter(out, header, shard_bytes=shard_bytes) as writer:
        for start in range(0, len(entries), MERGE_CHUNK):
            writer.write([  # array() checks each entry's checksum: a damaged rank store stops here
                (order, stores[s].meta[i], {stream: stores[s].array(i, stream) for stream in streams})
                for order, s, i in entries[start : start + MERGE_CHUNK]
            ])
        writer.seal([BadAudioError(entry["path"], entry["reason"]) for store in stores for entry in store.skipped])
    return FeatureStore(out)


def _whole(header: StoreHeader) -> StoreHeader:
    """A rank store's header as the whole store's, but for the count."""
    return replace(header, job=replace(header.job, part=None, num_utterances=0))
