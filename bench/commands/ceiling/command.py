"""`flopwatt ceiling`: measure this device's ceilings, store them, print them.

The order is MAMF finder's: a thermal warm-up, then the shape search of each dtype, then
(beyond MAMF) the memory-bandwidth ceiling. Ctrl-C or SIGTERM at any point keeps what was
measured: the best shape found so far is written, flagged `interrupted`, and the command
exits 130. A dtype the device cannot run is skipped with the reason; a wrong result at
the first or the winning shape gives that dtype no ceiling and exits 1.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.commands.ceiling.presets import Preset
from bench.commands.ceiling.search import SearchResult, search
from bench.devices.base import Backend, GpuIdentity
from bench.errors import UsageError, check_writable
from bench.results.ceiling_model import Ceiling, DtypeCeiling, Shape, ShapeStats
from bench.versions import METHOD_VERSION
from kernels.matmul_spec import DTYPES as MATMUL_DTYPES

# MAMF finder's default dtype on a GPU; a CPU's native one.
DEFAULT_DTYPES = {"cuda": ("bf16",), "cpu": ("fp32",)}
EXIT_INTERRUPTED = 130


def parse_dtypes(text: str | None) -> tuple[str, ...]:
    """Dtypes from --dtype; UsageError for an unknown one (before any device is touched)."""
    if text is None:
        return ()
    items = tuple(item.strip() for item in text.split(","))
    for item in items:
        if item not in MATMUL_DTYPES:
            raise UsageError(f"unknown dtype {item!r}; choose from {', '.join(MATMUL_DTYPES)}")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Request:
    """What to measure: dtypes, how deeply, the warm-up, memory, and seed shapes per dtype."""

    dtypes: tuple[str, ...]
    preset: Preset
    warmup_s: float
    memory: bool = True
    seeds: dict[str, tuple[Shape, ...]] = field(default_factory=dict)


@dataclass
class Outcome:
    ceiling: Ceiling
    interrupted: bool = False
    failures: list[str] = field(default_factory=list)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _identity_dict(identity: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(identity)
    data.pop("flags", None)  # a CPU's ISA flags: long, and in the environment already
    return data


def new_ceiling(backend: Backend, environment: dict[str, Any], command: str) -> Ceiling:
    """An empty Ceiling for this device, keyed by its SKU."""
    from bench.commands.ceiling.measure import now_utc
    from bench.peaks.table import AmbiguousPeakError, find_row
    from bench.results.blessed.ceiling import software_of
    from bench.results.blessed.paths import sku_key

    identity = backend.facts().identity
    table_sku = None
    if isinstance(identity, GpuIdentity):
        try:
            row = find_row(identity.name, identity.compute_capability)
        except AmbiguousPeakError:
            row = None
        table_sku = row.sku if row is not None else None
    return Ceiling(
        sku=sku_key(identity),
        device={"label": backend.label, **_identity_dict(identity)},
        peak_table_sku=table_sku,
        method_version=METHOD_VERSION,
        measured_at=now_utc(),
        command=command,
        environment=environment,
        software=software_of(environment),
    )


def _dtype_ceiling(
    dtype: str,
    result: SearchResult,
    preset: Preset,
    correctness: dict[str, Any] | None,
    peak: Any,
) -> DtypeCeiling:
    from bench.commands.ceiling.measure import now_utc

    best = result.best
    assert best is not None
    by_mean, by_max = result.best_by("mean"), result.best_by("max")
    return DtypeCeiling(
        dtype=dtype,
        best=best,
        best_mean_shape=by_mean.label if by_mean else best.label,
        best_max_shape=by_max.label if by_max else best.label,
        geomean_ops_per_s=result.geomean_ops_per_s or best.median_ops_per_s,
        points=tuple(result.points),
        preset=preset.name,
        budget_s=preset.budget_s,
        search_s=result.elapsed_s,
        stop_reason=result.stop_reason,
        timing_mode="cold",
        measured_at=now_utc(),
        correctness=correctness,
        spec_peak_ops_per_s=peak.ops_per_s,
        spec_peak_source=peak.source,
    )


def measure_ceiling(
    backend: Backend,
    request: Request,
    environment: dict[str, Any],
    command: str,
    *,
    on_progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Outcome:
    """Warm up, search each dtype, measure memory; never raises for Ctrl-C."""
    from bench.commands.ceiling.measure import (
        MatmulProbe,
        WrongResult,
        measure_memory,
        thermal_warmup,
        unsupported_dtype,
    )
    from bench.peaks.lookup import resolve_peak
    from bench.results.render import rate_unit, si

    say = on_progress or (lambda text: None)
    preset = request.preset
    outcome = Outcome(new_ceiling(backend, environment, command))
    ceiling = outcome.ceiling
    runnable = []
    for dtype in request.dtypes:
        reason = unsupported_dtype(backend, dtype, preset.warmup_shape)
        if reason is None:
            runnable.append(dtype)
        else:
            ceiling.skipped[dtype] = reason
    try:
        if runnable and request.warmup_s > 0:
            say(f"thermal warm-up: {runnable[0]} for {request.warmup_s:g} s")
            ceiling.warmup = thermal_warmup(
                backend, runnable[0], preset.warmup_shape, request.warmup_s, clock
            )
        for dtype in runnable:
            probe = MatmulProbe(backend, dtype, preset.point, clock)

            def progress(
                stats: ShapeStats | None, so_far: SearchResult, dtype: str = dtype
            ) -> None:
                best = so_far.best
                if best is not None:
                    say(
                        f"{dtype}: {len(so_far.points)} shapes, best "
                        f"{si(best.median_ops_per_s, rate_unit(dtype))} at {best.label}"
                    )

            say(f"{dtype}: searching")
            try:
                result = search(
                    probe,
                    preset.space,
                    preset.budget_s,
                    seeds=request.seeds.get(dtype, ()),
                    clock=clock,
                    on_point=progress,
                )
            except WrongResult as exc:  # at the first shape, before any was timed
                _fail(outcome, dtype, exc)
                continue
            best = result.best
            if best is None:
                why = "; ".join(sorted(set(result.skipped.values()))[:3])
                ceiling.skipped[dtype] = f"no shape could be measured: {why}"
                if result.interrupted:
                    raise KeyboardInterrupt
                continue
            peak = resolve_peak(backend.facts().identity, dtype)
            entry = _dtype_ceiling(dtype, result, preset, None, peak)
            ceiling.matmul[dtype] = entry  # kept even if Ctrl-C comes during the re-check
            if result.interrupted:
                raise KeyboardInterrupt
            try:
                ceiling.matmul[dtype] = replace(entry, correctness=probe.check(best.shape))
            except WrongResult as exc:
                del ceiling.matmul[dtype]
                _fail(outcome, dtype, exc)
        if request.memory:
            ceiling.memory = measure_memory(backend, preset, clock, say)
    except KeyboardInterrupt:
        outcome.interrupted = True
    except WrongResult as exc:
        outcome.failures.append(str(exc))
    return outcome


def _fail(outcome: Outcome, dtype: str, exc: Exception) -> None:
    outcome.ceiling.skipped[dtype] = f"failed: {exc}"
    outcome.failures.append(f"{dtype}: {exc}")


def run_command(args: Any) -> int:
    """The body of `flopwatt ceiling` (bench.cli parses the flags)."""
    from rich.console import Console
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    from bench.commands.ceiling.presets import capped, get_preset
    from bench.commands.ceiling.render import ceiling_report
    from bench.devices import get_backend, parse_device
    from bench.devices.environment import capture_environment
    from bench.execution.progress import EventProgress
    from bench.execution.session import PROJECT_ROOT
    from bench.results.blessed.ceiling import save_ceiling

    dtypes = parse_dtypes(args.dtype)
    parse_device(args.device)
    check_writable(args.baselines, "--baselines")
    backend = get_backend(args.device, args.threads)
    out = Console() if sys.stdout.isatty() else Console(width=160)
    err = Console(stderr=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        preset = get_preset(backend.kind, "thorough" if args.thorough else "quick", args.budget_s)
        if args.max_dim is not None:
            try:
                preset = capped(preset, args.max_dim)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        warmup = preset.warmup_s if args.warmup_s is None else args.warmup_s
        request = Request(
            dtypes or DEFAULT_DTYPES.get(backend.kind, ("bf16",)),
            preset,
            warmup,
            not args.no_memory,
        )
        environment = capture_environment(backend.facts(), project_root=PROJECT_ROOT)
        command = " ".join(["flopwatt", *sys.argv[1:]])
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with EventProgress(*columns, console=err) as progress:
            task = progress.add_task("ceiling", total=None)
            outcome = measure_ceiling(
                backend,
                request,
                environment,
                command,
                on_progress=lambda text: progress.update(task, description=text),
            )
        ceiling = outcome.ceiling
        path: Path | None = None
        notes: list[str] = []
        if ceiling.matmul or ceiling.memory is not None:
            path, notes = save_ceiling(ceiling, args.baselines)
        if ceiling.matmul and not outcome.interrupted:
            from bench.commands.history.store_commands import record_ceiling

            record_ceiling(getattr(args, "history", None), ceiling)
        out.print(ceiling_report(ceiling, backend.label, request.dtypes, outcome.failures))
        for note in notes:
            err.print(note)
        if path is not None:
            out.print(f"ceiling -> {path}")
        if outcome.interrupted:
            err.print("interrupted: the best found so far is kept")
            return EXIT_INTERRUPTED
        return 1 if outcome.failures else 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        backend.close()
