"""The torch side of a health check on one device: matmul, copy, canary, allreduce.

Each measurement goes through the project's own runner (bench.execution.runner.run_case), so it is
checked against a reference before it is timed and lands in cases.jsonl as an ordinary case
with its raw samples; compare and report read it like any other. Shapes are fixed, so that
every device of a SKU, every night, does exactly the same work:

- GPU: a bf16 8192^3 matmul (fp16 where the GPU has no bf16) and a copy over a buffer many
  times the L2 (bench.commands.ceiling's sizing); CPU: an fp32 512^3 matmul and a 32 MiB copy, which
  exercise the same code in seconds.
- The canary: the same seeded matmul once more, its output hashed (sha256 of the bytes) on a
  cold and then on a hot device; peers must agree bit for bit (health.fleet). While the
  GPU works through a burst of these calls the NVML load reading is taken (the PCIe link is
  only trustworthy under load; see bench.commands.health.nvml_checks).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from bench.commands.health.model import FAIL, NA, PASS, Check
from bench.commands.health.noise import Repeat
from bench.devices.base import Backend, DeviceFacts, GpuIdentity
from bench.execution.context import CaseContext
from bench.execution.outcome import CaseOutcome, first_line
from bench.execution.runner import run_case
from bench.measuring.timing import Policy
from bench.peaks.lookup import Peak, resolve_peak
from bench.power.null import NullPowerSource
from kernels.base import Prepared
from kernels.case import Case

MiB = 2**20
NO_ENERGY = NullPowerSource("a health check measures time, not energy")


@dataclass(frozen=True)
class ProbeSettings:
    """What every device runs; the same on every device and every night."""

    matmul_shape: tuple[int, int, int]
    dtype: str  # bf16 on GPUs (fp16 where there is no bf16), fp32 on CPUs
    copy_bytes: int | None  # None: sized from the device's cache (bench.commands.ceiling)
    allreduce_bytes: int
    matmul_policy: Policy
    copy_policy: Policy
    collective_target_s: float
    burst_s: float = 0.2  # work queued while the NVML load reading is taken
    # short timed repeats of each kernel, interleaved, whose median is the reading
    # (bench.commands.health.noise): one long run on a shared machine can be 30% slow by chance
    repeats: int = 5


def default_settings(kind: str) -> ProbeSettings:
    """Per repeat; five repeats on a CPU (a shared machine's noise), three on a GPU."""
    if kind == "cpu":
        return ProbeSettings(
            matmul_shape=(512, 512, 512),
            dtype="fp32",
            copy_bytes=32 * MiB,
            allreduce_bytes=1 * MiB,
            matmul_policy=Policy(
                mode="hot",
                min_time_s=0.1,
                max_noise=0.02,
                timeout_s=0.4,
                warmup_min_s=0.05,
                warmup_max_s=0.2,
                trend_window=4,
            ),
            copy_policy=Policy(
                mode="hot",
                min_time_s=0.06,
                max_noise=0.02,
                timeout_s=0.3,
                warmup_min_s=0.03,
                warmup_max_s=0.1,
                trend_window=4,
            ),
            collective_target_s=0.05,
            repeats=5,
        )
    return ProbeSettings(
        matmul_shape=(8192, 8192, 8192),
        dtype="bf16",
        copy_bytes=None,
        allreduce_bytes=256 * MiB,
        matmul_policy=Policy(mode="hot", min_time_s=0.3, timeout_s=1.5, warmup_max_s=2.0),
        copy_policy=Policy(mode="hot", min_time_s=0.2, timeout_s=1.0, warmup_min_s=0.1),
        collective_target_s=0.2,
        repeats=3,
    )


def _scaled(policy: Policy, timeout_s: float) -> Policy:
    f = timeout_s / policy.timeout_s
    return replace(
        policy,
        timeout_s=timeout_s,
        min_time_s=policy.min_time_s * f,
        warmup_min_s=policy.warmup_min_s * f,
        warmup_max_s=policy.warmup_max_s * f,
    )


def sized(
    settings: ProbeSettings,
    shape: tuple[int, int, int] | None = None,
    copy_bytes: int | None = None,
    repeats: int | None = None,
    timeout_s: float | None = None,
) -> ProbeSettings:
    """The settings with what `flopwatt health --shape/--copy-bytes/--repeats/--timeout-s`
    asks for; None keeps the default.

    timeout_s is each repeat's time limit per kernel; the minimum measured time and the
    warm-up scale with it, so that a shorter check is the same check, shorter. A baseline
    only compares with a run of the same shape and copy size.
    """
    if shape is not None and min(shape) < 1:
        raise ValueError(f"every dimension of the matmul shape must be positive: {shape}")
    if copy_bytes is not None and copy_bytes < 4:
        raise ValueError(f"the copy needs at least one fp32 element (4 bytes): {copy_bytes}")
    if repeats is not None and repeats < 1:
        raise ValueError(f"repeats must be at least 1: {repeats}")
    if timeout_s is not None and not 0 < timeout_s < float("inf"):
        raise ValueError(f"the timeout must be a positive number of seconds: {timeout_s}")
    out = settings
    if shape is not None:
        out = replace(out, matmul_shape=shape)
    if copy_bytes is not None:
        out = replace(out, copy_bytes=copy_bytes)
    if repeats is not None:
        out = replace(out, repeats=repeats)
    if timeout_s is not None:
        out = replace(
            out,
            matmul_policy=_scaled(out.matmul_policy, timeout_s),
            copy_policy=_scaled(out.copy_policy, timeout_s),
        )
    return out


def blessed_sizes(settings: ProbeSettings, recorded: dict[str, Any]) -> ProbeSettings:
    """The settings with the sizes and timing a health run recorded (run.json's
    health_settings), so that a check compares like with like with a baseline blessed from
    it. The allreduce keeps this check's own size: every rank must agree on it. ValueError
    if the record is not one."""
    try:
        shape = tuple(int(d) for d in recorded["matmul_shape"])
        copy = recorded["copy_bytes"]
        return replace(
            settings,
            matmul_shape=shape,  # type: ignore[arg-type]
            copy_bytes=int(copy) if copy is not None else None,
            matmul_policy=Policy(**recorded["matmul_policy"]),
            copy_policy=Policy(**recorded["copy_policy"]),
            repeats=int(recorded["repeats"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"health_settings unreadable ({type(exc).__name__}: {exc})") from None


def matmul_case(backend: Backend, settings: ProbeSettings) -> Case:
    """The health matmul; fp16 on a GPU without bf16 (before Ampere)."""
    from kernels import matmul

    m, n, k = settings.matmul_shape
    case = matmul.make_case({"m": m, "n": n, "k": k}, settings.dtype, backend.label)
    if settings.dtype == "bf16" and matmul.unsupported_reason(case, backend.facts()):
        case = matmul.make_case({"m": m, "n": n, "k": k}, "fp16", backend.label)
    return case


class CopyKernel:
    """kernels.membw's copy in the Kernel protocol, so run_case checks and times it."""

    NAME = "memcopy"
    DTYPES = ("fp32",)

    def make_case(self, nbytes: int, device: str) -> Case:
        from kernels.allreduce import format_size

        params = {"buffer_bytes": nbytes, "shape_label": f"{format_size(nbytes)} copy", "seed": 0}
        return Case(kernel=self.NAME, params=params, dtype="fp32", device=device)

    def unsupported_reason(self, case: Case, facts: DeviceFacts) -> str | None:
        return None

    def memory_bytes(self, case: Case) -> int:
        return 2 * case.params["buffer_bytes"]

    def math_mode(self, case: Case) -> str:
        return "fp32"

    @contextlib.contextmanager
    def precision(self, case: Case) -> Iterator[None]:
        yield

    def prepare(self, case: Case, device: Any) -> Prepared:
        from kernels import membw

        prepared = membw.prepare("copy", case.params["buffer_bytes"], device)
        details = {"convention": membw.CONVENTION["copy"]}
        return Prepared(run=prepared.run, check=prepared.check, details=details)

    def ops(self, case: Case) -> None:
        return None

    def ops_convention(self, case: Case) -> str:
        return "rated by bandwidth: bytes = 2 x buffer (read the source, write the copy)"

    def bytes_moved(self, case: Case) -> int:
        return 2 * case.params["buffer_bytes"]


def copy_bytes(backend: Backend, settings: ProbeSettings) -> int:
    if settings.copy_bytes is not None:
        return settings.copy_bytes
    from bench.commands.ceiling.measure import buffer_bytes
    from bench.commands.ceiling.presets import get_preset

    size, _, _ = buffer_bytes(backend, get_preset(backend.kind, "quick"))
    return size


def digest(tensor: Any, flip_bit: bool = False) -> str:
    """sha256 of a tensor's bytes (copied to the host, so it also waits for the device).

    flip_bit flips the lowest bit of the first byte first: the test seam that plays a
    silent data corruption on one rank.
    """
    import torch

    data = tensor.detach().contiguous().reshape(-1).view(torch.uint8).cpu().numpy()
    if flip_bit:
        data = data.copy()
        data[0] ^= 1
    return hashlib.sha256(data).hexdigest()


def library_versions(facts: DeviceFacts, driver: str | None) -> dict[str, Any]:
    """What must be identical for two devices' canary bytes to be comparable: cuBLAS picks
    its kernels by library version, architecture and SM count; a CPU BLAS by thread count."""
    import torch

    from bench.devices.environment import CUBLAS_DISTRIBUTIONS

    cublas = None
    for dist in CUBLAS_DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            cublas = importlib.metadata.version(dist)
            break
    identity = facts.identity
    out: dict[str, Any] = {
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "cublas": cublas,
        "driver": driver,
    }
    if isinstance(identity, GpuIdentity):
        out.update(
            device=identity.name,
            compute_capability=identity.compute_capability,
            sm_count=identity.sm_count,
        )
    else:
        out.update(device=identity.model, threads=torch.get_num_threads())
    return out


@dataclass
class Canary:
    """The canary's two digests (cold, then hot) and what it ran."""

    first_sha256: str | None = None
    sha256: str | None = None
    reason: str | None = None  # why there is no digest

    def as_dict(self) -> dict[str, Any]:
        return {"first_sha256": self.first_sha256, "sha256": self.sha256, "reason": self.reason}


@dataclass
class Measured:
    """One device's measurements: the cases, the canary, and the rows judged locally."""

    outcomes: list[CaseOutcome] = field(default_factory=list)
    canary: Canary = field(default_factory=Canary)
    rows: list[Check] = field(default_factory=list)


def _no_peak(mode: str) -> Peak:
    return Peak(None, None, "a copy is rated in bytes/s, not against a compute peak", None)


def measure_device(
    backend: Backend,
    settings: ProbeSettings,
    read_load: Callable[[], None] | None = None,
    flip_bit: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> Measured:
    """Matmul (with its known-answer check), canary and copy on this device, each timed in
    `settings.repeats` short repeats, matmul and copy taking turns.

    read_load, when given, is called while a burst of matmul calls runs on the device. A
    device error is recorded as a failed case and a FAIL row, never raised.
    """
    from kernels import matmul

    out = Measured()
    label = backend.label
    facts = backend.facts()
    case = matmul_case(backend, settings)
    kernel = CopyKernel()
    copy_case = kernel.make_case(copy_bytes(backend, settings), label)

    def peak_for(mode: str) -> Peak:
        return resolve_peak(facts.identity, mode)

    def time_matmul() -> CaseOutcome:
        policy = settings.matmul_policy
        return run_case(
            case,
            "matmul",
            matmul,
            CaseContext(
                backend=backend, power=NO_ENERGY, policy=policy, peak_for=peak_for, clock=clock
            ),
        )

    def time_copy() -> CaseOutcome:
        policy = settings.copy_policy
        copied = run_case(
            copy_case,
            "memcopy",
            kernel,
            CaseContext(
                backend=backend, power=NO_ENERGY, policy=policy, peak_for=_no_peak, clock=clock
            ),
        )
        result = copied.result
        if result.identity.status == "ok" and result.timing.time_median_s:
            algbw = result.work.bytes / result.timing.time_median_s
            return replace(copied, result=result.updated(algbw_bytes_per_s=algbw))
        return copied

    matmuls, copies = [time_matmul()], []
    first = matmuls[0].result
    if first.identity.status == "ok":
        per_call = first.timing.time_median_s or 0.0
        out.canary = _canary(backend, case, per_call, settings.burst_s, read_load, flip_bit)
    else:
        out.canary = Canary(reason=f"the matmul did not run: {first.identity.reason}")
    copies.append(time_copy())
    for _ in range(settings.repeats - 1):
        if matmuls[-1].result.identity.status == "ok":
            matmuls.append(time_matmul())
        if copies[-1].result.identity.status == "ok":
            copies.append(time_copy())
    matmul_outcome = median_outcome(matmuls)
    out.outcomes += [matmul_outcome, median_outcome(copies)]
    out.rows.append(_known_answer(label, matmul_outcome))
    out.rows.append(_repeat_row(label, out.canary))
    return out


def median_outcome(outcomes: list[CaseOutcome]) -> CaseOutcome:
    """The repeat that stands for them all, carrying every repeat's time and pressure.

    A repeat that did not run ok stands for all (the case failed). Otherwise the one at the
    median rate of the quiet repeats (bench.commands.health.noise; the lower median of an even
    count), so that its samples and summary agree with the reading. Its wall time becomes
    that of all repeats.
    """
    bad = next((o for o in outcomes if o.result.identity.status != "ok"), None)
    if bad is not None:
        return bad
    timed = [
        {
            "time_median_s": o.result.timing.time_median_s,
            "cpu_pressure": o.result.timing.cpu_pressure,
        }
        for o in outcomes
    ]
    quiet = [o for o in outcomes if not Repeat(1.0, o.result.timing.cpu_pressure).busy]
    pool = quiet if 2 * len(quiet) > len(outcomes) else outcomes
    ranked = sorted(pool, key=lambda o: o.result.timing.time_median_s or 0.0, reverse=True)
    chosen = ranked[(len(ranked) - 1) // 2]
    duration_s = sum(o.result.identity.duration_s or 0.0 for o in outcomes)
    return replace(chosen, result=chosen.result.updated(repeats=timed, duration_s=duration_s))


def _canary(
    backend: Backend,
    case: Case,
    per_call_s: float,
    burst_s: float,
    read_load: Callable[[], None] | None,
    flip_bit: bool,
) -> Canary:
    """Digest of the matmul on a cold device, then after a burst (hot)."""
    from kernels import matmul

    try:
        with matmul.precision(case):
            prepared = matmul.prepare(case, backend.torch_device())
            first = digest(prepared.run(), flip_bit)
            if read_load is not None:
                for _ in range(max(1, int(burst_s / max(per_call_s, 1e-6)))):
                    prepared.run()  # queued: the device is busy while NVML is read
                read_load()
                backend.synchronize()
            return Canary(first, digest(prepared.run(), flip_bit))
    except (RuntimeError, MemoryError) as exc:
        return Canary(reason=f"canary failed: {first_line(exc)}")


def _known_answer(device: str, outcome: CaseOutcome) -> Check:
    """The matmul's check against an fp64 product of the same inputs."""
    result = outcome.result
    name = "matmul known answer"
    check = result.work.correctness or {}
    tolerance = check.get("tolerance")
    expected = f"error <= {tolerance:.0e} vs fp64" if tolerance is not None else "matches fp64"
    if result.identity.status == "skipped":
        return Check(device, name, None, expected, NA, str(result.identity.reason))
    if result.identity.status != "ok":
        return Check(device, name, check.get("error"), expected, FAIL, str(result.identity.reason))
    return Check(device, name, check.get("error"), expected, PASS, str(check.get("metric")))


def _repeat_row(device: str, canary: Canary) -> Check:
    name, expected = "canary repeat", "identical bytes cold and hot"
    if canary.sha256 is None:
        return Check(device, name, None, expected, NA, str(canary.reason))
    if canary.sha256 != canary.first_sha256:
        reason = "the same matmul on the same inputs gave other bytes once the device was hot"
        return Check(device, name, canary.sha256[:16], expected, FAIL, reason)
    return Check(device, name, canary.sha256[:16], expected, PASS, "bit-identical cold and hot")
