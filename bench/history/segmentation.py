"""Penalised least-squares segmentation of many short series at once.

The problem is the one ruptures' KernelCPD solves with its linear kernel: split a series into
segments of at least `min_size` points so that the sum of squared deviations from each
segment's mean, plus `penalty` per change point, is smallest. Optimal partitioning solves it
exactly by dynamic programming over the end of the last segment. A nightly history has
thousands of series of about 60 points each, so the program runs for all of them together,
one numpy step per end point, instead of once per series in a loop: the answer is the same
(tests/test_history_segmentation.py checks it against ruptures), and a check spends
milliseconds here instead of importing scipy through ruptures and looping for seconds.
"""

from __future__ import annotations

import numpy as np


def segment_many(
    values: np.ndarray, edges: np.ndarray, penalties: np.ndarray, min_size: int
) -> list[list[int]]:
    """Per series: the start index (within the series) of every segment after the first.

    values: the series one after another; series i is values[edges[i]:edges[i + 1]].
    penalties: per series, the cost of one more change point.
    """
    lengths = np.diff(edges)
    count, longest = len(lengths), int(lengths.max()) if len(lengths) else 0
    if longest < 2 * min_size:
        return [[] for _ in range(count)]
    padded = np.zeros((count, longest))
    column = np.arange(len(values)) - np.repeat(edges[:-1], lengths)
    padded[np.repeat(np.arange(count), lengths), column] = values
    padded -= padded[:, :1]  # one offset per series: the sums below stay small
    sums = np.concatenate([np.zeros((count, 1)), np.cumsum(padded, axis=1)], axis=1)
    squares = np.concatenate([np.zeros((count, 1)), np.cumsum(padded**2, axis=1)], axis=1)
    best = np.full((count, longest + 1), np.inf)  # best[:, t]: the first t points, segmented
    best[:, 0] = -penalties  # the first segment pays no change point
    start = np.zeros((count, longest + 1), dtype=np.int64)  # where the last segment starts
    for end in range(min_size, longest + 1):
        begins = np.arange(0, end - min_size + 1)
        begins = begins[(begins == 0) | (begins >= min_size)]
        size = end - begins
        within = sums[:, end, None] - sums[:, begins]
        cost = squares[:, end, None] - squares[:, begins] - within**2 / size
        total = best[:, begins] + np.maximum(cost, 0.0) + penalties[:, None]
        pick = np.argmin(total, axis=1)
        best[:, end] = total[np.arange(count), pick]
        start[:, end] = begins[pick]
    return [_starts(start[i], int(n)) for i, n in enumerate(lengths)]


def _starts(start: np.ndarray, end: int) -> list[int]:
    """Walk the segments back from the series' end: their starts, first one left out."""
    out = []
    while end > 0:
        end = int(start[end])
        if end > 0:
            out.append(end)
    return out[::-1]
