"""run_case(): one Case through check, timing and peak lookup into a CaseDraft.

The runner receives a Backend, a PowerSource and a peak function and never asks which device
it is on. Any failure of one case becomes that case's status (`skipped` when the device cannot
run it, `failed` when it ran wrongly or raised), so a run always goes on to the next case.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from bench.devices.base import Backend, Unsupported
from bench.execution.collective_runner import run_collective_case
from bench.execution.context import CaseContext
from bench.execution.outcome import CaseOutcome, base_result, classify, first_line, fits
from bench.hardware.nvml import decode_clock_event_reasons
from bench.measuring import metrics
from bench.measuring.pressure import PressureProbe
from bench.measuring.timing import (
    Clock,
    EnergyPhase,
    Policy,
    Timings,
    measure,
    measure_energy,
)
from bench.peaks.lookup import Peak
from bench.power.sampler import max_of, median_of
from bench.results.ratios import fill_ratios
from bench.results.record import CaseDraft
from kernels.base import Kernel, Prepared
from kernels.case import Case

# Counter and integral disagreeing by more than this is flagged (docs/power.md).
ENERGY_DISAGREEMENT = 0.10


def _fill_timing(result: CaseDraft, t: Timings) -> None:
    s = t.summary
    result.time_median_s, result.time_mean_s = s.median_s, s.mean_s
    result.time_min_s, result.time_max_s = s.min_s, s.max_s
    result.time_p10_s, result.time_p90_s, result.time_iqr_s = s.p10_s, s.p90_s, s.iqr_s
    result.time_ci95_low_s, result.time_ci95_high_s = s.ci95_median_low_s, s.ci95_median_high_s
    result.ci95_method, result.rel_noise, result.rel_iqr = s.ci95_method, s.rel_noise, s.rel_iqr
    result.n_samples = s.n
    result.timing_mode, result.timing_mode_reason = t.mode, t.mode_reason
    result.stop_reason, result.first_call_s = t.stop_reason, t.first_call_s
    result.warmup_s, result.warmup_calls = t.warmup.seconds, t.warmup.calls
    result.warmup_stable = t.warmup.stable
    result.measured_time_s, result.wall_time_s = t.measured_time_s, t.wall_time_s
    result.achieved_ops_per_s = metrics.achieved_ops_per_s(result.ops, s.median_s)
    result.best_ops_per_s = metrics.achieved_ops_per_s(result.ops, s.min_s)
    result.frac_of_peak = metrics.fraction(result.achieved_ops_per_s, result.peak_ops_per_s)
    result.warnings.extend(t.warnings)
    if t.measured_time_s > t.wall_time_s * 1.001:
        result.warnings.append(
            f"recorded {t.measured_time_s:.4f} s exceeds the {t.wall_time_s:.4f} s of wall time: "
            "the device timer is wrong"
        )
    result.peak_exceeded = metrics.peak_exceeded(result.frac_of_peak)
    if result.peak_exceeded:
        result.warnings.append(
            f"achieved {result.frac_of_peak:.1%} of the {result.peak_source} peak, above "
            f"{metrics.PEAK_MARGIN:.0%}: the peak is wrong (or the operation count), not a "
            f"kernel faster than the hardware; peak: {result.peak_detail}"
        )


def _fill_peak(result: CaseDraft, peak: Peak) -> None:
    result.peak_ops_per_s, result.peak_source = peak.ops_per_s, peak.source
    result.peak_detail, result.peak_clock_hz = peak.detail, peak.spec_clock_hz


def run_case(case: Case, case_id: str, kernel: Kernel, ctx: CaseContext) -> CaseOutcome:
    """Check, time, rate and (when the power source can) measure the energy of one case.

    Never raises for a case-level problem. The energy phase runs only with an available power
    source and an EnergyPolicy; its failure leaves the timing result intact. Collectives go
    through bench.execution.collective_runner, which keeps every rank in lockstep.
    `ctx.measured_peak_for` gives the measured ceiling of a math mode for
    frac_of_measured_peak.
    """
    if getattr(kernel, "COLLECTIVE", False):
        return run_collective_case(case, case_id, kernel, ctx)
    backend, power, policy, clock = ctx.backend, ctx.power, ctx.policy, ctx.clock
    energy, measured_peak_for = ctx.energy, ctx.measured_peak_for
    started = clock()
    result = base_result(case, case_id, kernel)
    result.energy_reason = power.reason if not power.available else "no energy phase requested"
    result.idle_power_w = ctx.idle_power_w
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fill_peak(result, ctx.peak_for(result.math_mode or case.dtype))
    result.warnings.extend(str(w.message) for w in caught)

    timings, phase = None, None
    skip = kernel.unsupported_reason(case, backend.facts()) or fits(case, kernel, backend)
    if skip is not None:
        result.status, result.reason = "skipped", skip
    else:
        try:
            with kernel.precision(case):
                prepared = kernel.prepare(case, backend.torch_device())
                timings = _check_and_time(prepared, backend, policy, clock, result)
                if timings is not None and energy is not None and power.available:
                    phase = _energy_phase(prepared.run, ctx, timings, result)
        except Unsupported as exc:
            result.status, result.reason = "skipped", str(exc)
        except (RuntimeError, NotImplementedError, ValueError, TypeError, MemoryError) as exc:
            result.status, result.reason = classify(exc)
    if timings is not None and result.status == "ok":
        _fill_timing(result, timings)
        if phase is not None:
            _fill_energy(result, phase)
    mode = result.math_mode or case.dtype
    fill_ratios(result, measured_peak_for(mode) if measured_peak_for is not None else None)
    result.duration_s = clock() - started
    ok = result.status == "ok"
    return CaseOutcome(result.freeze(), timings if ok else None, phase if ok else None)


def _energy_phase(
    run: Callable[[], object], ctx: CaseContext, timings: Timings, result: CaseDraft
) -> EnergyPhase | None:
    """The energy phase, or None with the reason recorded when the sensor fails mid-way."""
    from bench.hardware.nvml import NvmlCallFailed

    try:
        median_s = timings.summary.median_s
        return measure_energy(run, ctx.backend, ctx.power, ctx.energy, median_s, ctx.clock)
    except (NvmlCallFailed, OSError) as exc:
        result.energy_reason = f"energy phase failed: {first_line(exc)}; timing kept"
        return None


def _fill_energy(result: CaseDraft, phase: EnergyPhase) -> None:
    reading = phase.reading
    result.energy_j, result.energy_source = reading.energy_j, reading.energy_source
    result.energy_reason, result.energy_scope = reading.reason, reading.scope
    result.window_s, result.iterations = phase.window_s, phase.iterations
    result.energy_integral_j = reading.integral_j
    result.avg_power_w = metrics.fraction(reading.energy_j, phase.window_s)
    result.ops_per_j = metrics.ops_per_j(result.ops, phase.iterations, reading.energy_j)
    net = metrics.net_energy_j(reading.energy_j, result.idle_power_w, phase.window_s)
    result.net_ops_per_j = metrics.ops_per_j(result.ops, phase.iterations, net)
    if result.avg_power_w is not None and result.idle_power_w is not None:
        result.net_power_w = result.avg_power_w - result.idle_power_w
    samples = reading.samples
    result.sm_clock_hz_median = median_of([s.sm_clock_hz for s in samples])
    result.mem_clock_hz_median = median_of([s.mem_clock_hz for s in samples])
    result.temp_c_max = max_of([s.temp_c for s in samples])
    mask = 0
    for s in samples:
        mask |= s.event_reasons or 0
    result.throttle = decode_clock_event_reasons(mask)
    result.throttle_time_s = dict(reading.throttle_time_s)
    result.warnings.extend(phase.warnings)
    if reading.counter_j is not None and reading.integral_j:
        ratio = reading.counter_j / reading.integral_j
        result.energy_counter_vs_integral = ratio
        if abs(ratio - 1) > ENERGY_DISAGREEMENT:
            result.warnings.append(
                f"energy counter and power integral disagree: counter/integral = {ratio:.2f}"
            )


def _check_and_time(
    prepared: Prepared,
    backend: Backend,
    policy: Policy,
    clock: Clock,
    result: CaseDraft,
) -> Timings | None:
    verdict = prepared.check()
    backend.synchronize()
    result.correctness = verdict.as_dict()
    result.kernel_details = dict(prepared.details)
    if not verdict.ok:
        result.status = "failed"
        result.reason = (
            f"wrong result: {verdict.metric} = {verdict.error:.3g} "
            f"> tolerance {verdict.tolerance:.3g}"
        )
        return None
    result.clock_hz_before, result.clock_source = backend.clock_hz()
    pressure = PressureProbe.start()
    timings = measure(prepared.run, backend, policy, clock)
    result.cpu_pressure, result.cpu_pressure_source = pressure.stop()
    result.clock_hz_after, _ = backend.clock_hz()
    if result.clock_hz_before is None:
        result.clock_source = f"unknown: {result.clock_source}"
    return timings
