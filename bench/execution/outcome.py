"""What running one case gives back, and the helpers every runner shares.

The compute runner (runner.py) and the collective runner (collective_runner.py) both fill a
CaseDraft from the same base and freeze it into the CaseResult when the case ends, classify
failures the same way and return a CaseOutcome; this module holds those shared parts so that
neither runner imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from bench.devices.base import Backend
from bench.measuring import metrics
from bench.measuring.timing import EnergyPhase, Timings
from bench.results.record import CaseDraft, CaseResult
from kernels.base import Kernel
from kernels.case import Case

# Phrases torch uses when a dtype or operator has no implementation on a device.
_UNSUPPORTED_PHRASES = (
    "not implemented for",
    "not supported",
    "only supported",
    "no kernel image",
    "no available kernel",  # SDPA on CUDA with no backend for these inputs
    "no viable backend",  # SDPA on CPU
)


@dataclass(frozen=True)
class CaseOutcome:
    """The record for cases.jsonl and, when the case was timed, its raw samples."""

    result: CaseResult
    timings: Timings | None
    energy: EnergyPhase | None = None
    samples: dict[str, list] | None = None  # raw samples of kernels not timed by measure()

    def trace_columns(self) -> dict[str, list] | None:
        """The energy window's power trace, time relative to the first sample."""
        if self.energy is None or not self.energy.reading.samples:
            return None
        samples = self.energy.reading.samples
        t0 = samples[0].t_s
        return {
            "t_s": [s.t_s - t0 for s in samples],
            "power_w": [s.power_w for s in samples],
            "power_avg_w": [s.power_avg_w for s in samples],
            "sm_clock_hz": [s.sm_clock_hz for s in samples],
            "mem_clock_hz": [s.mem_clock_hz for s in samples],
            "temp_c": [s.temp_c for s in samples],
            "event_reasons": [s.event_reasons for s in samples],
        }

    def sample_columns(self) -> dict[str, list] | None:
        t = self.timings
        if t is None:
            return self.samples
        return {
            "sample": list(range(len(t.samples_s))),
            "time_s": list(t.samples_s),
            "calls": list(t.calls_per_sample),
            "round": list(t.round_of_sample),
        }


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def base_result(case: Case, case_id: str, kernel: Kernel) -> CaseDraft:
    """The draft every runner fills in: identity and work, known before the case runs."""
    ops, nbytes = kernel.ops(case), kernel.bytes_moved(case)
    return CaseDraft(
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


def fits(case: Case, kernel: Kernel, backend: Backend) -> str | None:
    """Why the case does not fit in the device's free memory, or None."""
    need = kernel.memory_bytes(case)
    free, source = backend.free_memory_bytes()
    if free is not None and need > free:
        return f"needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free ({source})"
    return None


def classify(exc: BaseException) -> tuple[str, str]:
    """skipped for out-of-memory and operators the device lacks; failed for anything else."""
    message = first_line(exc)
    if is_out_of_memory(exc):
        return "skipped", f"out of memory: {message}"
    if isinstance(exc, NotImplementedError) or any(
        phrase in message.lower() for phrase in _UNSUPPORTED_PHRASES
    ):
        return "skipped", f"unsupported here: {message}"
    return "failed", message
