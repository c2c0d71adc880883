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
SAME = object()  # ineligible(): every row is judged against its own METHOD_VERSION


def busy(case: dict[str, Any]) -> float | None:
    """The CPU pressure during the case's timing when above MAX_CPU_PRESSURE, else None."""
    pressure = case.get("cpu_pressure")
    return pressure if known(pressure) and pressure > MAX_CPU_PRESSURE else None


def ineligible(cases: Any, method_version: Any = SAME) -> Any:
    """Why each row of a history `cases` frame cannot stand in a baseline (None: it can).

    `method_version` is the judged run's, one value or a Series aligned with `cases`; SAME
    (the default) when each row is judged against its own METHOD_VERSION's runs only, as
    the history's series are. The first reason that applies wins, in the order below."""
    import numpy as np
    import pandas as pd

    status = cases["status"]
    rules = (
        (status.fillna("unknown") != "ok", lambda hit: "status " + status[hit].fillna("?")),
        (cases["cpu_pressure"].astype("float64") > MAX_CPU_PRESSURE, "busy CPU"),
        (cases["throttled"].astype("boolean").fillna(False), "throttled"),
        (cases["health_failed"].astype("boolean").fillna(False), "health failed"),
        (_other_version(cases["method_version"], method_version), "other METHOD_VERSION"),
    )
    reason = np.full(len(cases), None, dtype=object)
    open_rows = np.ones(len(cases), dtype=bool)  # no reason yet
    for rule, why in rules:
        hit = np.asarray(rule, dtype=bool) & open_rows
        if hit.any():
            reason[hit] = why if isinstance(why, str) else why(hit).to_numpy(dtype=object)
            open_rows &= ~hit
    return pd.Series(reason, index=cases.index, dtype="object")


def _other_version(versions: Any, judged: Any) -> Any:
    """Rows measured by another METHOD_VERSION than the judged run's (an unknown one is
    "?", equal to another unknown)."""
    import numpy as np

    if judged is SAME:
        return np.zeros(len(versions), dtype=bool)
    return (_versions(versions) != _versions(judged)).to_numpy(dtype=bool)


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
