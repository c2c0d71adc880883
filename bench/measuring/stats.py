"""Summaries of raw timing samples. Nothing is dropped: every statistic uses every sample.

The headline is the median (robust to the odd preempted sample); its 95% confidence interval
is distribution-free (order statistics of a binomial), so it holds for the skewed, multi-modal
distributions that GPU and CPU timings really have. `rel_noise` is nvbench's "Noise": the
unbiased standard deviation over the mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# torch.utils.benchmark's thresholds for a relative IQR that signals an unstable machine.
REL_IQR_WARN = 0.10
REL_IQR_SEVERE = 0.25


@dataclass(frozen=True)
class Summary:
    """Statistics of per-call times in seconds, with how the CI was derived."""

    n: int
    min_s: float
    max_s: float
    mean_s: float
    median_s: float
    stdev_s: float
    p10_s: float
    p90_s: float
    q1_s: float
    q3_s: float
    iqr_s: float
    rel_iqr: float
    rel_noise: float
    ci95_median_low_s: float
    ci95_median_high_s: float
    ci95_method: str

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    def warnings(self) -> list[str]:
        """Human-readable warnings about the spread, as torch.utils.benchmark gives them."""
        if self.rel_iqr > REL_IQR_SEVERE:
            return [f"IQR is {self.rel_iqr:.0%} of the median: significant environmental influence"]
        if self.rel_iqr > REL_IQR_WARN:
            return [f"IQR is {self.rel_iqr:.0%} of the median: system fluctuation"]
        return []


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of an already sorted sequence."""
    if not sorted_xs:
        raise ValueError("quantile of no samples")
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    frac = pos - lo
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * frac


def rel_stdev(xs: Sequence[float]) -> float:
    """Unbiased standard deviation over the mean; inf when undefined (fewer than 2 values)."""
    n = len(xs)
    if n < 2:
        return math.inf
    mean = math.fsum(xs) / n
    if mean == 0:
        return math.inf
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    return math.sqrt(var) / abs(mean)


def median_ci_ranks(n: int, level: float = 0.95) -> tuple[int, int, str]:
    """0-based ranks (lo, hi) of the order statistics bracketing the median at `level`.

    Exact binomial for n <= 1000, normal approximation above. Below n = 6 no pair of order
    statistics reaches 95%, so the interval is [min, max] and the method says so.
    """
    if n < 1:
        raise ValueError("no samples")
    if n < 6:
        return 0, n - 1, f"min-max (n={n} too small for a {level:.0%} interval)"
    alpha = 1.0 - level
    if n <= 1000:
        # Largest lo with P(B <= lo) <= alpha/2, B ~ Binomial(n, 1/2): then the interval
        # [x_(lo), x_(n-1-lo)] (0-based) covers the median with probability >= level.
        total, cdf_count, lo = 2**n, 0, -1
        while True:
            cdf_count += math.comb(n, lo + 1)
            if cdf_count / total > alpha / 2:
                break
            lo += 1
        return lo, n - 1 - lo, "binomial order statistics"
    z = 1.959963984540054
    half = z * math.sqrt(n) / 2.0
    lo = max(0, math.floor(n / 2.0 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2.0 + half) - 1)
    return lo, hi, "normal approximation to binomial order statistics"


def summarize(samples_s: Sequence[float]) -> Summary:
    """Summary of per-call times; raises ValueError on an empty or non-finite sample set."""
    xs = sorted(float(x) for x in samples_s)
    if not xs:
        raise ValueError("cannot summarise zero samples")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError("samples contain NaN or inf")
    n = len(xs)
    mean = math.fsum(xs) / n
    stdev = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    median = quantile(xs, 0.5)
    q1, q3 = quantile(xs, 0.25), quantile(xs, 0.75)
    lo, hi, method = median_ci_ranks(n)
    return Summary(
        n=n,
        min_s=xs[0],
        max_s=xs[-1],
        mean_s=mean,
        median_s=median,
        stdev_s=stdev,
        p10_s=quantile(xs, 0.10),
        p90_s=quantile(xs, 0.90),
        q1_s=q1,
        q3_s=q3,
        iqr_s=q3 - q1,
        rel_iqr=(q3 - q1) / median if median > 0 else math.inf,
        rel_noise=stdev / mean if n > 1 and mean > 0 else math.inf,
        ci95_median_low_s=xs[lo],
        ci95_median_high_s=xs[hi],
        ci95_method=method,
    )
