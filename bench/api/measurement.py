"""bench.measure(): a caller's function through the runner that measures every run case.

The function is dressed as a one-case kernel and handed to bench.execution.runner.run_case with the
run's own timing policy, peak lookup, stored ceiling and energy phase, so a Measurement's
figures come from the code that writes cases.jsonl and carry its field names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bench.api import inputs
from bench.execution.context import CaseContext

NO_DTYPE = "no dtype= given: the peak depends on the math mode (e.g. dtype='bf16')"
NO_OPS = "no ops= given: pass the operations one call performs"
NO_BYTES = "no bytes= given: pass the bytes one call must move"


@dataclass(frozen=True, repr=False)
class Measurement:
    """One measured callable. Fields are named, and mean, as in a run's cases.jsonl.

    SI units, the unit in the name. A figure that cannot be known is None and
    `reasons[name]` says why (no ops= given, no peak for this math mode, no power source).
    `samples_s` holds every raw per-call sample the statistics were derived from.
    """

    kernel: str  # the callable's name
    device: str  # "cpu", "cuda:0"
    dtype: str | None  # the math mode given as dtype=
    math_mode: str | None
    ops: int | float | None
    bytes: int | float | None
    arithmetic_intensity: float | None
    # timing: per-call seconds of device time
    time_median_s: float
    time_mean_s: float
    time_min_s: float
    time_max_s: float
    time_p10_s: float
    time_p90_s: float
    time_iqr_s: float
    time_ci95_low_s: float
    time_ci95_high_s: float
    ci95_method: str
    rel_noise: float
    rel_iqr: float
    n_samples: int
    timing_mode: str  # hot | cold (flush=True) | graph
    timing_mode_reason: str
    stop_reason: str
    first_call_s: float
    warmup_s: float
    warmup_calls: int
    warmup_stable: bool
    measured_time_s: float
    wall_time_s: float
    # rates and their denominators, each with where it came from or why it is None
    achieved_ops_per_s: float | None
    best_ops_per_s: float | None
    peak_ops_per_s: float | None
    peak_source: str | None
    peak_detail: str | None
    peak_clock_hz: float | None
    frac_of_peak: float | None
    measured_peak_ops_per_s: float | None
    measured_peak_source: str | None
    measured_peak_detail: str | None
    frac_of_measured_peak: float | None
    clock_peak_ops_per_s: float | None
    clock_peak_detail: str | None
    frac_of_clock_peak: float | None
    clock_hz_before: float | None
    clock_hz_after: float | None
    clock_source: str | None
    cpu_pressure: float | None
    cpu_pressure_source: str | None
    # the energy window that follows the timing, when a power source exists
    energy_j: float | None
    energy_source: str | None
    energy_reason: str | None
    energy_scope: str | None
    window_s: float | None
    iterations: int | None
    avg_power_w: float | None
    ops_per_j: float | None
    energy_integral_j: float | None
    energy_counter_vs_integral: float | None
    sm_clock_hz_median: float | None
    mem_clock_hz_median: float | None
    temp_c_max: float | None
    throttle: tuple[str, ...]
    warnings: tuple[str, ...]
    method_version: int
    reasons: dict[str, str] = field(default_factory=dict, hash=False)
    samples_s: tuple[float, ...] = ()

    def __repr__(self) -> str:
        shown = ("kernel", "device", "dtype", "time_median_s", "achieved_ops_per_s")
        shown += ("frac_of_peak", "frac_of_measured_peak", "energy_j", "ops_per_j")
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"Measurement({body}, n_samples={self.n_samples})"


# Figures whose None gets an entry in Measurement.reasons, and where that reason comes from.
def _reasons(r: dict[str, Any]) -> dict[str, str]:
    no_rate = NO_OPS if r["ops"] is None else None
    why = {
        "ops": NO_OPS,
        "bytes": NO_BYTES,
        "arithmetic_intensity": NO_OPS if r["ops"] is None else NO_BYTES,
        "achieved_ops_per_s": NO_OPS,
        "best_ops_per_s": NO_OPS,
        "peak_ops_per_s": r["peak_detail"],
        "frac_of_peak": no_rate or r["peak_detail"],
        "measured_peak_ops_per_s": r["measured_peak_detail"],
        "frac_of_measured_peak": no_rate or r["measured_peak_detail"],
        "clock_peak_ops_per_s": r["clock_peak_detail"],
        "frac_of_clock_peak": no_rate or r["clock_peak_detail"],
        "energy_j": r["energy_reason"],
        "avg_power_w": r["energy_reason"],
        "ops_per_j": no_rate or r["energy_reason"],
    }
    return {name: text for name, text in why.items() if r[name] is None and text}


_COPIED = tuple(f.name for f in fields(Measurement) if f.name not in ("reasons", "samples_s"))


def _from_result(result: Any, samples: tuple[float, ...], notes: list[str]) -> Measurement:
    leaves = result.leaves()  # Measurement is flat: the record's leaf fields, by name
    values = {name: leaves[name] for name in _COPIED}
    values["dtype"] = leaves["math_mode"]
    values["throttle"] = tuple(leaves["throttle"])
    values["warnings"] = (*leaves["warnings"], *notes)
    return Measurement(**values, reasons=_reasons(leaves), samples_s=samples)


class _FirstCallFailed(Exception):
    """The function raised on its first call: measure() re-raises the original."""


class _CallableKernel:
    """A caller's zero-argument function with the Kernel interface the runner expects.

    Nothing is allocated, checked or switched: the caller bound the inputs and set torch's
    math flags; the "check" is the first call, whose exception reaches the caller unchanged.
    """

    COLLECTIVE = False

    def __init__(self, fn: Callable[[], object], ops: Any, nbytes: Any, mode: str | None):
        self.fn, self._ops, self._bytes, self._mode = fn, ops, nbytes, mode

    def unsupported_reason(self, case: Any, facts: Any) -> None:
        return None

    def memory_bytes(self, case: Any) -> int:
        return 0  # the inputs exist already

    def math_mode(self, case: Any) -> str | None:
        return self._mode

    def precision(self, case: Any) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def prepare(self, case: Any, device: Any) -> Any:
        from kernels.base import Prepared

        return Prepared(run=self.fn, check=self._first_call)

    def ops(self, case: Any) -> Any:
        return self._ops

    def ops_convention(self, case: Any) -> str | None:
        return "given by the caller (ops=)" if self._ops is not None else None

    def bytes_moved(self, case: Any) -> Any:
        return self._bytes

    def _first_call(self) -> Any:
        from kernels.base import Correctness

        try:
            self.fn()
        except Exception as exc:
            raise _FirstCallFailed from exc
        return Correctness(True, "not checked: measure() times the callable as given", 0.0, 0.0)


def _name_of(fn: Callable[[], object]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def measure(
    fn: Callable[[], object],
    *,
    ops: int | float | None = None,
    bytes: int | float | None = None,  # named as in cases.jsonl
    device: Any = None,
    dtype: Any = None,
    flush: bool = False,
    max_time_s: float | None = None,
    power: Any = "auto",
    baselines: str | Path | None = None,
) -> Measurement:
    """Time `fn()` as `flopwatt run` times a case; rate it against the peak; measure joules.

    fn: a zero-argument callable with its inputs bound (a lambda, functools.partial).
    ops, bytes: operations and bytes of one call; without ops every rate is None.
    device: "cpu", "cuda", "cuda:N" or a torch.device. None takes the caller's current
        device: torch's default device when that is not the CPU, else the current CUDA
        device when CUDA is available, else the CPU (decided once, at the start).
    dtype: the math mode fn runs in ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp64"
        or a torch dtype); it picks the peak. flopwatt does not change torch's TF32 flags.
    flush: flush the last-level cache before every call and time each call on its own
        (cold timing); else calls run back to back (hot, or a CUDA graph under 20 us).
    max_time_s: wall-clock limit of the timing, warm-up included (default as the quick
        suite: 4 s on a CPU, 10 s on a GPU); it also caps the energy window (1 s on a CPU,
        5 s on a GPU).
    power: "auto" (NVML on NVIDIA, amdsmi on AMD, RAPL on a CPU if readable, as
        `flopwatt run`), "none", "nvml", "amdsmi", "rapl", or an opened bench.power source.
    baselines: folder holding <sku>/ceiling.json (default results/baselines) for
        frac_of_measured_peak.

    >>> import torch, bench
    >>> a = torch.randn(256, 256)
    >>> m = bench.measure(lambda: a @ a, ops=2 * 256**3, dtype="fp32", device="cpu")
    >>> m.achieved_ops_per_s == m.ops / m.time_median_s
    True

    Raises ValueError for bad arguments (before touching any device), what fn raises on its
    first call, and RuntimeError when fn fails later while being timed.
    """
    return measure_with_facts(
        fn,
        ops=ops,
        bytes=bytes,
        device=device,
        dtype=dtype,
        flush=flush,
        max_time_s=max_time_s,
        power=power,
        baselines=baselines,
    )[0]


def measure_with_facts(
    fn: Callable[[], object],
    *,
    ops: Any = None,
    bytes: Any = None,
    device: Any = None,
    dtype: Any = None,
    flush: bool = False,
    max_time_s: float | None = None,
    power: Any = "auto",
    baselines: str | Path | None = None,
) -> tuple[Measurement, Any]:
    """measure(), plus the DeviceFacts of the device it ran on (for the pytest plugin)."""
    if not callable(fn):
        raise ValueError(f"measure() needs a callable taking no arguments, got {fn!r}")
    ops = inputs.count_of("ops", ops)
    nbytes = inputs.count_of("bytes", bytes)
    mode = inputs.math_mode_of(dtype)
    max_time_s = inputs.seconds_of("max_time_s", max_time_s)
    inputs.check_power(power)
    backend = inputs.open_backend(device)
    try:
        choice, owned = inputs.open_power(power, backend.facts())
        source = choice.source
        try:
            result, samples, notes = _run(
                fn, ops, nbytes, mode, flush, max_time_s, backend, source, baselines
            )
        finally:
            if owned:
                source.close()
        return _from_result(result, samples, notes), backend.facts()
    finally:
        backend.close()


def _run(
    fn: Callable[[], object],
    ops: Any,
    nbytes: Any,
    mode: str | None,
    flush: bool,
    max_time_s: float | None,
    backend: Any,
    source: Any,
    baselines: str | Path | None,
) -> tuple[Any, tuple[float, ...], list[str]]:
    """run_case on the callable: (its CaseResult, raw samples, notes to add to warnings)."""
    from bench.commands.ceiling.session import load_for_run
    from bench.execution.plan import PolicyOverrides, RunPlan
    from bench.execution.runner import run_case
    from bench.measuring.timing import default_energy_policy
    from bench.peaks.lookup import Peak, resolve_peak
    from bench.results.blessed.ceiling import DEFAULT_BASELINES
    from bench.results.ceiling_model import MeasuredPeak
    from kernels.case import Case

    facts = backend.facts()
    name = _name_of(fn)
    overrides = PolicyOverrides(mode="cold" if flush else "auto", timeout_s=max_time_s)
    policy = RunPlan(overrides=overrides).policy(backend.kind)
    energy = default_energy_policy(backend.kind)
    if max_time_s is not None and max_time_s < energy.window_s:
        energy = replace(energy, window_s=max_time_s, ramp_s=min(energy.ramp_s, max_time_s / 4))
    ceilings = load_for_run(backend, Path(baselines) if baselines else DEFAULT_BASELINES)

    def peak_for(_: str) -> Peak:
        return resolve_peak(facts.identity, mode) if mode else Peak(None, None, NO_DTYPE, None)

    def measured_for(_: str) -> MeasuredPeak:
        return ceilings.lookup(mode) if mode else MeasuredPeak(None, None, NO_DTYPE)

    case = Case(name, {"callable": name}, mode or "unspecified", backend.label)
    try:
        outcome = run_case(
            case,
            name,
            _CallableKernel(fn, ops, nbytes, mode),
            CaseContext(
                backend=backend,
                power=source,
                policy=policy,
                peak_for=peak_for,
                energy=energy if source.available else None,
                measured_peak_for=measured_for,
            ),
        )
    except _FirstCallFailed as exc:
        raise exc.__cause__ from None  # type: ignore[misc]
    result = outcome.result
    status, reason = result.identity.status, result.identity.reason
    if status != "ok" or outcome.timings is None:
        raise RuntimeError(f"measure(): {name} {status} while timed: {reason}")
    return result, tuple(outcome.timings.samples_s), list(ceilings.warnings)
