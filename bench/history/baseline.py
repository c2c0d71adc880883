"""The baseline of every row of a history at once: median, noise and interval of the last
BASELINE_RUNS eligible runs before it in its series, without a Python loop per series.

Rows are sorted by series then time; the eligible rows, in that order, form one array, and
the window of row j is the BASELINE_RUNS eligible rows of its series just before it, gathered
as one (rows x BASELINE_RUNS) matrix padded with NaN. Medians, MADs and order statistics are
then taken along the matrix' rows. 5,000 series x 200 nights is a 1,000,000 x 20 matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from bench.measuring.stats import median_ci_ranks

BASELINE_RUNS = 20  # the last 20 eligible runs: a month of nights, short enough to follow
MAD_TO_SIGMA = 1.4826  # MAD x this estimates a normal distribution's standard deviation


@dataclass(frozen=True)
class Windows:
    """Per row (in the caller's order): where its eligible predecessors start and how many."""

    eligible_index: np.ndarray  # rows' position in the eligible array (-1: not eligible)
    before: np.ndarray  # eligible rows of the same series strictly before the row
    first: np.ndarray  # position in the eligible array of the series' first eligible row
    order: np.ndarray  # eligible array position -> caller's row


def windows(
    series: np.ndarray, times: np.ndarray, eligible: np.ndarray, order: np.ndarray | None = None
) -> Windows:
    """Index the eligible rows of every series in time order (series: integer codes);
    `order`, np.lexsort((times, series)), where the caller has it already."""
    order = np.lexsort((times, series)) if order is None else order
    ser, elig = series[order], eligible[order]
    count = np.cumsum(elig)
    before_global = count - elig  # eligible rows before, across all series
    starts = np.r_[True, ser[1:] != ser[:-1]]
    first_sorted = np.maximum.accumulate(np.where(starts, np.arange(len(ser)), 0))
    first = before_global[first_sorted]
    out_before = np.empty(len(ser), dtype=np.int64)
    out_first = np.empty(len(ser), dtype=np.int64)
    out_index = np.full(len(ser), -1, dtype=np.int64)
    out_before[order] = before_global - first
    out_first[order] = first
    out_index[order[elig]] = before_global[elig]
    return Windows(out_index, out_before, out_first, order[elig])


def positions(
    win: Windows, rows: np.ndarray | None = None, size: int = BASELINE_RUNS
) -> np.ndarray:
    """The (rows x size) positions in the eligible array of each row's last `size` eligible
    predecessors, -1 where its series has fewer; `rows` (a boolean mask) limits it to some
    rows. Computed once, it gathers any number of columns (gather)."""
    first, before = (win.first, win.before) if rows is None else (win.first[rows], win.before[rows])
    index = (first + before)[:, None] + (np.arange(size) - size)[None, :]
    return np.where(index >= first[:, None], index, -1)


def gather(win: Windows, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The values at positions `at` (positions()) of the eligible array, NaN at -1."""
    eligible_values = values[win.order]
    if len(eligible_values) == 0:
        return np.full(at.shape, np.nan)
    return np.where(at >= 0, eligible_values[at], np.nan)  # -1 reads the last: masked


def clock_normalised(window: np.ndarray, clocks: np.ndarray, clock: np.ndarray) -> np.ndarray:
    """Rates scaled to the judged run's clock, rate x clock_judged / clock_baseline, where
    both clocks are known (a rate scales with the clock: cycles = time x clock); others as
    they are."""
    both = np.isfinite(clocks) & (clocks > 0) & np.isfinite(clock[:, None]) & (clock[:, None] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(both, window * clock[:, None] / clocks, window)


@dataclass(frozen=True)
class Baseline:
    """Per row: n eligible runs, their median, sigma (1.4826 MAD) and the median's 95% CI."""

    n: np.ndarray
    median: np.ndarray
    sigma: np.ndarray
    low: np.ndarray
    high: np.ndarray


def summarise(window: np.ndarray) -> Baseline:
    """Median, noise and the distribution-free 95% CI of the median along each row."""
    ordered = np.sort(window, axis=1)  # NaN last
    n = np.isfinite(ordered).sum(axis=1)
    median = sorted_median(ordered, n)
    spread = np.sort(np.abs(window - median[:, None]), axis=1)
    # Croux & Rousseeuw (1992): the MAD of a small sample is biased low; n / (n - 0.8)
    # corrects it for n > 9 (the baselines judged have at least MIN_BASELINE_RUNS = 10)
    sigma = MAD_TO_SIGMA * sorted_median(spread, n) * n / np.maximum(n - 0.8, 0.2)
    lo_rank, hi_rank = _ci_ranks(window.shape[1])
    lo = _take(ordered, np.where(n > 0, lo_rank[n], 0))
    hi = _take(ordered, np.where(n > 0, hi_rank[n], 0))
    empty = n == 0
    return Baseline(
        n,
        median,
        np.where(empty, np.nan, sigma),
        np.where(empty, np.nan, lo),
        np.where(empty, np.nan, hi),
    )


def _take(ordered: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    return np.take_along_axis(ordered, ranks[:, None], axis=1)[:, 0]


def sorted_median(ordered: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The median of the first n (finite, sorted) entries of each row; NaN where n = 0."""
    lo = _take(ordered, np.maximum(n - 1, 0) // 2)
    hi = _take(ordered, n // 2)
    return np.where(n > 0, (lo + hi) / 2, np.nan)


@cache
def _ci_ranks(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Order-statistic ranks of the median's 95% CI for n = 0..size (bench.measuring.stats)."""
    ranks = [(0, 0)] + [median_ci_ranks(n)[:2] for n in range(1, size + 1)]
    return np.array([r[0] for r in ranks]), np.array([r[1] for r in ranks])
