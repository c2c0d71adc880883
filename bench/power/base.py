"""The PowerSource protocol and what a measurement window returns.

A source measures energy over windows that the energy phase opens and closes at synchronised
edges. The runner receives a PowerSource and never asks which device it is on: a CPU run, a
GPU run with NVML and a run without any sensor differ only in the object passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# energy_source labels stored with every result (docs/power.md).
NVML_COUNTER = "nvml_energy_counter"
NVML_INTEGRAL = "nvml_power_integral"
AMDSMI_COUNTER = "amdsmi_energy_counter"
AMDSMI_INTEGRAL = "amdsmi_power_integral"
RAPL = "rapl"
ESTIMATE = "estimate"


class PowerUnavailable(RuntimeError):
    """A requested power source cannot measure here; the message says why and what to do."""


@dataclass(frozen=True)
class PowerSample:
    """One sampler tick. None where the sensor cannot say; t_s is host perf_counter time."""

    t_s: float
    power_w: float | None
    power_avg_w: float | None = None  # the sensor's own (e.g. 1 s) average, when offered
    sm_clock_hz: float | None = None
    mem_clock_hz: float | None = None
    temp_c: float | None = None
    event_reasons: int | None = None  # clock-event ("throttle") bitmask


@dataclass(frozen=True)
class EnergyReading:
    """What a source measured over one window.

    `energy_j` is the headline figure from `energy_source`; `integral_j` is the trapezoidal
    integral of the sampled power, kept as a cross-check. `reason` says why energy_j is None,
    or which caveat applies to it (e.g. a fallback).
    """

    energy_j: float | None
    energy_source: str | None
    reason: str | None
    window_s: float
    integral_j: float | None = None
    counter_j: float | None = None
    samples: tuple[PowerSample, ...] = ()
    throttle_time_s: dict[str, float] = field(default_factory=dict)
    scope: str = ""  # what the sensor covers: "GPU board", "CPU packages", ...


@dataclass(frozen=True)
class IdleReading:
    """The device's power with nothing running, measured at the start of a run."""

    power_w: float | None
    seconds: float
    energy_source: str | None
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "power_w": self.power_w,
            "seconds": self.seconds,
            "energy_source": self.energy_source,
            "reason": self.reason,
        }


class PowerWindow(Protocol):
    """An open measurement window; stop() always ends any sampling it started."""

    def stop(self, window_s: float) -> EnergyReading:
        """Close the window that lasted window_s (timed by the caller between synced edges)."""
        ...


class PowerSource(Protocol):
    """A source of energy readings for one device."""

    name: str  # "nvml", "amdsmi", "rapl", "estimate", "none"
    available: bool  # False when the source cannot measure anything here
    reason: str | None  # why it is unavailable, or the caveat of an available one

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the source for the run record."""
        ...

    def start_window(self) -> PowerWindow:
        """Read the counters and start sampling; call right after a device sync."""
        ...

    def update_period_s(self) -> float | None:
        """How often the energy figure changes; windows shorter than this are refused."""
        ...

    def counter_j(self) -> float | None:
        """The energy counter's reading now, which the energy phase polls to start and end its
        window right after a tick; None when the source has no counter to align to."""
        ...

    def has_idle_model(self) -> bool:
        """False when the source cannot tell idle power apart (an estimate from TDP)."""
        ...

    def close(self) -> None:
        """Release handles."""
        ...
