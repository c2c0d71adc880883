"""The health noise model (bench.commands.health.noise) with numbers: spread, repeats, CPU pressure."""

from __future__ import annotations

import pytest

from bench.commands.health.model import FAIL, INCONCLUSIVE, PASS
from bench.commands.health.noise import MAX_CPU_PRESSURE, Repeat, judge, spread_floor, summarize

QUIET = 0.01  # a clean repeat on this VM reads 0.00-0.02
BUSY = 0.40  # one that shared the machine with another job


def side(*rates: float, pressure: float | None = QUIET, busy: int = 0):
    """Stats of quiet repeats at these rates, plus `busy` repeats at a third of the rate."""
    reps = [Repeat(r, pressure) for r in rates]
    reps += [Repeat(min(rates) / 3, BUSY)] * busy
    stats = summarize(reps)
    assert stats is not None
    return stats


def test_the_median_and_spread_are_of_the_quiet_repeats():
    stats = side(100.0, 102.0, 98.0, 101.0, 99.0, busy=2)
    assert stats.median == 100.0  # the two busy repeats at 33 are left out
    # deviations 0, 2, 2, 1, 1: MAD 1, sigma 1.4826
    assert stats.rel_spread == pytest.approx(0.014826)
    assert (stats.n, stats.total, stats.busy) == (5, 7, 2)
    assert stats.max_pressure == BUSY and stats.quiet


def test_with_half_the_repeats_busy_all_count_and_the_side_is_not_quiet():
    stats = summarize([Repeat(100.0, QUIET), Repeat(40.0, BUSY)])
    assert stats is not None and not stats.quiet
    assert stats.median == 70.0 and stats.n == 2
    assert stats.rel_spread is None  # two repeats have no spread worth the name
    assert summarize([]) is None


def test_an_unreadable_pressure_counts_as_quiet():
    stats = side(100.0, 100.0, 100.0, pressure=None)
    assert stats.quiet and stats.max_pressure is None and stats.rel_spread == 0.0
    assert not Repeat(1.0, MAX_CPU_PRESSURE).busy and Repeat(1.0, MAX_CPU_PRESSURE + 1e-9).busy


def test_at_or_above_the_floor_passes_even_on_a_busy_machine():
    base = side(100.0, 101.0, 99.0, 100.0, 100.0)
    assert judge(base, side(96.0, 97.0, 95.0), 0.95, 3.0).verdict == PASS
    busy = summarize([Repeat(100.0, BUSY)] * 5)
    assert busy is not None and not busy.quiet
    assert judge(base, busy, 0.95, 3.0).verdict == PASS  # fast while shared is fast alone


def test_a_drop_beyond_the_noise_fails_and_within_it_is_inconclusive():
    assert side(100.0, 102.0, 98.0, 100.0, 100.0).rel_spread == 0.0  # deviations 0,2,2,0,0
    base = side(100.0, 102.0, 98.0, 102.0, 98.0)  # deviations 0,2,2,2,2: MAD 2, sigma 2.97
    assert base.rel_spread == pytest.approx(0.029652)
    # tolerance = 3 x sqrt(2 x 0.029652^2) = 12.6%
    within = side(90.0, 91.8, 88.2, 91.8, 88.2)  # 10% below, same spread
    outcome = judge(base, within, 0.95, 3.0)
    assert outcome.verdict == INCONCLUSIVE and outcome.tolerance == pytest.approx(0.1258, 1e-3)
    assert "within the noise" in outcome.reason
    beyond = side(85.0, 86.7, 83.3, 86.7, 83.3)  # 15% below
    outcome = judge(base, beyond, 0.95, 3.0)
    assert outcome.verdict == FAIL and "beyond the noise" in outcome.reason
    # the same 10% drop on tight measurements (0.5%) is a fault
    tight = side(100.0, 100.5, 99.5, 100.5, 99.5)
    assert judge(tight, side(90.0, 90.45, 89.55, 90.45, 89.55), 0.95, 3.0).verdict == FAIL


def test_a_real_2x_drop_fails_through_a_noisy_spread():
    base = side(100.0, 110.0, 90.0, 105.0, 95.0)  # spread ~7%: tolerance ~30%
    assert judge(base, side(50.0, 55.0, 45.0, 52.0, 48.0), 0.95, 3.0).verdict == FAIL


def test_a_busy_machine_makes_a_slow_reading_inconclusive_not_a_fail():
    base = side(100.0, 101.0, 99.0, 100.0, 100.0)
    cand = summarize([Repeat(60.0, BUSY)] * 3 + [Repeat(100.0, QUIET)] * 2)
    assert cand is not None
    outcome = judge(base, cand, 0.95, 3.0)
    assert outcome.verdict == INCONCLUSIVE
    assert "busy" in outcome.reason and "3 of 5" in outcome.reason and "40%" in outcome.reason
    # 3 quiet repeats out of 5 are enough: the busy ones are left out and the drop is real
    cand = side(60.0, 61.0, 59.0, busy=2)
    assert judge(base, cand, 0.95, 3.0).verdict == FAIL


def test_a_baseline_measured_on_a_busy_machine_can_neither_convict_nor_acquit():
    base = summarize([Repeat(100.0, BUSY)] * 3 + [Repeat(100.0, QUIET)] * 2)
    assert base is not None
    outcome = judge(base, side(50.0, 50.0, 50.0), 0.95, 3.0)
    assert outcome.verdict == INCONCLUSIVE and "baseline was measured on a busy" in outcome.reason
    # ...nor acquit: a baseline 15x slow (shared with another job) would pass anything
    slow = summarize([Repeat(7.0, BUSY)] * 5)
    assert slow is not None
    assert judge(slow, side(50.0, 50.0, 50.0), 0.95, 3.0).verdict == INCONCLUSIVE


def test_without_any_spread_the_floor_stands_in_and_the_reason_says_so():
    one = summarize([Repeat(100.0, None)])
    low = summarize([Repeat(90.0, None)])
    assert one is not None and low is not None
    outcome = judge(one, low, 0.95, 3.0)
    assert outcome.verdict == FAIL and "one measurement each" in outcome.reason
    # floor 4%: tolerance 3 x sqrt(2) x 4% = 17%, so 10% below is within the noise
    outcome = judge(one, low, 0.95, 3.0, floor=0.04)
    assert outcome.verdict == INCONCLUSIVE and outcome.tolerance == pytest.approx(0.1697, 1e-3)
    # one side's spread counts with the floor for the other
    outcome = judge(one, side(90.0, 95.0, 85.0), 0.95, 3.0)  # spread 8.2%: tolerance 25%
    assert outcome.verdict == INCONCLUSIVE


def test_the_floor_keeps_tight_repeats_of_a_drifting_machine_from_crying_wolf():
    # two runs minutes apart on a shared VM: each tight (0.7%), medians 6% apart
    base = side(100.0, 100.5, 99.5, 100.5, 99.5)
    cand = side(94.0, 94.5, 93.5, 94.5, 93.5)
    assert judge(base, cand, 0.95, 3.0).verdict == FAIL  # the repeats alone: 3.1% tolerance
    outcome = judge(base, cand, 0.95, 3.0, floor=spread_floor("cpu"))
    assert outcome.verdict == INCONCLUSIVE and "at least 3.0%" in outcome.reason
    # ...while 1 thread against a 2-thread baseline, half the rate, still FAILs
    half = side(50.0, 50.25, 49.75, 50.25, 49.75)
    assert judge(base, half, 0.95, 3.0, floor=spread_floor("cpu")).verdict == FAIL
    assert spread_floor("cuda") < spread_floor("cpu")
