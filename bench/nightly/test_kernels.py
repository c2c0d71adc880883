"""Every case of the plan through flopwatt's engine, reported to pytest-benchmark."""

from __future__ import annotations

from typing import Any

import pytest

from bench.commands.report.pytest_benchmark import SampleClock
from bench.execution.context import CaseContext
from bench.results.record import CaseResult

CLOCK = SampleClock()
pytestmark = pytest.mark.benchmark(**CLOCK.mark_options())


def extra_info(r: CaseResult) -> dict[str, Any]:
    """The figures pytest-benchmark has no column for, scaled for reading (SI in the name)."""
    info = {
        "tflop_per_s": r.rates.achieved_ops_per_s and r.rates.achieved_ops_per_s / 1e12,
        "frac_of_peak": r.rates.frac_of_peak,
        "peak_source": r.rates.peak_source,
        "frac_of_clock_peak": r.rates.frac_of_clock_peak,
        "frac_of_measured_peak": r.rates.frac_of_measured_peak,
        "power_w": r.energy.avg_power_w,
        "tflop_per_s_per_w": r.energy.ops_per_j and r.energy.ops_per_j / 1e12,
        "energy_source": r.energy.energy_source,
        "busbw_gb_per_s": r.collective.busbw_bytes_per_s,
        "sm_clock_hz": r.energy.sm_clock_hz_median or r.timing.clock_hz_after,
        "cpu_pressure": r.timing.cpu_pressure,
        "timing_mode": r.timing.timing_mode,
        "stop_reason": r.timing.stop_reason,
        "time_ci95_s": [r.timing.time_ci95_low_s, r.timing.time_ci95_high_s],
    }
    if info["busbw_gb_per_s"] is not None:
        info["busbw_gb_per_s"] /= 1e9
    return {k: v for k, v in info.items() if v is not None}


def test_kernel(benchmark: Any, flopwatt_case: Any, flopwatt_device: Any) -> None:
    from bench.execution.runner import run_case
    from bench.measuring.timing import default_energy_policy
    from bench.nightly import flopwatt_plan
    from bench.peaks.lookup import resolve_peak
    from kernels import get_kernel

    backend, power = flopwatt_device
    plan = flopwatt_plan()
    identity = backend.facts().identity
    outcome = run_case(
        flopwatt_case,
        f"{flopwatt_case.kernel}-{flopwatt_case.dtype}",
        get_kernel(flopwatt_case.kernel),
        CaseContext(
            backend=backend,
            power=power,
            policy=plan.policy(backend.kind),
            peak_for=lambda mode: resolve_peak(identity, mode, {}),
            energy=default_energy_policy(backend.kind) if power.available else None,
        ),
    )
    r = outcome.result
    if r.identity.status != "ok":
        pytest.skip(f"{r.identity.status}: {r.identity.reason}")
    benchmark.extra_info.update(extra_info(r))
    CLOCK.replay(benchmark, (outcome.sample_columns() or {}).get("time_s", []))
