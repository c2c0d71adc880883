"""The nightly verdict of every (testbed, case) row of a history, all rows at once.

Per series (testbed, case_key, METHOD_VERSION), in time order, and per metric (the achieved
rate, busbw for collectives; ops/J where measured):

- baseline: the median of the last 20 eligible runs before the judged one (eligibility:
  bench.results.eligibility); rates scaled to the judged run's clock where both clocks are
  known (bench.history.baseline.clock_normalised), as `compare` judges cycles, not time;
- sigma = 1.4826 x MAD of those runs; threshold = max(3.5 sigma / baseline, floor);
- a run violates when it is worse than the baseline by more than the threshold;
- regression: this run and the eligible run before it violate (2 in a row); warn: this one
  only; improvement: better by the same margin twice in a row (once is ok: a single high
  reading is as likely noise as a single low one); inconclusive: the judged run is itself
  ineligible or has fewer than 5 eligible runs before it.

A case's state is the worse of its metrics' (regression > warn > improvement > ok); an
ops/J that cannot be judged leaves the rate's state standing, a rate that cannot be judged
makes the case inconclusive unless ops/J regressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.history.baseline import (
    Baseline,
    clock_normalised,
    gather,
    positions,
    summarise,
    windows,
)

OK, WARN, REGRESSION, IMPROVEMENT, INCONCLUSIVE = (
    "ok",
    "warn",
    "regression",
    "improvement",
    "inconclusive",
)
STATES = (OK, IMPROVEMENT, INCONCLUSIVE, WARN, REGRESSION)  # a state's code is its rank
K_SIGMA = 3.5  # violations beyond 3.5 sigma: ~2e-4 a night for a normal series' noise
MIN_BASELINE_RUNS = 10  # below 10 runs the MAD is too unstable (see docs/history-check.md)
CONSECUTIVE = 2  # violations in a row for a regression (PyTorch HUD's classifier)
FLOORS = {"matmul": 0.05, "attention": 0.05, "collective": 0.07}
# Other kernels (memory bandwidth, scaling) are bandwidth-bound like collectives and as noisy
# on a shared host; TorchBench gates generic metrics at 7% too.
OTHER_FLOOR = 0.07
ENERGY_FLOOR = 0.05  # ops/J: energy counters are noisier than timers but a 5% loss matters


@dataclass(frozen=True)
class Metric:
    """One judged quantity: its name in the output and how it is read from the cases."""

    name: str
    clocked: bool  # scaled by the clock (rates); ops/J is not: energy is not linear in clock

    def values(self, cases: Any) -> np.ndarray:
        if self.name == "ops_per_j":
            return _floats(cases["ops_per_j"])
        collective = (cases["family"] == "collective").to_numpy()
        return np.where(
            collective, _floats(cases["busbw_bytes_per_s"]), _floats(cases["achieved_ops_per_s"])
        )

    def floors(self, families: Any) -> np.ndarray:
        if self.name == "ops_per_j":
            return np.full(len(families), ENERGY_FLOOR)
        codes, names = families.factorize()  # a few families, many rows: map the names only
        floors = np.array([FLOORS.get(str(n), OTHER_FLOOR) for n in names] + [OTHER_FLOOR])
        return floors[codes]  # a missing family (code -1) takes the last: OTHER_FLOOR


RATE, ENERGY = Metric("rate", clocked=True), Metric("ops_per_j", clocked=False)
METRICS = (RATE, ENERGY)
METRICS_NAMES = tuple(m.name for m in METRICS)


def _floats(column: Any) -> np.ndarray:
    return column.astype("float64").to_numpy(na_value=np.nan)


def judge(cases: Any, since: Any = None) -> Any:
    """Every row of a history `cases` frame with its verdict columns added (see the module
    docstring); `<metric>.<field>` per metric, and the case's `state` and `metric`.

    With `since` (a UTC timestamp) only the rows from then on are judged, which is what a
    nightly check needs: the earlier ones keep their values and eligibility (the change
    points read them) and have no baseline or state, and a streak of violations is counted
    from `since` on."""
    from bench.results.eligibility import ineligible

    frame = cases.reset_index(drop=True)  # a new frame (copy on write): `cases` is not touched
    # A series is one METHOD_VERSION: eligibility's "other METHOD_VERSION" rule holds by
    # construction, each row being judged against its own version's runs only.
    series = _series(frame)
    times = frame["started_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    frame["ineligible"] = ineligible(frame)
    usable = frame["ineligible"].isna().to_numpy()
    frame["series"] = series
    judged = np.ones(len(frame), dtype=bool)
    if since is not None:
        judged = (frame["started_at"] >= since).to_numpy()
    keys = (series, times, np.lexsort((times, series)))  # one time order for both metrics
    for metric in METRICS:
        _judge_metric(frame, metric, keys, usable, judged)
    _combine(frame)
    return frame


def _series(frame: Any) -> np.ndarray:
    """Each row's series, (testbed, case_key, METHOD_VERSION), numbered in order of first
    appearance (a missing key is a key of its own): each key column factorised, the codes
    combined, and the combinations numbered."""
    import pandas as pd

    codes = np.zeros(len(frame), dtype=np.int64)
    for column in ("testbed", "case_key", "method_version"):
        these, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        codes = codes * (len(uniques) + 1) + these
    return pd.factorize(codes)[0]


def _judge_metric(
    frame: Any, metric: Metric, keys: tuple[np.ndarray, ...], usable: Any, rows: Any
) -> None:
    """Add `<metric>.*` columns: value, baseline, sigma, threshold, change and its interval,
    n, state, and the first bad / last good run of the current streak, to the rows chosen
    (keys: series codes, times and their time order, of every row)."""
    import pandas as pd

    values = metric.values(frame)
    has = np.isfinite(values) & (values > 0)
    eligible = usable & has
    series, times, order = keys
    win = windows(series, times, eligible, order)
    at = positions(win, rows)
    window = gather(win, values, at)
    if metric.clocked:
        clock = _floats(frame["clock_hz"])
        window = clock_normalised(window, gather(win, clock, at), clock[rows])
    base = _spread_out(summarise(window), rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = values / base.median - 1
        # a new run minus a median of n has variance sigma^2 (1 + pi / 2n): the prediction
        # interval, not the spread alone, so a short baseline does not cry wolf
        noise = base.sigma * np.sqrt(1 + np.pi / (2 * np.maximum(base.n, 1)))
        threshold = np.maximum(K_SIGMA * noise / base.median, metric.floors(frame["family"]))
        low, high = values / base.high - 1, values / base.low - 1
    judged = eligible & (base.n >= MIN_BASELINE_RUNS)
    worse = _streak(win, judged & (change < -threshold))
    better = _streak(win, judged & (change > threshold))
    code = np.select(
        [
            ~rows | (~has & (metric is ENERGY)),
            ~eligible,
            ~judged,
            worse >= CONSECUTIVE,
            worse >= 1,
            better >= CONSECUTIVE,
        ],
        [-1]
        + [STATES.index(s) for s in (INCONCLUSIVE, INCONCLUSIVE, REGRESSION, WARN, IMPROVEMENT)],
        STATES.index(OK),
    )
    state = pd.Categorical.from_codes(code, categories=STATES)
    p = metric.name + "."
    frame[p + "value"], frame[p + "baseline"], frame[p + "sigma"] = values, base.median, base.sigma
    frame[p + "threshold"], frame[p + "change"] = threshold, change
    frame[p + "change_low"], frame[p + "change_high"] = low, high
    frame[p + "n"], frame[p + "eligible"], frame[p + "state"] = base.n, eligible, state
    streak = np.maximum(worse, better)
    frame[p + "streak"] = streak  # runs in a row beyond the threshold the same way
    frame[p + "first_bad_row"] = _row_at(win, win.eligible_index - streak + 1, streak > 0)
    frame[p + "last_good_row"] = _row_at(win, win.eligible_index - streak, streak > 0)


def _spread_out(base: Baseline, rows: np.ndarray) -> Baseline:
    """A baseline of the chosen rows as one of every row (NaN, n = 0 elsewhere)."""
    if rows.all():
        return base
    out = {}
    for name in ("n", "median", "sigma", "low", "high"):
        full = np.zeros(len(rows), dtype=int) if name == "n" else np.full(len(rows), np.nan)
        full[rows] = getattr(base, name)
        out[name] = full
    return Baseline(**out)


def _streak(win: Any, flags: np.ndarray) -> np.ndarray:
    """Per row: how many eligible runs in a row, ending with it, have the flag (0 if not)."""
    f = flags[win.order].astype(np.int64)
    m = len(f)
    if m == 0:
        return np.zeros(len(flags), dtype=np.int64)
    position = np.arange(m)
    starts = (f == 0) | (position == win.first[win.order])
    start = np.maximum.accumulate(np.where(starts, position, 0))
    total = np.cumsum(f)
    run = total - total[start] + f[start]
    return np.where(win.eligible_index >= 0, run[np.maximum(win.eligible_index, 0)], 0)


def _row_at(win: Any, position: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The row (of the judged frame) at each row's eligible-array position; -1 where not
    wanted or before the series' first eligible run."""
    ok = wanted & (position >= win.first) & (win.eligible_index >= 0)
    if len(win.order) == 0:
        return np.full(len(ok), -1)
    return np.where(ok, win.order[np.where(ok, position, 0)], -1)


def _combine(frame: Any) -> None:
    """The case's state and the metric that decided it (module docstring)."""
    import pandas as pd

    rate = frame["rate.state"].cat.codes.to_numpy()
    energy = frame["ops_per_j.state"].cat.codes.to_numpy()
    counts = (energy != STATES.index(INCONCLUSIVE)) & (energy > rate)
    frame["state"] = pd.Categorical.from_codes(np.where(counts, energy, rate), categories=STATES)
    frame["metric"] = pd.Categorical.from_codes(counts.astype(int), categories=METRICS_NAMES)


def decided(frame: Any, field: str) -> Any:
    """A `<metric>.<field>` column taken from the metric that decided each row's state."""
    energy = frame["metric"] == ENERGY.name
    return frame[f"{RATE.name}.{field}"].where(~energy, frame[f"{ENERGY.name}.{field}"])
