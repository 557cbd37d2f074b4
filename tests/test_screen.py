"""The per-round screening rule on synthetic series (the loop's decisions, without a loop)."""

from __future__ import annotations

from pytest_memleak.runner import screen

T = [float(i) for i in range(11)]


def test_linear_growth_is_suspect_and_flat_is_clean():
    assert screen("py_blocks", [100.0 + i for i in range(11)], T) == "suspect"
    assert screen("py_blocks", [100.0] * 11, T) == "clean"


def test_noise_below_the_floor_is_clean():
    drift = [1000.0 + (i % 3) * 40 for i in range(11)]  # glibc tcache drift, 20-80 B/call
    assert screen("malloc", drift, T) == "clean"


def test_counts_rising_are_suspect():
    assert screen("fds", [5.0 + i for i in range(11)], T) == "suspect"
    assert screen("fds", [5.0, 6.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0], T) == "clean"


def test_sparse_malloc_staircase_only_buys_more_rounds():
    # 272 B chunks handed out by the per-thread cache: one step of 8 chunks every 8 calls.
    round1 = [0.0, 0.0] + [2176.0] * 9  # one step early in round 1
    round2 = [2176.0] * 10 + [4352.0]  # one step at the end of round 2: no trend to test
    history = round1 + round2[1:]
    assert screen("malloc", round2, T, history) == "ambiguous"
    small = [2176.0] * 10 + [2176.0 + 1000.0]  # below 160 B/call on average: allocator noise
    assert screen("malloc", small, T, [0.0] * 10 + small) == "clean"


def test_a_filled_cache_leaves_a_flat_round_clean():
    history = [0, 864, 1728, 2592] + [2592] * 17
    assert screen("malloc", [2592.0] * 11, T, [float(v) for v in history]) == "clean"


def test_a_staircase_that_went_down_is_clean():
    history = [0.0, 2176.0, 2176.0, 1000.0, 3176.0] + [3176.0] * 6
    assert screen("malloc", history, T, history) == "clean"


def test_one_jump_is_an_event_not_a_trend():
    jump = [100.0] * 5 + [20000.0] * 6  # a library's pool grew by one block
    # Never "suspect" from one step: weak evidence that only buys more rounds.
    assert screen("malloc", jump, T) == "ambiguous"
    assert screen("py_blocks", [10.0] * 5 + [500.0] * 6, T) == "ambiguous"
