"""Every case of the plan through flopwatt's engine, reported to pytest-benchmark."""

from __future__ import annotations

from typing import Any

import pytest

from bench.commands.report.pytest_benchmark import SampleClock

CLOCK = SampleClock()
pytestmark = pytest.mark.benchmark(**CLOCK.mark_options())


def extra_info(r: Any) -> dict[str, Any]:
    """The figures pytest-benchmark has no column for, scaled for reading (SI in the name)."""
    info = {
        "tflop_per_s": r.achieved_ops_per_s and r.achieved_ops_per_s / 1e12,
        "frac_of_peak": r.frac_of_peak,
        "peak_source": r.peak_source,
        "frac_of_clock_peak": getattr(r, "frac_of_clock_peak", None),
        "frac_of_measured_peak": getattr(r, "frac_of_measured_peak", None),
        "power_w": r.avg_power_w,
        "tflop_per_s_per_w": r.ops_per_j and r.ops_per_j / 1e12,
        "energy_source": r.energy_source,
        "busbw_gb_per_s": getattr(r, "busbw_bytes_per_s", None),
        "sm_clock_hz": r.sm_clock_hz_median or r.clock_hz_after,
        "cpu_pressure": getattr(r, "cpu_pressure", None),
        "timing_mode": r.timing_mode,
        "stop_reason": r.stop_reason,
        "time_ci95_s": [r.time_ci95_low_s, r.time_ci95_high_s],
    }
    if info["busbw_gb_per_s"] is not None:
        info["busbw_gb_per_s"] /= 1e9
    return {k: v for k, v in info.items() if v is not None}


def test_kernel(benchmark: Any, flopwatt_case: Any, flopwatt_device: Any) -> None:
    from bench.nightly import flopwatt_plan
    from bench.peaks.lookup import resolve_peak
    from bench.execution.runner import run_case
    from bench.measuring.timing import default_energy_policy
    from kernels import get_kernel

    backend, power = flopwatt_device
    plan = flopwatt_plan()
    identity = backend.facts().identity
    outcome = run_case(
        flopwatt_case,
        f"{flopwatt_case.kernel}-{flopwatt_case.dtype}",
        get_kernel(flopwatt_case.kernel),
        backend,
        power,
        plan.policy(backend.kind),
        lambda mode: resolve_peak(identity, mode, {}),
        energy=default_energy_policy(backend.kind) if power.available else None,
    )
    r = outcome.result
    if r.status != "ok":
        pytest.skip(f"{r.status}: {r.reason}")
    benchmark.extra_info.update(extra_info(r))
    CLOCK.replay(benchmark, (outcome.sample_columns() or {}).get("time_s", []))
