"""Change points: the shifts too small or too slow for the two-night gate, and the first bad
run of each.

Each series' eligible values (bench.history.verdicts) are divided by their median and
segmented by the least-squares fit of a piecewise constant level with a penalty per change
point, solved exactly (bench.history.segmentation: the objective of ruptures' KernelCPD with
its linear kernel, for all series at once), the penalty scaled to the series' own noise:
PENALTY x sigma^2 x ln(n), sigma from the MAD of the night-to-night differences (which a step
does not inflate). A slow drift comes out as one or more steps.
A change point is reported when its level moved by at least MIN_SHIFT from the segment
before and its first bad run lies in the window asked for; its size is the ratio of the
two segments' medians.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bench.history.baseline import MAD_TO_SIGMA, sorted_median
from bench.history.segmentation import segment_many
from bench.history.verdicts import METRICS

PENALTY = 3.5  # x sigma^2 x ln(n): ~0.5% of quiet 60-night series show one (docs/history-check.md)
SCREEN = 0.3  # of the penalty: a series whose best single split gains less is not segmented
MIN_POINTS = 10  # fewer eligible runs than this: no segmentation worth the name
MIN_SEGMENT = 3  # runs: one or two odd nights are the gate's business (warn, regression)
MIN_SHIFT = 0.02  # below 2% a level change is within the 1-2% a fleet's DVFS moves by day
MIN_SIGMA = 1e-3  # a series quieter than 0.1% is treated as 0.1% noisy (no zero penalty)
NAMED = ("testbed", "case_key", "case_label", "run_id", "started_at")  # a point's cells
RECENT_DAYS = 14  # without --since: change points whose first bad run is this recent


@dataclass(frozen=True)
class ChangePoint:
    """A level shift in one series: where it starts and how large it is."""

    testbed: str
    case_key: str
    case_label: str
    metric: str
    first_bad_run: str
    first_bad_at: str
    last_good_run: str
    last_good_at: str
    shift: float  # after / before - 1, medians of the two segments
    before: float  # median of the segment before, in the metric's unit
    after: float
    runs_after: int  # eligible runs in the new level so far
    window_shift: float  # latest level / first level in the window - 1 (a drift's total)
    sigma: float  # relative night-to-night noise the penalty was scaled to
    rows: tuple[int, int] = field(default=(-1, -1), repr=False)  # first bad, last good row

    def as_dict(self) -> dict[str, Any]:
        """Everything but the rows, which only mean something in the judged frame."""
        out = asdict(self)
        del out["rows"]
        return out


def noise(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the value over its series' median, and its series' relative noise (1.4826 x
    MAD of night-to-night differences / sqrt 2: a step moves one difference, not the MAD).
    Series i is values[edges[i]:edges[i + 1]]."""
    rel = values / _series_medians(values, edges)
    diffs = np.r_[np.nan, np.diff(rel)]
    diffs[edges[:-1]] = np.nan  # no difference across series
    centred = np.abs(diffs - _series_medians(diffs, edges))
    return rel, MAD_TO_SIGMA * _series_medians(centred, edges) / np.sqrt(2)


