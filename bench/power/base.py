"""The PowerSource protocol: what the hardware can report about power, or why it cannot.

This is the placeholder shape; the energy phase (readings at window edges, a power trace)
is added by the power issue. The runner receives a PowerSource and never asks which device
it is on, so a CPU run and a GPU run without NVML differ only in the object passed in.
"""

from __future__ import annotations

from typing import Any, Protocol


class PowerSource(Protocol):
    """A source of power and energy readings for one device."""

    name: str  # "nvml", "rapl", "estimate", "none"
    available: bool  # False when the source cannot measure anything here
    reason: str | None  # why it is unavailable; None when available

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the source for the run record."""
        ...
