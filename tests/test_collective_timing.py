"""The reduction of a collective's timings across ranks: max per iteration, p50 and p99."""

import pytest

from bench.measuring.collective_timing import reduce_ranks

MS = 1e-3


def test_each_iteration_is_its_slowest_rank_and_p50_p99_follow():
    # rank 0 gets slower, rank 1 faster: the collective's iterations are the larger of each pair
    rank0 = [i * MS for i in range(1, 11)]  # 1 .. 10 ms
    rank1 = [i * MS for i in range(10, 0, -1)]  # 10 .. 1 ms
    t = reduce_ranks([(4 * MS, rank0), (5 * MS, rank1)], calls=50)
    assert [x / MS for x in t.per_iteration_s] == pytest.approx([10, 9, 8, 7, 6, 6, 7, 8, 9, 10])
    # sorted: 6 6 7 7 8 8 9 9 10 10; the median interpolates between the 5th and 6th: 8 ms
    assert t.p50_s == pytest.approx(8 * MS)
    # nearest rank: ceil(0.99 x 10) = the 10th value, 10 ms (nccl-tests never interpolates)
    assert t.p99_s == pytest.approx(10 * MS)
    assert t.time_s == pytest.approx(5 * MS) and t.time_by_rank_s == (4 * MS, 5 * MS)
    assert t.calls == 50


def test_p99_of_a_hundred_iterations_is_the_99th_not_the_slowest():
    times = [1 * MS] * 98 + [2 * MS, 50 * MS]  # one straggler among a hundred
    t = reduce_ranks([(1 * MS, times)], calls=100)
    assert t.p99_s == pytest.approx(2 * MS)
    assert t.p50_s == pytest.approx(1 * MS)


def test_a_median_of_an_odd_count_is_the_middle_value():
    t = reduce_ranks([(1 * MS, [3 * MS, 1 * MS, 2 * MS])], calls=3)
    assert t.p50_s == pytest.approx(2 * MS) and t.p99_s == pytest.approx(3 * MS)
