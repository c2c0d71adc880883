"""The background sampler thread and the pure functions over what it records.

The thread waits on an Event between ticks (it never spins), keeps its own schedule so that
ticks do not drift, and stops at the first error, keeping the error for the window to report.
A thread (not a process) because NVML and sysfs reads are cheap C calls that release the GIL,
and a spawned process would re-import __main__ and perturb the measurement more.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence

from bench.power.base import PowerSample

DEFAULT_RATE_HZ = 20.0


class Sampler:
    """Calls `read(now)` every 1/rate_hz seconds on a daemon thread until stop()."""

    def __init__(
        self,
        read: Callable[[float], PowerSample],
        rate_hz: float = DEFAULT_RATE_HZ,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._read = read
        self._period = 1.0 / rate_hz
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="flopwatt-power-sampler", daemon=True
        )
        self.samples: list[PowerSample] = []
        self.error: BaseException | None = None

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        next_tick = self._clock()
        while True:
            try:
                self.samples.append(self._read(self._clock()))
            except BaseException as exc:  # kept for the window's reason; the thread ends
                self.error = exc
                return
            next_tick += self._period
            if self._stop.wait(max(0.0, next_tick - self._clock())):
                return

    def stop(self) -> list[PowerSample]:
        """End the thread (always joined, so none outlives its window) and return samples."""
        self._stop.set()
        self._thread.join()
        return self.samples

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def trapezoid_energy(
    times_s: Sequence[float], powers_w: Sequence[float | None], start_s: float, end_s: float
) -> float | None:
    """Energy in J of a piecewise-linear power trace over [start_s, end_s].

    Samples outside the window are used to interpolate its edges; before the first and after
    the last sample the nearest value is held. None when fewer than two usable samples fall in
    or around the window (one sample says nothing about the shape of the power over time).
    """
    points = sorted(
        (t, p) for t, p in zip(times_s, powers_w, strict=True) if p is not None and math.isfinite(p)
    )
    if end_s <= start_s or len(points) < 2:
        return None
    inside = [t for t, _ in points if start_s <= t <= end_s]
    if not inside:
        return None

    times = [t for t, _ in points]

    def at(t: float) -> float:
        i = bisect.bisect_left(times, t)
        if i == 0:
            return points[0][1]
        if i == len(points):
            return points[-1][1]
        (t0, p0), (t1, p1) = points[i - 1], points[i]
        return p1 if t1 == t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)

    knots = [start_s, *(t for t, _ in points if start_s < t < end_s), end_s]
    return math.fsum((b - a) * (at(a) + at(b)) / 2 for a, b in itertools.pairwise(knots))


PROBE_MIN_S = 2.0  # a 100 ms counter then shows ~20 ticks; 0.5 s showed a handful
PROBE_MAX_S = 5.0  # a slower counter is polled on until it has ticked PROBE_MIN_TICKS times
PROBE_MIN_TICKS = 3


def probe_update_period(
    read_counter: Callable[[], float | None],
    duration_s: float = PROBE_MIN_S,
    poll_s: float = 0.002,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
    min_ticks: int = PROBE_MIN_TICKS,
    max_s: float = PROBE_MAX_S,
) -> float | None:
    """How often an energy counter changes: the median gap between changes while polling.

    Polls for at least duration_s, and on (up to max_s) until the counter has changed
    min_ticks times. None when it changed fewer times (too slow to tell, or frozen), and at
    once when the counter cannot be read at all.
    """
    changes: list[float] = []
    last = read_counter()
    if last is None:
        return None
    start = clock()
    while True:
        elapsed = clock() - start
        if elapsed >= max(duration_s, max_s) or (
            elapsed >= duration_s and len(changes) >= min_ticks
        ):
            break
        sleep(poll_s)
        value = read_counter()
        if value is not None and value != last:
            changes.append(clock())
            last = value
    if len(changes) < max(min_ticks, 2):
        return None
    return statistics.median(b - a for a, b in itertools.pairwise(changes))


def median_of(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def max_of(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None
