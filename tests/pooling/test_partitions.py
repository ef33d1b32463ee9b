"""The Figure 1 examples of docs/methods.md section 3, and other hand-worked partitions."""

import pytest
import torch

from vqpool.pooling import frame_weights, partitions

# each test runs with the compiled CPU loops and with the PyTorch ops a GPU runs (conftest.py)
pytestmark = pytest.mark.usefixtures("code_loops")

# docs/methods.md section 3, (upper, lower) code of each frame
AB = [(1, 2), (1, 1), (2, 1), (3, 2), (3, 2)]
CD = [(3, 1), (1, 2), (2, 2), (3, 1), (4, 2)]


def parts(function, codes):
    """Run a partition function on one utterance; return its parts as sets of frame numbers
    q1..qT, as the figure writes them."""
    labels = function(torch.tensor([codes]), torch.ones(1, len(codes), dtype=torch.bool))[0]
    return sorted(
        (
            {t + 1 for t in range(len(codes)) if labels[t] == label}
            for label in labels.unique().tolist()
        ),
        key=min,
    )


@pytest.mark.parametrize(
    ("function", "codes", "expected"),
    [
        (partitions.squash_and, AB, [{1}, {2}, {3}, {4, 5}]),  # (a)
        (partitions.squash_or, AB, [{1, 2, 3}, {4, 5}]),  # (b), paper
        (partitions.squash_or_first, AB, [{1, 2}, {3}, {4, 5}]),  # (b), reference
        (partitions.allsquash_and, CD, [{1, 4}, {2}, {3}, {5}]),  # (c)
        (partitions.allsquash_or, CD, [{1, 4}, {2, 3, 5}]),  # (d), paper
        (partitions.allsquash_or_greedy, CD, [{1, 4}, {2, 3, 5}]),  # (d), reference agrees here
    ],
)
def test_figure_1(function, codes, expected):
    assert parts(function, codes) == expected


@pytest.mark.parametrize(
    ("method", "semantics", "codes", "expected"),
    [
        ("vq-squash-and", "paper", AB, [1 / 4, 1 / 4, 1 / 4, 1 / 8, 1 / 8]),
        ("vq-squash-and", "reference", AB, [1 / 4, 1 / 4, 1 / 4, 1 / 8, 1 / 8]),
        ("vq-squash-or", "paper", AB, [1 / 6, 1 / 6, 1 / 6, 1 / 4, 1 / 4]),
        ("vq-squash-or", "reference", AB, [1 / 6, 1 / 6, 1 / 3, 1 / 6, 1 / 6]),
        ("vq-allsquash-and", "paper", CD, [1 / 8, 1 / 4, 1 / 4, 1 / 8, 1 / 4]),
        ("vq-allsquash-and", "reference", CD, [1 / 8, 1 / 4, 1 / 4, 1 / 8, 1 / 4]),
        ("vq-allsquash-or", "paper", CD, [1 / 4, 1 / 6, 1 / 6, 1 / 4, 1 / 6]),
        # greedy, per tuple: part {q1,q4} gives (3,1) 1/4; part {q2,q3,q5} gives its tuples 1/6
        ("vq-allsquash-or", "reference", CD, [1 / 4, 1 / 6, 1 / 6, 1 / 4, 1 / 6]),
    ],
)
def test_figure_1_weights(method, semantics, codes, expected):
    weights = frame_weights(torch.tensor([5]), torch.tensor([codes]), method, semantics=semantics)
    torch.testing.assert_close(weights[0], torch.tensor(expected))


def test_greedy_scan_stops_at_a_larger_second_code():
    # runs of equal first code: [q1] v=3; [q2, q3] whose scan meets 4 > 3 before 3: no merge.
    # Connected components would join all three (q1, q3 share 3; q2, q3 share 2).
    codes = [(1, 3), (2, 4), (2, 3)]
    assert parts(partitions.allsquash_or_greedy, codes) == [{1}, {2, 3}]
    assert parts(partitions.allsquash_or, codes) == [{1, 2, 3}]
    weights = frame_weights(
        torch.tensor([3]), torch.tensor([codes]), "vq-allsquash-or", semantics="reference"
    )
    torch.testing.assert_close(weights[0], torch.tensor([1 / 2, 1 / 4, 1 / 4]))


def test_greedy_later_part_wins_a_shared_tuple():
    # runs: [q1]=(1,3) v=3 | [q2]=(2,0) | [q3,q4]=(1,5),(1,3): 5 > 3 ends the scan.
    # Parts in creation order: {q1}, {q2} (v=0; 5 > 0), {q3, q4}; K = 3.
    # Tuple (1,3) sits in parts 1 and 3; part 3 wins: q1 and q4 get 1/(2*3); no renormalisation.
    codes = [(1, 3), (2, 0), (1, 5), (1, 3)]
    assert parts(partitions.allsquash_or_greedy, codes) == [{1}, {2}, {3, 4}]
    weights = frame_weights(
        torch.tensor([4]), torch.tensor([codes]), "vq-allsquash-or", semantics="reference"
    )
    torch.testing.assert_close(weights[0], torch.tensor([1 / 6, 1 / 3, 1 / 6, 1 / 6]))
    assert weights.sum() < 1


def test_squash_or_reference_compares_with_the_first_frame():
    # q2 shares with q1 (upper 1), q3 shares with q2 (lower 2) but not with q1, q4 shares with q1
    codes = [(1, 1), (1, 2), (3, 2), (5, 1)]
    assert parts(partitions.squash_or, codes) == [{1, 2, 3}, {4}]
    assert parts(partitions.squash_or_first, codes) == [{1, 2}, {3}, {4}]
    # a run may outlive a break with the predecessor when it still shares with its first frame
    codes = [(1, 1), (2, 2), (3, 1)]
    assert parts(partitions.squash_or, codes) == [{1}, {2}, {3}]
    assert parts(partitions.squash_or_first, codes) == [{1}, {2}, {3}]
    codes = [(1, 1), (1, 2), (3, 1)]
    assert parts(partitions.squash_or, codes) == [{1, 2}, {3}]
    assert parts(partitions.squash_or_first, codes) == [{1, 2, 3}]


def test_labels_are_minus_one_on_padding():
    codes = torch.tensor([AB, AB])
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    for function in (
        partitions.squash_and,
        partitions.squash_or,
        partitions.squash_or_first,
        partitions.allsquash_and,
        partitions.allsquash_or,
        partitions.allsquash_or_greedy,
    ):
        labels = function(codes, mask)
        assert labels[1, 3:].tolist() == [-1, -1]
        assert (labels[mask] >= 0).all()


@pytest.mark.parametrize("doubling", [True, False])  # a GPU's rounds, a CPU's steps
def test_orbit_of_the_first_frame_either_way(doubling):
    """Marks 0, f(0), f(f(0)), ... until the end, as a loop following f finds them."""
    generator = torch.Generator().manual_seed(0)
    for length in (1, 2, 7, 64):
        positions = torch.arange(length)
        # f(t) in (t, L]: a random jump ahead of every frame, short or to the end
        ahead = torch.randint(1, length + 1, (9, length), generator=generator)
        next_start = torch.minimum(positions + ahead, torch.tensor(length))
        on = partitions._orbit_of_first_frame(next_start, doubling=doubling)
        for row in range(9):
            expected, t = set(), 0
            while t < length:
                expected.add(t)
                t = int(next_start[row, t])
            assert set(on[row].nonzero().squeeze(1).tolist()) == expected
