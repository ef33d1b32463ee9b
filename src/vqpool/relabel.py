"""New labels, splits and other metadata for a store's utterances, without extracting again.

Metadata is not part of an extraction job (``vqpool.extract``): the frames depend on the audio
files alone. ``relabel`` takes the rows' metadata into a store made from the same rows (the
same ids and audio files, in the same order) and refuses any other rows. The result is the
index a fresh extraction with these rows writes, byte for byte.
"""

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from vqpool.errors import VqpoolError
from vqpool.extract import _check_ids, metadata, rows_digest
from vqpool.rows import canonical_rows
from vqpool.sources import Clip, row_clip
from vqpool.store import read_header, read_index, rewrite_metadata, store_lock

log = logging.getLogger(__name__)


def relabel(store: str | os.PathLike, rows: Sequence[dict[str, str] | Clip]) -> int:
    """Give the utterances of the store at ``store`` the metadata of ``rows`` (manifest rows or
    clips, as ``extract`` takes them); returns how many utterances changed.

    Refused, naming the first difference, unless ``rows`` are the rows the store was extracted
    from but for their metadata: the same ids and audio files in the same order, each file as
    long as when it was extracted (its header is read again). An unfinished store may be
    relabelled too, before it is resumed with the new rows. Holds the store's lock.
    """
    path = Path(store)
    header = read_header(path)
    rows = [row if isinstance(row, Clip) else canonical_rows([row])[0] for row in rows]
    _check_ids(rows)
    with store_lock(path):
        records, _ = read_index(path)
        by_id = {str(metadata(row).get("id")): row for row in rows}
        if rows_digest(rows) != header.job.rows_sha256:
            raise VqpoolError(f"{path}: cannot relabel: {_other_rows(records, by_id, len(rows))}; "
                              "relabelling keeps the frames, so it needs the rows the store was "
                              "extracted from (the same ids and audio files, in the same order)")
        for record in records:
            row = by_id[str(record["meta"]["id"])]
            clip = row if isinstance(row, Clip) else row_clip(row)
            if clip.duration != record["meta"]["duration"]:
                raise VqpoolError(
                    f"{path}: cannot relabel: the audio of {record['meta']['id']!r} changed "
                    f"({record['meta']['duration']} s when extracted, {clip.duration} s now); "
                    "extract the store again"
                )

        def new_meta(record: dict) -> dict:
            old = record["meta"]
            return {**metadata(by_id[str(old["id"])]), "duration": old["duration"],
                    "num_frames": old["num_frames"]}

        changed = rewrite_metadata(path, new_meta)
    log.info("%s: new metadata for %d of %d utterances", path, changed, len(records))
    return changed


def _other_rows(records: list[dict], by_id: dict[str, dict[str, str] | Clip], count: int) -> str:
    for record in records:
        ident, stored = str(record["meta"].get("id")), record["meta"].get("path")
        if ident not in by_id:
            return f"utterance {ident!r} of the store is not among the rows"
        now = metadata(by_id[ident]).get("path")
        if now != stored:
            return f"the audio of {ident!r} is {now} now, {stored} in the store"
    return (f"the rows ({count}) are not the ones the store was planned from: other or more "
            "files, or the same in another order")
