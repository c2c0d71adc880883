"""EstimatePowerSource: TDP x utilisation, as CodeCarbon does where no sensor exists.

Every figure it produces is labelled `estimate` and says its inputs. On a CPU the
utilisation is this process's CPU time over the window divided by the machine's logical CPUs;
on a GPU running a kernel back to back it is taken as 1 (the estimate then equals TDP x
time, an upper bound). It has no idle term, so net (above-idle) figures stay None.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bench.power.base import ESTIMATE, EnergyReading


class EstimateWindow:
    def __init__(self, source: EstimatePowerSource) -> None:
        self._source = source
        self._cpu_start = source.cpu_seconds()

    def stop(self, window_s: float) -> EnergyReading:
        source = self._source
        if source.kind == "cpu":
            used = source.cpu_seconds() - self._cpu_start
            utilisation = min(1.0, used / (window_s * source.logical_cpus)) if window_s > 0 else 0
            how = f"process CPU time / ({source.logical_cpus} logical CPUs x window)"
        else:
            utilisation, how = 1.0, "assumed 1 while the kernel runs back to back"
        energy = source.tdp_w * utilisation * window_s
        reason = (
            f"estimate: TDP {source.tdp_w:g} W ({source.tdp_source}) x utilisation "
            f"{utilisation:.2f} ({how})"
        )
        if energy <= 0:
            return EnergyReading(
                None, None, f"{reason}: zero utilisation", window_s, scope=source.scope
            )
        return EnergyReading(energy, ESTIMATE, reason, window_s, scope=source.scope)


class EstimatePowerSource:
    """A labelled estimate of energy from a thermal design power."""

    name = "estimate"
    available = True

    def __init__(
        self,
        tdp_w: float,
        tdp_source: str,
        kind: str,
        cpu_seconds: Callable[[], float] | None = None,
        logical_cpus: int | None = None,
    ) -> None:
        if not tdp_w > 0:
            raise ValueError(f"TDP must be positive, got {tdp_w}")
        self.tdp_w = tdp_w
        self.tdp_source = tdp_source
        self.kind = kind
        self.cpu_seconds = cpu_seconds or _process_cpu_seconds
        self.logical_cpus = logical_cpus or os.cpu_count() or 1
        self.scope = f"estimate from TDP ({'CPU package' if kind == 'cpu' else 'GPU board'})"
        self.reason = f"estimate: TDP {tdp_w:g} W ({tdp_source}) x utilisation; not a measurement"

    def update_period_s(self) -> None:
        return None

    def counter_j(self) -> None:
        return None

    def has_idle_model(self) -> bool:
        return False

    def start_window(self) -> EstimateWindow:
        return EstimateWindow(self)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "available": True,
            "reason": self.reason,
            "scope": self.scope,
            "tdp_w": self.tdp_w,
            "tdp_source": self.tdp_source,
        }

    def close(self) -> None:
        """Nothing to release."""


def _process_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
