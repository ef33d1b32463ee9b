"""Folds: a hand-worked example, and properties of leave-one-session-out with held-out validation."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from vqpool.data import folds


def test_rows_without_sessions_have_one_fold_their_own_split():
    rows = [{"id": "a", "split": "train"}, {"id": "b", "split": "test"}, {"id": "c", "split": ""}]
    assert folds(rows) == [["train", "test", ""]]


def test_hand_worked_sessions():
    # Session A has six 'x' rows: sorted ids a0..a5, the fifth (a4) validates; 'y' has only one.
    rows = [{"id": f"a{i}", "label": "x", "session": "A"} for i in (5, 3, 1, 0, 2, 4)]
    rows += [{"id": "a9", "label": "y", "session": "A"}, {"id": "b0", "label": "x", "session": "B"}]
    assert folds(rows) == [
        ["test"] * 7 + ["train"],
        ["train", "train", "train", "train", "train", "validation", "train", "test"],
    ]


rows_strategy = st.lists(
    st.tuples(st.sampled_from("ABCD"), st.sampled_from(["neu", "hap", "ang"])),
    min_size=2,
    max_size=60,
).filter(lambda pairs: len({session for session, _ in pairs}) >= 2)


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_leave_one_session_out_properties(pairs):
    rows = [
        {"id": f"u{i:03d}", "session": session, "label": label}
        for i, (session, label) in enumerate(pairs)
    ]
    splits = folds(rows)
    sessions = sorted({row["session"] for row in rows})
    assert len(splits) == len(sessions)
    for session, names in zip(sessions, splits, strict=True):
        # the fold's session is its test set, and its validation rows come from other sessions
        assert [name == "test" for name in names] == [row["session"] == session for row in rows]
    for index in range(len(rows)):
        # outside its own test fold, a row is always train or always validation
        roles = {names[index] for names in splits} - {"test"}
        assert len(roles) == 1
    for (session, label), size in Counter((row["session"], row["label"]) for row in rows).items():
        fold = splits[(sessions.index(session) + 1) % len(sessions)]
        members = [
            i for i, row in enumerate(rows) if (row["session"], row["label"]) == (session, label)
        ]
        assert sum(fold[i] == "validation" for i in members) == size // 5
