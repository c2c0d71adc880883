"""The torch side of the ceilings: one matmul shape the MAMF way, the warm-up, memory.

Each shape is timed by the project's own engine (bench.measuring.timing.measure) in cold mode: the
last-level cache is flushed and the output re-randomised before every call, both outside
the recorded interval, one pair of marks per call. The first shape of each dtype is checked
against fp64 before it is timed and the winning shape again at the end, so a ceiling is
never a rate of wrong results; the shapes in between are not checked, which keeps the
search's budget for measuring.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from bench.commands.ceiling.presets import Preset
from bench.devices.base import Backend, GpuIdentity, Unsupported
from bench.measuring.timing import Clock, Policy, measure
from bench.results.ceiling_model import Bandwidth, MemoryCeiling, Shape, ShapeStats, shape_label


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class WrongResult(Exception):
    """A shape computed a wrong result: this dtype gets no ceiling."""


def _case(backend: Backend, dtype: str, shape: Shape, seed: int = 0) -> Any:
    from kernels import matmul

    m, n, k = shape
    return matmul.make_case({"m": m, "n": n, "k": k}, dtype, backend.label, "randn", seed)


def unsupported_dtype(backend: Backend, dtype: str, shape: Shape) -> str | None:
    """Why this device cannot run dtype at all (checked on a typical lattice shape)."""
    from kernels import matmul

    return matmul.unsupported_reason(_case(backend, dtype, shape), backend.facts())


class MatmulProbe:
    """`shape -> ShapeStats` for one dtype on one backend, as the search needs it."""

    def __init__(
        self, backend: Backend, dtype: str, policy: Policy, clock: Clock = time.perf_counter
    ) -> None:
        if policy.mode != "cold":
            raise ValueError("the ceiling times every shape cold")
        self.backend, self.dtype, self.policy, self.clock = backend, dtype, policy, clock
        self.checked = False

    def _prepared(self, shape: Shape) -> tuple[Any, Any]:
        from kernels import matmul

        case = _case(self.backend, self.dtype, shape)
        reason = matmul.unsupported_reason(case, self.backend.facts())
        need = matmul.memory_bytes(case) + matmul.refresh_bytes(case)
        free, source = self.backend.free_memory_bytes()
        if reason is None and free is not None and need > free:
            reason = f"needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free ({source})"
        if reason is not None:
            raise Unsupported(reason)
        return case, matmul

    def check(self, shape: Shape) -> dict[str, Any]:
        """Correctness of shape against fp64; WrongResult if it fails."""
        case, matmul = self._prepared(shape)
        with _device_errors(), matmul.precision(case):
            verdict = matmul.prepare(case, self.backend.torch_device()).check()
            self.backend.synchronize()
        if not verdict.ok:
            raise WrongResult(
                f"wrong result at {shape_label(shape)}: {verdict.metric} = {verdict.error:.3g} "
                f"> {verdict.tolerance:.3g}"
            )
        return {**verdict.as_dict(), "shape": shape_label(shape)}

    def __call__(self, shape: Shape) -> ShapeStats:
        if not self.checked:
            self.check(shape)
            self.checked = True
        case, matmul = self._prepared(shape)
        with _device_errors(), matmul.precision(case):
            prepared = matmul.prepare(case, self.backend.torch_device())
            timings = measure(
                prepared.run, self.backend, self.policy, self.clock, before_each=prepared.refresh
            )
        s, ops = timings.summary, matmul.ops(case)
        return ShapeStats(
            shape=shape,
            mean_ops_per_s=ops / s.mean_s,
            median_ops_per_s=ops / s.median_s,
            max_ops_per_s=ops / s.min_s,
            n_samples=s.n,
            rel_noise=s.rel_noise,
            stop_reason=timings.stop_reason,
        )


@contextlib.contextmanager
def _device_errors() -> Iterator[None]:
    """Out-of-memory and operators the device lacks become Unsupported (the shape is
    skipped, as the runner skips such a case); anything else propagates."""
    try:
        yield
    except (RuntimeError, NotImplementedError, MemoryError) as exc:
        from bench.execution.outcome import classify

        status, reason = classify(exc)
        if status == "skipped":
            raise Unsupported(reason) from exc
        raise


def thermal_warmup(
    backend: Backend,
    dtype: str,
    shape: Shape,
    seconds: float,
    clock: Clock = time.perf_counter,
    block_s: float = 0.1,
) -> dict[str, Any]:
    """Run shape back to back for `seconds` so the search starts on a hot, settled device.

    MAMF finder does 30 s on a GPU: a cold accelerator scores higher than the same shape run
    after a dozen others, so without it the first shapes would be flattered.
    """
    from kernels import matmul

    record: dict[str, Any] = {"seconds": 0.0, "dtype": dtype, "shape": shape_label(shape)}
    if seconds <= 0:
        return {**record, "calls": 0, "note": "no warm-up (--warmup-s 0)"}
    case = _case(backend, dtype, shape)
    with matmul.precision(case):
        run = matmul.prepare(case, backend.torch_device()).run
        start = clock()
        run()
        backend.synchronize()
        per_call = max(clock() - start, 1e-9)
        calls, block_calls = 1, max(1, int(block_s / per_call))
        while clock() - start < seconds:
            t0 = clock()
            for _ in range(block_calls):
                run()
            backend.synchronize()
            per_call = max((clock() - t0) / block_calls, 1e-9)
            calls += block_calls
    ops_per_s = matmul.ops(case) / per_call
    return {**record, "seconds": clock() - start, "calls": calls, "last_ops_per_s": ops_per_s}


def _cache_size(backend: Backend) -> tuple[int | None, str]:
    """The last-level cache the buffers must dwarf: the GPU's L2 or the CPU's LLC."""
    facts = backend.facts()
    if isinstance(facts.identity, GpuIdentity):
        l2 = facts.extra.get("l2_bytes")
        return (int(l2), "device L2 size") if l2 else (None, "the device reports no L2 size")
    from bench.devices.cpu import last_level_cache_bytes

    llc = last_level_cache_bytes()
    return (llc, "sysfs LLC size of cpu0") if llc else (None, "sysfs gives no LLC size")


def spec_bandwidth(backend: Backend) -> tuple[float | None, str]:
    """The datasheet memory bandwidth of this device, or (None, why there is none)."""
    from bench.peaks.table import row_for

    identity = backend.facts().identity
    if not isinstance(identity, GpuIdentity):
        return None, "the peak table has no memory bandwidth for CPUs"
    row, why = row_for(identity)
    if row is None:
        return None, why
    if row.mem_bytes_per_s is None:
        return None, f"no memory bandwidth for {identity.name!r} in the peak table"
    if row.sm_count is not None and 0 < identity.sm_count < row.sm_count:
        return None, f"a partition of {row.sku}: the table has the full part's bandwidth only"
    return row.mem_bytes_per_s, f"{row.sku} datasheet"


def buffer_bytes(backend: Backend, preset: Preset) -> tuple[int, int | None, str]:
    """(buffer size, cache size, cache source): many caches large, and fitting in memory."""
    cache, source = _cache_size(backend)
    size = max(preset.memory_cache_multiple * (cache or 0), preset.memory_floor_bytes)
    free, _ = backend.free_memory_bytes()
    if free is not None:
        size = min(size, free // 4)  # the copy holds two buffers; leave room for the rest
    return size - size % 4096, cache, source


def measure_memory(
    backend: Backend,
    preset: Preset,
    clock: Clock = time.perf_counter,
    on_progress: Callable[[str], None] | None = None,
) -> MemoryCeiling:
    """Copy and read-only reduction bandwidth over buffers far larger than the cache."""
    from kernels import membw

    size, cache, cache_source = buffer_bytes(backend, preset)
    spec, spec_detail = spec_bandwidth(backend)
    kernels: dict[str, Bandwidth] = {}
    for name in membw.KERNELS:
        if on_progress is not None:
            on_progress(f"memory: {name} over {size / 2**20:.0f} MiB")
        prepared = membw.prepare(name, size, backend.torch_device())
        verdict = prepared.check()
        if not verdict.ok:
            raise WrongResult(f"memory {name}: {verdict.metric} = {verdict.error:.3g}")
        timings = measure(prepared.run, backend, preset.memory, clock)
        del prepared
        moved, s = membw.bytes_per_call(name, size), timings.summary
        rate = moved / s.median_s
        kernels[name] = Bandwidth(
            kernel=name,
            bytes_per_s=rate,
            max_bytes_per_s=moved / s.min_s,
            buffer_bytes=size,
            bytes_per_call=moved,
            convention=membw.CONVENTION[name],
            n_samples=s.n,
            rel_noise=s.rel_noise,
            frac_of_spec=rate / spec if spec else None,
        )
    return MemoryCeiling(kernels, spec, spec_detail, cache, cache_source, now_utc())
