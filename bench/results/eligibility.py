"""What a case was measured under, and which measurements may stand as a baseline: the
rules `compare`, health and `history check` share.

The SM clock a case ran at normalises time by clock. A case measured while another task
waited for a CPU (bench.measuring.pressure) can look tight and still be slow, so it never
carries a verdict. The history adds three rules of its own, because a nightly baseline is
built from many runs and one bad run must not move it: a run measured by another
METHOD_VERSION (its numbers mean something else), a throttled case (the clock, not the
code, set its speed), and a case on a GPU whose health check failed.
"""

from __future__ import annotations

from typing import Any

from bench.results.frame import known

MAX_CPU_PRESSURE = 0.05  # clean cases on a 2-core VM read <= 0.02, shared ones 0.4-1.0


def busy(case: dict[str, Any]) -> float | None:
    """The CPU pressure during the case's timing when above MAX_CPU_PRESSURE, else None."""
    pressure = case.get("cpu_pressure")
    return pressure if known(pressure) and pressure > MAX_CPU_PRESSURE else None


def ineligible(cases: Any, method_version: Any) -> Any:
    """Why each row of a history `cases` frame cannot stand in a baseline (None: it can).

    `method_version` is the judged run's, one value or a Series aligned with `cases`.
    The first reason that applies wins, in the order below."""
    import pandas as pd

    reason = pd.Series(None, index=cases.index, dtype="object")
    rules = (
        (cases["status"].fillna("unknown") != "ok", "status " + cases["status"].fillna("?")),
        (cases["cpu_pressure"].astype("float64") > MAX_CPU_PRESSURE, "busy CPU"),
        (cases["throttled"].astype("boolean").fillna(False).astype(bool), "throttled"),
        (cases["health_failed"].astype("boolean").fillna(False).astype(bool), "health failed"),
        (_versions(cases["method_version"]) != _versions(method_version), "other METHOD_VERSION"),
    )
    for hit, why in reversed(rules):  # reversed: the first rule's reason is written last
        reason = reason.mask(hit, why)
    return reason


def _versions(value: Any) -> Any:
    """METHOD_VERSIONs comparable with !=: an unknown one is "?" (equal to another unknown)."""
    if hasattr(value, "fillna"):
        return value.astype("object").fillna("?")
    return "?" if value is None else value


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
