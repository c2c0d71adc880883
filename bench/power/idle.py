"""The idle baseline: each device's power with nothing running, at the start of a run.

Net (above-idle) figures subtract it, so it is measured in the same run, over the same
sensor and the same kind of window as the cases, for at least two seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.power.base import IdleReading, PowerSource


def measure_idle(
    power: PowerSource,
    seconds: float = 2.0,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> IdleReading:
    """Average power over `seconds` of sleeping; None with the reason when it cannot be told."""
    if not power.available:
        return IdleReading(None, 0.0, None, f"no power source: {power.reason}")
    if not power.has_idle_model():
        return IdleReading(None, 0.0, None, f"{power.name} has no idle model; net figures unknown")
    if seconds <= 0:
        return IdleReading(None, 0.0, None, "idle measurement disabled (--idle-s 0)")
    window = power.start_window()
    start = clock()
    sleep(seconds)
    reading = window.stop(clock() - start)
    if reading.energy_j is None:
        return IdleReading(None, reading.window_s, None, reading.reason)
    return IdleReading(
        reading.energy_j / reading.window_s, reading.window_s, reading.energy_source, reading.reason
    )
