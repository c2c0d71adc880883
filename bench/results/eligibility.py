"""What a case's figures were measured under, read the same way by `compare` and the history:
the SM clock the case ran at (to normalise time by clock)."""

from __future__ import annotations

from typing import Any

from bench.results.frame import known


def case_clock(case: dict[str, Any]) -> tuple[float | None, str]:
    """The SM clock the case ran at: the energy window's median under load, else the mean of
    the reads before and after timing."""
    median = case.get("sm_clock_hz_median")
    if known(median) and median > 0:
        return median, "median SM clock of the energy window"
    before, after = case.get("clock_hz_before"), case.get("clock_hz_after")
    if known(before) and known(after) and before > 0 and after > 0:
        return (before + after) / 2, "clock read before and after timing"
    return None, "no clock recorded"
