import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.measuring.stats import median_ci_ranks, quantile, rel_stdev, summarize

samples = st.lists(st.floats(min_value=1e-9, max_value=10.0), min_size=1, max_size=300)


@given(samples, st.floats(min_value=0.0, max_value=1.0))
def test_quantile_matches_numpy_linear(xs, q):
    assert quantile(sorted(xs), q) == pytest.approx(float(np.quantile(xs, q)), rel=1e-9, abs=1e-15)


@settings(max_examples=200)
@given(samples)
def test_summary_is_ordered_and_brackets_the_median(xs):
    s = summarize(xs)
    assert s.n == len(xs)
    assert s.min_s <= s.p10_s <= s.q1_s <= s.median_s <= s.q3_s <= s.p90_s <= s.max_s
    assert s.ci95_median_low_s <= s.median_s <= s.ci95_median_high_s
    assert s.median_s == pytest.approx(float(np.median(xs)))
    assert s.mean_s == pytest.approx(float(np.mean(xs)))


def test_known_sample_set():
    xs = [1.0, 2.0, 3.0, 4.0, 100.0]
    s = summarize(xs)
    assert (s.min_s, s.median_s, s.max_s) == (1.0, 3.0, 100.0)
    assert s.q1_s == 2.0 and s.q3_s == 4.0 and s.iqr_s == 2.0
    assert s.rel_iqr == pytest.approx(2.0 / 3.0)
    assert s.stdev_s == pytest.approx(float(np.std(xs, ddof=1)))
    assert s.rel_noise == pytest.approx(float(np.std(xs, ddof=1) / np.mean(xs)))
    assert "min-max" in s.ci95_method  # n = 5 cannot reach 95% with order statistics


@pytest.mark.parametrize(
    ("n", "lo", "hi"),
    # 1-based ranks from the standard table of distribution-free median CIs: (r, n - r + 1)
    [(6, 1, 6), (10, 2, 9), (20, 6, 15), (50, 18, 33), (100, 40, 61)],
)
def test_median_ci_ranks_match_the_binomial_table(n, lo, hi):
    r_lo, r_hi, method = median_ci_ranks(n)
    assert (r_lo + 1, r_hi + 1) == (lo, hi)
    assert method == "binomial order statistics"


def test_median_ci_normal_approximation_is_close_to_exact_at_the_seam():
    exact = median_ci_ranks(1000)
    approx = median_ci_ranks(1001)
    assert abs(exact[0] - approx[0]) <= 1 and abs(exact[1] - approx[1]) <= 2


def test_median_ci_coverage_by_simulation():
    rng = np.random.default_rng(1)
    n, hits, trials = 30, 0, 2000
    lo, hi, _ = median_ci_ranks(n)
    for _ in range(trials):
        xs = np.sort(rng.exponential(size=n))
        hits += xs[lo] <= math.log(2) <= xs[hi]  # true median of Exp(1)
    assert hits / trials >= 0.94


def test_bad_sample_sets_are_refused():
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


def test_rel_stdev_undefined_cases():
    assert rel_stdev([1.0]) == math.inf
    assert rel_stdev([0.0, 0.0]) == math.inf
    assert rel_stdev([1.0, 1.0]) == 0.0


def test_spread_warnings_follow_torch_thresholds():
    assert summarize([1.0] * 10).warnings() == []
    moderate = summarize([1.0, 1.0, 1.0, 1.15, 1.15, 1.15, 1.0, 1.15])
    assert 0.10 < moderate.rel_iqr <= 0.25
    assert "system fluctuation" in moderate.warnings()[0]
    severe = summarize([1.0, 1.0, 2.0, 2.0])
    assert "significant environmental influence" in severe.warnings()[0]
