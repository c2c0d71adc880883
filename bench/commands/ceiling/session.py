"""The ceilings one `flopwatt run` divides by: measured first (`--suite full`) or stored.

In `full` the ceilings are measured in the same run, right before the cases, for every math
mode the cases use, and the search starts from the run's own matmul shapes: each case shape
is then also a ceiling shape, timed the same way, so a case can only pass its ceiling by the
noise between two medians of the same thing. Other suites read the stored ceiling.json of
this SKU, and never a file that fails its checks (bench.results.blessed.ceiling says which).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.devices.base import Backend
from bench.results.blessed.ceiling import ceiling_path, read_ceiling, to_dict
from bench.results.ceiling_model import Ceiling, MeasuredPeak, Shape
from kernels.matmul_spec import DTYPES as MATMUL_DTYPES

MATMUL_MODES = MATMUL_DTYPES  # a ceiling exists for each math mode matmul runs


@dataclass
class RunCeilings:
    """The ceiling a run uses (or why it has none), and how to look up one math mode."""

    ceiling: Ceiling | None
    source: str  # "this run" | "stored"
    path: Path | None
    note: str  # why there is no ceiling, when there is none
    warnings: list[str] = field(default_factory=list)

    def lookup(self, math_mode: str) -> MeasuredPeak:
        if self.ceiling is None:
            return MeasuredPeak(None, None, self.note)
        where = "this run" if self.source == "this run" else str(self.path)
        return self.ceiling.lookup(math_mode, self.source, where)

    def meta(self) -> dict[str, Any]:
        """For run.json: everything measured in this run; for a stored file, a summary."""
        data: dict[str, Any] = {
            "source": self.source if self.ceiling is not None else None,
            "path": str(self.path) if self.path is not None else None,
            "note": self.note or None,
            "warnings": self.warnings,
        }
        if self.ceiling is None:
            return data
        if self.source == "this run":
            full = to_dict(self.ceiling)
            full.pop("environment", None)  # the run records its own
            return {**data, **full}
        rates = {
            dtype: {
                "ops_per_s": entry.ops_per_s,
                "shape": entry.best.label,
                "measured_at": entry.measured_at,
            }
            for dtype, entry in self.ceiling.matmul.items()
        }
        memory = self.ceiling.memory
        roof = memory.roof_bytes_per_s if memory is not None else None
        return {**data, "matmul": rates, "memory_roof_bytes_per_s": roof}


def load_for_run(backend: Backend, baselines: Path) -> RunCeilings:
    """The stored ceiling of this device's SKU, if one may be used."""
    from bench.results.blessed.paths import sku_key

    sku = sku_key(backend.facts().identity)
    path = ceiling_path(baselines, sku)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ceiling, why = read_ceiling(path, sku)
    return RunCeilings(ceiling, "stored", path, why, [str(w.message) for w in caught])


def _plan(cases: Sequence[Any]) -> tuple[tuple[str, ...], dict[str, tuple[Shape, ...]]]:
    """The math modes the cases run in that matmul can measure, and matmul shapes per mode."""
    from kernels import get_kernel

    modes: dict[str, None] = {}
    seeds: dict[str, dict[Shape, None]] = {}
    for case in cases:
        kernel = get_kernel(case.kernel)
        mode = kernel.math_mode(case) if hasattr(kernel, "math_mode") else case.dtype
        if mode not in MATMUL_MODES:
            continue
        modes[mode] = None
        if case.kernel == "matmul":
            shape = (case.params["m"], case.params["n"], case.params["k"])
            seeds.setdefault(mode, {})[shape] = None
    return tuple(modes), {mode: tuple(shapes) for mode, shapes in seeds.items()}


@dataclass(frozen=True)
class InRunSearch:
    """How a run that measures its own ceilings searches (`run --ceiling-*`); None: the quick
    preset's value."""

    budget_s: float | None = None
    max_dim: int | None = None
    warmup_s: float | None = None
    memory: bool = True  # the memory ceiling too (--ceiling-no-memory: matmul only)

    def preset(self, kind: str) -> Any:
        """The quick preset with these limits; ValueError names a bad --ceiling-max-dim."""
        from bench.commands.ceiling.presets import capped, get_preset

        preset = get_preset(kind, "quick", self.budget_s)
        if self.max_dim is not None:
            try:
                preset = capped(preset, self.max_dim)
            except ValueError as exc:
                raise ValueError(str(exc).replace("--max-dim", "--ceiling-max-dim")) from None
        return preset


def measure_for_run(
    backend: Backend,
    cases: Sequence[Any],
    environment: dict[str, Any],
    command: str,
    progress: tuple[Callable[[str], None], Callable[[dict[str, Any]], None]],
    search: InRunSearch,
) -> RunCeilings:
    """Measure the ceilings the cases need (quick search, seeded with their shapes).

    What was measured is saved with save_meta before a Ctrl-C is passed on, so an
    interrupted run still records the ceilings found so far.
    """
    from bench.commands.ceiling.command import Request, measure_ceiling

    on_progress, save_meta = progress
    modes, seeds = _plan(cases)
    preset = search.preset(backend.kind)
    warmup = preset.warmup_s if search.warmup_s is None else search.warmup_s
    request = Request(modes, preset, warmup, memory=search.memory, seeds=seeds)
    outcome = measure_ceiling(backend, request, environment, command, on_progress=on_progress)
    note = "" if outcome.ceiling.matmul else "no math mode of this run could be measured"
    found = RunCeilings(outcome.ceiling, "this run", None, note, list(outcome.failures))
    save_meta(found.meta())
    if outcome.interrupted:
        raise KeyboardInterrupt
    return found


def ceilings_for_run(
    measure: bool,
    backend: Backend,
    cases: Sequence[Any],
    baselines: Path | None,
    meta: dict[str, Any],
    save_meta: Callable[[dict[str, Any]], None],
    on_progress: Callable[[str], None],
    warn: Callable[[str], None],
    search: InRunSearch | None = None,
) -> RunCeilings:
    """What the run session calls: measure the ceilings now (`full`), else load the stored ones;
    record them in run.json (save_meta) and pass on any warning about an ignored file."""
    from bench.results.blessed.ceiling import DEFAULT_BASELINES

    if measure:
        found = measure_for_run(
            backend,
            cases,
            meta.get("environment") or {},
            meta.get("command", ""),
            (on_progress, save_meta),
            search or InRunSearch(),
        )
    else:
        found = load_for_run(backend, baselines or DEFAULT_BASELINES)
        save_meta(found.meta())
    for line in found.warnings:
        warn(line)
    return found
