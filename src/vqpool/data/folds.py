"""Which rows train, validate and test in each fold of a corpus.

Ordinary corpora have one fold: the rows' own ``split``. Rows that carry a ``session`` (IEMOCAP)
have one fold per session, which is left out for test (docs/methods.md section 7). Such corpora have
no official validation split, and selecting on the test session leaks, so every fold holds the
same rows of its training sessions out for validation: in each (session, label) group, sorted by
id, every fifth row (positions 4, 9, 14, ...). That is 20% as in SUPERB's emotion recipe,
stratified by session and label, deterministic, and never from the test session.
"""

from collections.abc import Mapping, Sequence

from vqpool.errors import VqpoolError

VALIDATION_EVERY = 5


def folds(rows: Sequence[Mapping[str, object]]) -> list[list[str]]:
    """One list of split names per fold, aligned with ``rows``."""
    sessions = [str(row.get("session") or "") for row in rows]
    if not any(sessions):
        return [[str(row.get("split") or "") for row in rows]]
    if not all(sessions):
        first = sessions.index("")
        raise VqpoolError(f"row {rows[first].get('id', first)!r} has no session, unlike others")
    if len(set(sessions)) < 2:
        raise VqpoolError(
            f"leave-one-session-out needs two sessions or more, found {sessions[0]!r}"
        )
    held_out = validation_rows(rows)
    return [
        ["test" if session == left_out else "validation" if index in held_out else "train"
         for index, session in enumerate(sessions)]
        for left_out in sorted(set(sessions))
    ]  # fmt: skip


def validation_rows(rows: Sequence[Mapping[str, object]]) -> set[int]:
    """Indices of the rows held out for validation whenever their session trains."""
    groups: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for index, row in enumerate(rows):
        key = (str(row["session"]), str(row.get("label") or ""))
        groups.setdefault(key, []).append((str(row.get("id") or index), index))
    return {
        index
        for group in groups.values()
        for position, (_, index) in enumerate(sorted(group))
        if position % VALIDATION_EVERY == VALIDATION_EVERY - 1
    }
