"""The loops behind `kernels`, compiled by numba on first use (and cached on disk: seconds, once
per machine). Each goes one utterance at a time and reads only its true frames; a table of one
entry per (codebook, code) stays in cache and is cleared by revisiting the utterance's codes."""

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True)


@jit
def add_counts(frames, table):  # noqa: ANN001, ANN201 - numba infers the types
    for t in range(frames.shape[0]):
        for g in range(frames.shape[1]):
            table[g, frames[t, g]] += 1


@jit
def clear(frames, table, empty):  # noqa: ANN001, ANN201
    for t in range(frames.shape[0]):
        for g in range(frames.shape[1]):
            table[g, frames[t, g]] = empty


@jit
def code_counts(codes, lengths, values, each, totals):  # noqa: ANN001, ANN201
    """Fills ``each [B, L, G]``, or ``totals [B, L]`` when it is not empty."""
    table = np.zeros((codes.shape[2], values), np.int32)
    summing = totals.size > 0
    for row in range(codes.shape[0]):
        frames = codes[row, : lengths[row]]
        add_counts(frames, table)
        for t in range(frames.shape[0]):
            summed = 0
            for g in range(frames.shape[1]):
                count = table[g, frames[t, g]]
                if summing:
                    summed += count
                else:
                    each[row, t, g] = count
            if summing:
                totals[row, t] = summed
        clear(frames, table, 0)


@jit
def corpus_totals(codes, lengths, counts, found):  # noqa: ANN001, ANN201
    for row in range(codes.shape[0]):
        for t in range(lengths[row]):
            summed = 0
            for g in range(codes.shape[2]):
                summed += counts[g, codes[row, t, g]]
            found[row, t] = summed


@jit
def components(codes, lengths, values, labels):  # noqa: ANN001, ANN201
    holder = np.full((codes.shape[2], values), -1, np.int32)  # a frame seen with each code
    parent = np.empty(codes.shape[1], np.int32)
    for row in range(codes.shape[0]):
        frames = codes[row, : lengths[row]]
        for t in range(frames.shape[0]):
            parent[t] = t
            own = t  # the root of t's component: its earliest frame so far
            joined = False  # whether t's component holds t - 1 (and all t - 1 is linked to)
            for g in range(frames.shape[1]):
                code = frames[t, g]
                if t > 0 and frames[t - 1, g] == code:
                    if joined:
                        continue
                    joined, first = True, t - 1
                else:
                    first = holder[g, code]
                    if first < 0:
                        holder[g, code] = t
                        continue
                # the later root points at the earlier one: roots stay the earliest frames
                other = root(parent, first)
                if other != own:
                    parent[max(own, other)] = min(own, other)
                    own = min(own, other)
        for t in range(frames.shape[0]):
            labels[row, t] = root(parent, t)
        clear(frames, holder, -1)


@jit
def root(parent, node):  # noqa: ANN001, ANN201
    while parent[node] != node:
        parent[node] = parent[parent[node]]  # path halving
        node = parent[node]
    return node


@jit
def first_equal_tuples(codes, lengths, labels):  # noqa: ANN001, ANN201
    slots = 1
    while slots < 2 * codes.shape[1]:  # at most half full: short probe sequences
        slots *= 2
    table = np.full(slots, -1, np.int64)  # the first frame of each tuple seen, at its hash
    for row in range(codes.shape[0]):
        frames = codes[row, : lengths[row]]
        for t in range(frames.shape[0]):
            slot = tuple_hash(frames[t]) & (slots - 1)
            while True:
                held = table[slot]
                if held < 0:
                    table[slot] = t
                    labels[row, t] = t
                    break
                if equal(frames[held], frames[t]):
                    labels[row, t] = held
                    break
                slot = (slot + 1) & (slots - 1)
        table[:] = -1


@jit
def tuple_hash(codes):  # noqa: ANN001, ANN201
    key = np.uint64(0)
    for code in codes:
        key = (key ^ np.uint64(code)) * np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing
    return np.int64(key >> np.uint64(33))


@jit
def equal(one, other):  # noqa: ANN001, ANN201
    for g in range(one.shape[0]):
        if one[g] != other[g]:
            return False
    return True


@jit
def runs_sharing_with_first(codes, lengths, labels):  # noqa: ANN001, ANN201
    for row in range(codes.shape[0]):
        frames = codes[row, : lengths[row]]
        start = 0
        for t in range(frames.shape[0]):
            if not shares(frames[t], frames[start]):
                start = t
            labels[row, t] = start


@jit
def shares(one, other):  # noqa: ANN001, ANN201
    for g in range(one.shape[0]):
        if one[g] == other[g]:
            return True
    return False


@jit
def greedy_chaining(codes, lengths, values, labels):  # noqa: ANN001, ANN201
    second = min(1, codes.shape[2] - 1)  # with one codebook its code plays both roles
    seed_of = np.full(values, -1, np.int64)  # per second code, the first frame of its seed run
    for row in range(codes.shape[0]):
        frames = codes[row, : lengths[row]]
        start = 0
        while start < frames.shape[0]:  # runs of equal first code, in time order
            end = start + 1
            while end < frames.shape[0] and frames[end, 0] == frames[start, 0]:
                end += 1
            # claimed by the earliest seed whose code is a running maximum of the run's codes
            claimed, record = -1, -1
            for t in range(start, end):
                code = frames[t, second]
                if code > record:
                    record = code
                    seed = seed_of[code]
                    if seed >= 0 and (claimed < 0 or seed < claimed):
                        claimed = seed
            if claimed < 0:  # a new seed: no earlier seed holds its code, which is a record
                claimed = start
                seed_of[frames[start, second]] = start
            labels[row, start:end] = claimed
            start = end
        for t in range(frames.shape[0]):
            seed_of[frames[t, second]] = -1


@jit
def xor_of_words(tuples, words, ids):  # noqa: ANN001, ANN201
    for n in range(tuples.shape[0]):
        key = np.int64(0)
        for g in range(tuples.shape[1]):
            key ^= words[g, tuples[n, g]]
        ids[n] = key


@jit
def zero_beyond(codes, lengths):  # noqa: ANN001, ANN201
    for row in range(codes.shape[0]):
        padding = codes[row, lengths[row] :].ravel()
        for i in range(padding.shape[0]):
            if padding[i] != 0:
                return False
    return True
