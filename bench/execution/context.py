"""CaseContext: what every case of a run shares, handed to the runner as one object."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.devices.base import Backend
from bench.measuring.collective_timing import CollectivePolicy
from bench.measuring.timing import Clock, EnergyPolicy, Policy
from bench.peaks.lookup import Peak
from bench.power.base import PowerSource
from bench.results.ceiling_model import MeasuredPeak


@dataclass(frozen=True)
class CaseContext:
    """The device, power source, timing policy and denominators of one run's cases.

    peak_for(math_mode) gives the spec peak a case is divided by; measured_peak_for gives the
    measured ceiling (None: frac_of_measured_peak is None with the reason). energy is None
    when no energy phase runs. A collective case uses backend, clock, link_peak and
    collective_policy only; it has no power, timing policy or spec peak of its own.
    """

    backend: Backend
    power: PowerSource | None = None
    policy: Policy | None = None
    peak_for: Callable[[str], Peak] | None = None
    clock: Clock = time.perf_counter
    energy: EnergyPolicy | None = None
    idle_power_w: float | None = None
    link_peak: Any = None
    measured_peak_for: Callable[[str], MeasuredPeak] | None = None
    collective_policy: CollectivePolicy | None = None
