"""NullPowerSource: the source used when nothing can measure energy.

It exists so that the runner has one code path: energy is unknown (None) with the reason this
object carries, never a made-up zero.
"""

from __future__ import annotations

from typing import Any


class NullPowerSource:
    """A PowerSource that measures nothing and says why."""

    def __init__(self, reason: str) -> None:
        self.name = "none"
        self.available = False
        self.reason: str | None = reason

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "available": self.available, "reason": self.reason}

    def start_window(self) -> Any:
        raise RuntimeError(f"no power source: {self.reason}")

    def update_period_s(self) -> None:
        return None

    def counter_j(self) -> None:
        return None

    def has_idle_model(self) -> bool:
        return False

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"NullPowerSource(reason={self.reason!r})"