def _series_medians(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per row: the median of its series' finite values, all series at once: padded with NaN
    into one (series x longest) matrix and sorted along its rows."""
    lengths = np.diff(edges)
    if not len(x):
        return np.zeros(0)
    matrix = np.full((len(lengths), lengths.max()), np.nan)
    column = np.arange(len(x)) - np.repeat(edges[:-1], lengths)
    matrix[np.repeat(np.arange(len(lengths)), lengths), column] = x
    ordered = np.sort(matrix, axis=1)  # NaN last
    return np.repeat(sorted_median(ordered, np.isfinite(ordered).sum(axis=1)), lengths)


def find(judged: Any, series: Any, since: Any = None) -> list[ChangePoint]:
    """Change points of the given series (codes of judged["series"]) whose first bad run
    started at or after `since` (None: within RECENT_DAYS of the series' last run)."""
    import pandas as pd

    if since is not None:  # the rows' times below are UTC without a zone
        when = pd.Timestamp(since)
        when = when.tz_convert("UTC").tz_localize(None) if when.tz is not None else when
        since = when.to_datetime64()
    points: list[tuple] = []  # (metric, rows, shift, levels, sigma, runs after) of each point
    chosen = judged["series"].isin(series).to_numpy()
    all_times = judged["started_at"].to_numpy(dtype="datetime64[ns]")
    all_codes = judged["series"].to_numpy()
    for metric in METRICS:
        picked = np.flatnonzero(chosen & judged[f"{metric.name}.eligible"].to_numpy())
        if not len(picked):
            continue
        picked = picked[np.lexsort((all_times[picked], all_codes[picked]))]
        codes, times = all_codes[picked], all_times[picked]
        values = judged[f"{metric.name}.value"].to_numpy(dtype=float)[picked]
        edges = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
        rel, sigma = noise(values, edges)
        cutoffs = _cutoffs(times, edges, since)
        recent = times >= np.repeat(cutoffs, np.diff(edges))
        worth = np.flatnonzero(_screen(rel, sigma, edges, recent))
        starts = _segment(rel, sigma, edges, worth)
        for i, found in zip(worth, starts, strict=True):
            lo, hi = edges[i], edges[i + 1]
            for k, shift, levels in _shifts(found, rel[lo:hi], times[lo:hi], cutoffs[i]):
                scale = values[lo] / rel[lo]
                levels = (levels[0] * scale, levels[1] * scale, levels[2])
                rows = (int(picked[lo + k]), int(picked[lo + k - 1]))
                points.append((metric.name, rows, shift, levels, sigma[lo], hi - lo - k))
    return _points(judged, points)


def _segment(rel: np.ndarray, sigma: np.ndarray, edges: np.ndarray, worth: np.ndarray) -> list:
    """The segment starts of the `worth` series (indices into edges), all at once."""
    if not len(worth):
        return []
    parts = [rel[edges[i] : edges[i + 1]] for i in worth]
    lengths = np.array([len(p) for p in parts])
    noise2 = np.maximum(sigma[edges[worth]], MIN_SIGMA) ** 2
    penalties = PENALTY * noise2 * np.log(lengths)
    return segment_many(np.concatenate(parts), np.r_[0, np.cumsum(lengths)], penalties, MIN_SEGMENT)


def _shifts(starts: list[int], rel: np.ndarray, times: np.ndarray, cutoff: Any) -> list[tuple]:
    """(start, shift, (before, after, window shift)) of each reported change point."""
    if not starts or times[starts[-1]] < cutoff:
        return []
    bounds = [0, *starts, len(rel)]
    window = _median(rel[bounds[-2] :]) / _median(rel[: bounds[1]]) - 1
    found = []
    for i in range(1, len(bounds) - 1):
        k = bounds[i]
        before, after = _median(rel[bounds[i - 1] : k]), _median(rel[k : bounds[i + 1]])
        if abs(after / before - 1) >= MIN_SHIFT and times[k] >= cutoff:
            found.append((k, after / before - 1, (before, after, window)))
    return found


def _cutoffs(times: np.ndarray, edges: np.ndarray, since: Any) -> np.ndarray:
    """Per series: the earliest first bad run to report (RECENT_DAYS before its last run)."""
    if since is not None:
        return np.full(len(edges) - 1, since, dtype="datetime64[ns]")
    return times[edges[1:] - 1] - np.timedelta64(RECENT_DAYS, "D")


def _screen(rel: np.ndarray, sigma: np.ndarray, edges: np.ndarray, recent: np.ndarray) -> Any:
    """Per series: whether it is worth segmenting. It needs MIN_POINTS runs, and a split
    before one of its `recent` rows that gains at least SCREEN x the penalty, the gain of a
    split after k of n runs being k (n - k) / n x (mean before - mean after)^2. One split
    understates a change that reverted inside the window, hence SCREEN < 1. All series at
    once: most quiet ones are spared the segmentation."""
    lengths = np.diff(edges)
    n = np.repeat(lengths, lengths)
    k = np.arange(len(rel)) - np.repeat(edges[:-1], lengths)  # runs before the split
    total = np.cumsum(rel)
    start = np.repeat(np.r_[0.0, total][edges[:-1]], lengths)
    before_sum = total - rel - start  # sum of the k runs before
    series_sum = np.repeat(total[edges[1:] - 1], lengths) - start
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = before_sum / k - (series_sum - before_sum) / (n - k)
        gain = k * (n - k) / n * diff**2
    valid = recent & (k >= MIN_SEGMENT) & (n - k >= MIN_SEGMENT)
    gain = np.where(valid, gain, 0.0)
    best = np.maximum.reduceat(gain, edges[:-1]) if len(gain) else np.zeros(0)
    noise2 = np.maximum(sigma[edges[:-1]], MIN_SIGMA) ** 2 if len(gain) else np.zeros(0)
    enough = lengths >= MIN_POINTS
    return enough & (best >= SCREEN * PENALTY * noise2 * np.log(np.maximum(lengths, 2)))


def _median(x: np.ndarray) -> float:
    """np.median without its overhead (this runs in a loop over series)."""
    s = np.sort(x)
    n = len(s)
    return float((s[(n - 1) // 2] + s[n // 2]) / 2)


def _points(judged: Any, found: list[tuple]) -> list[ChangePoint]:
    """The change points found, each named by its first bad row (rows[0] of the judged
    frame) and last good row (rows[1]); their cells taken a column at a time."""
    at = [r for _, rows, *_ in found for r in rows]
    cells = {c: judged[c].take(at).tolist() for c in NAMED}
    times = [t.isoformat() for t in cells["started_at"]]
    out = []
    for i, (metric, rows, shift, levels, sigma, after) in enumerate(found):
        bad, good = 2 * i, 2 * i + 1
        out.append(
            ChangePoint(
                testbed=str(cells["testbed"][bad]),
                case_key=str(cells["case_key"][bad]),
                case_label=str(cells["case_label"][bad]),
                metric=metric,
                first_bad_run=str(cells["run_id"][bad]),
                first_bad_at=times[bad],
                last_good_run=str(cells["run_id"][good]),
                last_good_at=times[good],
                shift=float(shift),
                before=float(levels[0]),
                after=float(levels[1]),
                runs_after=int(after),
                window_shift=float(levels[2]),
                sigma=float(sigma),
                rows=(int(judged.index[rows[0]]), int(judged.index[rows[1]])),
            )
        )
    return out
