"""What makes a store trustworthy, checked: the completion record, the index against the
header, and every entry's bytes against its CRC-32 (``verify``).

``FeatureStore`` runs the cheap checks when it opens a store (no array is read: the completion
record, the header against the copy sealed with it, unique ids and positions, each entry's
streams and sizes against the header) and checks each entry's bytes when it first reads them.
``verify`` reads every byte and lists every problem instead of stopping at the first.
"""

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vqpool.errors import VqpoolError
from vqpool.progress import progress_bar
from vqpool.store.format import (
    HEADER,
    INDEX,
    SEALED,
    Record,
    checksum,
    data_missing,
    parse_line,
    shard_path,
    stream_dtype,
)
from vqpool.store.header import StoreHeader, read_header


def read_sealed(directory: Path) -> dict[str, Any] | None:
    """``complete.json``, checked field by field; None while the store is unfinished."""
    path = directory / SEALED
    if not path.is_file():
        return None
    fix = "delete it and resume the extraction to seal the store again"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise VqpoolError(f"{path}: not JSON ({error}); the completion record is damaged: {fix}") from None
    if not isinstance(data, dict):
        raise VqpoolError(f"{path}: holds {_show(data)}, not the completion record's object: {fix}")
    for name, kind in (("num_utterances", int), ("skipped", int), ("header", dict)):
        value = data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            expected = "a count" if kind is int else "an object"
            raise VqpoolError(f"{path}: field {name!r} is {_show(value)}, expected {expected}: {fix}")
    return data


def header_changes(directory: Path, sealed: dict[str, Any]) -> str | None:
    """How ``header.json`` differs from the copy sealed into ``complete.json`` (None: it does not)."""
    current = json.loads((directory / HEADER).read_text(encoding="utf-8"))
    field = _first_difference(sealed["header"], current)
    if field is None:
        return None
    name, old, new = field
    return (f"{directory / HEADER}: header field {name!r} is {_show(new)}, but was {_show(old)} when "
            f"the store was sealed ({SEALED}); the header was edited: restore it, or extract the "
            "store again")


