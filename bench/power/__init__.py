"""Power sources. bench/power/nvml.py is the only module that imports pynvml."""

from __future__ import annotations

from bench.power.base import PowerSource
from bench.power.null import NullPowerSource

__all__ = ["NullPowerSource", "PowerSource", "open_power_source"]

PLACEHOLDER_REASON = "energy measurement arrives with the power issue; no source opened"


def open_power_source(kind: str) -> PowerSource:
    """The power source for a device kind ("cuda", "cpu", ...).

    Placeholder: until the power issue lands this returns NullPowerSource for every kind, so
    energy is None with PLACEHOLDER_REASON and the runner's single code path already holds.
    """
    del kind  # chosen per kind once real sources exist
    return NullPowerSource(PLACEHOLDER_REASON)
