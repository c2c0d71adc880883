"""run_case(): one Case through check, timing and peak lookup into a CaseResult.

The runner receives a Backend, a PowerSource and a peak function and never asks which device
it is on. Any failure of one case becomes that case's status (`skipped` when the device cannot
run it, `failed` when it ran wrongly or raised), so a run always goes on to the next case.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from bench import metrics
from bench.case import Case
from bench.devices.base import Backend, Unsupported
from bench.peaks import Peak
from bench.power.base import PowerSource
from bench.record import CaseResult
from bench.timing import Clock, Policy, Timings, measure
from kernels.base import Kernel

# Phrases torch uses when a dtype or operator has no implementation on a device.
_UNSUPPORTED_PHRASES = ("not implemented for", "not supported", "only supported", "no kernel image")


@dataclass(frozen=True)
class CaseOutcome:
    """The record for cases.jsonl and, when the case was timed, its raw samples."""

    result: CaseResult
    timings: Timings | None

    def sample_columns(self) -> dict[str, list] | None:
        t = self.timings
        if t is None:
            return None
        return {
            "sample": list(range(len(t.samples_s))),
            "time_s": list(t.samples_s),
            "calls": list(t.calls_per_sample),
            "round": list(t.round_of_sample),
        }


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _base_result(case: Case, case_id: str, kernel: Kernel) -> CaseResult:
    ops, nbytes = kernel.ops(case), kernel.bytes_moved(case)
    return CaseResult(
        case_id=case_id,
        kernel=case.kernel,
        params=dict(case.params),
        dtype=case.dtype,
        device=case.device,
        world_size=case.world_size,
        status="ok",
        math_mode=kernel.math_mode(case),
        ops=ops,
        ops_convention=kernel.ops_convention(case),
        bytes=nbytes,
        arithmetic_intensity=metrics.arithmetic_intensity(ops, nbytes),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _fits(case: Case, kernel: Kernel, backend: Backend) -> str | None:
    """Why the case does not fit in the device's free memory, or None."""
    need = kernel.memory_bytes(case)
    free, source = backend.free_memory_bytes()
    if free is not None and need > free:
        return f"needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free ({source})"
    return None


def _fill_timing(result: CaseResult, t: Timings) -> None:
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
    if result.frac_of_peak is not None and result.frac_of_peak > 1.0:
        result.warnings.append(
            f"achieved {result.frac_of_peak:.0%} of the {result.peak_source} peak: "
            "the peak or the operation count is wrong"
        )


def _fill_peak(result: CaseResult, peak: Peak) -> None:
    result.peak_ops_per_s, result.peak_source = peak.ops_per_s, peak.source
    result.peak_detail, result.peak_clock_hz = peak.detail, peak.spec_clock_hz


def run_case(
    case: Case,
    case_id: str,
    kernel: Kernel,
    backend: Backend,
    power: PowerSource,
    policy: Policy,
    peak_for: Callable[[str], Peak],
    clock: Clock = time.perf_counter,
) -> CaseOutcome:
    """Check, time and rate one case; never raises for a case-level problem."""
    started = clock()
    result = _base_result(case, case_id, kernel)
    result.energy_reason = power.reason or "energy phase not implemented yet"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fill_peak(result, peak_for(result.math_mode or case.dtype))
    result.warnings.extend(str(w.message) for w in caught)

    timings = None
    skip = kernel.unsupported_reason(case, backend.facts()) or _fits(case, kernel, backend)
    if skip is not None:
        result.status, result.reason = "skipped", skip
    else:
        try:
            with kernel.precision(case):
                timings = _check_and_time(case, kernel, backend, policy, clock, result)
        except Unsupported as exc:
            result.status, result.reason = "skipped", str(exc)
        except (RuntimeError, NotImplementedError, ValueError, TypeError, MemoryError) as exc:
            result.status, result.reason = _classify(exc)
    if timings is not None and result.status == "ok":
        _fill_timing(result, timings)
    result.duration_s = clock() - started
    return CaseOutcome(result, timings if result.status == "ok" else None)


def _classify(exc: BaseException) -> tuple[str, str]:
    """skipped for out-of-memory and operators the device lacks; failed for anything else."""
    message = _first_line(exc)
    if _is_out_of_memory(exc):
        return "skipped", f"out of memory: {message}"
    if isinstance(exc, NotImplementedError) or any(
        phrase in message.lower() for phrase in _UNSUPPORTED_PHRASES
    ):
        return "skipped", f"unsupported here: {message}"
    return "failed", message


def _check_and_time(
    case: Case,
    kernel: Kernel,
    backend: Backend,
    policy: Policy,
    clock: Clock,
    result: CaseResult,
) -> Timings | None:
    prepared = kernel.prepare(case, backend.torch_device())
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
    timings = measure(prepared.run, backend, policy, clock)
    result.clock_hz_after, _ = backend.clock_hz()
    if result.clock_hz_before is None:
        result.clock_source = f"unknown: {result.clock_source}"
    return timings