def _first_difference(old: Any, new: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            found = _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    return None if old == new else (prefix.rstrip("."), old, new)


def index_problems(directory: Path, header: StoreHeader, records: Sequence[Record],
                   lines: Sequence[int] | None = None) -> Iterator[str]:
    """What is wrong with trusted index lines as a whole: repeated utterances, and entries whose
    streams or sizes do not fit the header. ``lines`` gives each record's line number (by
    default the records are the index's first lines)."""
    lines = range(1, len(records) + 1) if lines is None else lines
    index = directory / INDEX
    seen: dict[tuple[str, Any], int] = {}
    for line, record in zip(lines, records, strict=True):
        for key in (("order", record["order"]), ("id", record["meta"].get("id"))):
            if key[1] is None:
                continue
            if key in seen:
                what = f"utterance id {key[1]!r}" if key[0] == "id" else f"plan position {key[1]}"
                yield (f"{index}:{line}: {what} again (first on line {seen[key]}): an index line "
                       "was copied over another; the store is damaged")
            else:
                seen[key] = line
    streams = set(header.streams)
    for position, (line, record) in enumerate(zip(lines, records, strict=True)):
        if set(record["data"]) != streams:
            found = ", ".join(sorted(record["data"])) or "nothing"
            where = f"{directory / HEADER}: header field {_field_of(streams ^ set(record['data']))!r}"
            if position:
                where = f"{index}:{line}: utterance {record['meta'].get('id')!r}"
            yield (f"{where}: the index holds {found} but the header describes "
                   f"{', '.join(sorted(streams))}; the header or the index was edited")
            return
    for stream in header.streams:
        yield from _size_problems(directory, header, stream, records, lines)


def _size_problems(directory: Path, header: StoreHeader, stream: str, records: Sequence[Record],
                   lines: Sequence[int]) -> Iterator[str]:
    pooled = stream.startswith("pooled-")
    itemsize = stream_dtype(stream).itemsize
    width = _width(header, stream)
    wrong = [(line, record) for line, record in zip(lines, records, strict=True)
             if record["data"][stream][2] != itemsize * width * (1 if pooled else record["meta"]["num_frames"])]
    if not wrong:
        return
    if len(wrong) == len(records):  # every entry disagrees with the header: the header changed
        implied = {_implied_width(record, stream, itemsize, pooled) for record in records}
        if len(implied) == 1 and None not in implied:
            per = "" if pooled else " per frame"
            yield (f"{directory / HEADER}: header field {_field_of({stream})!r} is {width}, but "
                   f"the {stream} entries hold {implied.pop()} values{per}; the header was edited "
                   "or belongs to another store")
            return
    line, record = wrong[0]
    nbytes, frames = record["data"][stream][2], record["meta"]["num_frames"]
    shape = f"{width} values" if pooled else f"num_frames {frames} x {width} values"
    yield (f"{directory / INDEX}:{line}: utterance {record['meta'].get('id')!r}: {nbytes} bytes of "
           f"{stream}, not the {itemsize * width * (1 if pooled else frames)} that {shape} of "
           f"{itemsize} bytes make; the index was edited")


def _width(header: StoreHeader, stream: str) -> int:
    if stream == "frames":
        return header.upstream.dim
    if stream == "codes":
        return header.upstream.num_codebooks or 0
    return header.pooled_only.dims[stream.removeprefix("pooled-")]


def _implied_width(record: Record, stream: str, itemsize: int, pooled: bool) -> int | None:
    nbytes = record["data"][stream][2]
    per = itemsize * (1 if pooled else record["meta"]["num_frames"])
    return nbytes // per if per and nbytes % per == 0 else None


def _field_of(streams: set[str]) -> str:
    if "frames" in streams:
        return "upstream.dim"
    if "codes" in streams:
        return "upstream.num_codebooks"
    return "pooled_only.dims"


def entry_problem(directory: Path, record: Record, stream: str, blob: np.ndarray) -> str | None:
    """Why ``blob``, read for ``record``'s ``stream``, is not the bytes that were written."""
    shard, offset, nbytes, crc = record["data"][stream]
    if checksum(blob) == crc:
        return None
    return (f"utterance {record['meta'].get('id')!r}: its {stream} bytes "
            f"({shard_path(directory, stream, shard).name}, {nbytes} bytes from {offset}) differ "
            "from their checksum")


def verify(directory: str | Path, *, progress: bool = False) -> list[str]:
    """Every problem of the store at ``directory``, reading every byte: damaged or repeated index
    lines, a header changed since sealing, entries that do not fit the header, and every entry
    whose bytes differ from their CRC-32. An empty list: the store is exactly as written."""
    directory = Path(directory)
    try:
        header = read_header(directory)
    except VqpoolError as error:
        return [str(error)]
    problems: list[str] = []
    try:
        sealed = read_sealed(directory)
    except VqpoolError as error:
        problems.append(str(error))
        sealed = None
    if sealed is not None and (changed := header_changes(directory, sealed)):
        problems.append(changed)
    records, lines = [], []
    index = directory / INDEX
    sizes: dict[tuple[str, int], int] = {}
    raw = index.read_bytes().splitlines(keepends=True) if index.is_file() else []
    for number, line in enumerate(raw, start=1):
        record = parse_line(line)
        problem = record if isinstance(record, str) else data_missing(directory, record, sizes)
        if problem is None:
            records.append(record)
            lines.append(number)
        else:
            problems.append(f"{index}:{number}: the index line {problem}")
    if sealed is not None and len(raw) != sealed["num_utterances"]:
        problems.append(f"{index}: {len(raw)} lines, but {sealed['num_utterances']} utterances were "
                        f"sealed ({SEALED}); lines were added or removed")
    problems += index_problems(directory, header, records, lines)
    maps: dict[tuple[str, int], np.ndarray] = {}
    total = sum(entry[2] for record in records for entry in record["data"].values())
    with progress_bar(progress, total=total, desc="verifying", unit="B") as bar:
        for line, record in zip(lines, records, strict=True):
            for stream, (shard, offset, nbytes, _) in record["data"].items():
                if (stream, shard) not in maps:
                    maps[stream, shard] = np.memmap(shard_path(directory, stream, shard), np.uint8, mode="r")
                problem = entry_problem(directory, record, stream, maps[stream, shard][offset : offset + nbytes])
                if problem is not None:
                    problems.append(f"{index}:{line}: {problem}")
                bar.update(nbytes)
    return problems


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
