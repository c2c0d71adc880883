"""RunPlan: what `flopwatt run` was asked to do, validated before any device is touched.

Every malformed input (unknown kernel, suite, dtype or axis value; a bad shape; a flag that
belongs to a kernel the run does not select; a bad --peak) raises UsageError here, so that a
run either starts with a valid plan or does not start at all.

The kernel-specific choices are one mapping, `axes = {kernel: {axis: values}}`, holding the
raw items of each axis the kernel declares (kernels.spec): matmul's `shape` (--shape),
attention's `shape` (--attn), `mask`, `pass` and `backend`, and so on. Giving an axis without
--kernel selects its kernel; giving it with a --kernel that excludes its kernel is an error
rather than silently ignored. A kernel's errors speak of values; this module adds the flag.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bench.errors import UsageError
from bench.execution.suites import KernelPlan, Suite, get_suite
from bench.measuring.timing import MODES, Policy
from kernels import check_kernel_name, get_spec, kernel_dtypes, kernel_names
from kernels.case import Case
from kernels.spec import Axis, AxisError, KernelSpec, check_init

Axes = dict[str, dict[str, tuple[str, ...]]]  # {kernel: {axis: raw items}}


def read(axis: Axis, text: str) -> Any:
    """One item of an axis, with the flag prefixed to the kernel's error."""
    try:
        return axis.read(text)
    except AxisError as exc:
        raise UsageError(f"{axis.flag}: {exc}") from None


def split_list(text: str | None) -> tuple[str, ...]:
    """Items of a comma-separated flag value; empty items are an error, not ignored."""
    if text is None:
        return ()
    items = tuple(item.strip() for item in text.split(","))
    if any(not item for item in items):
        raise UsageError(f"empty item in list {text!r}")
    return items


def split_shapes(values: Sequence[str] | None, flag: str) -> tuple[str, ...]:
    """Items of a repeatable flag whose items contain commas: ';' separates items.

    `--attn "1,8,8,512,64;2,8,2,1024,128"` and `--attn 1,8,8,512,64 --attn 2,8,2,1024,128`
    mean the same; an empty item (a stray ';') is an error, as in split_list.
    """
    items: list[str] = []
    for value in values or ():
        parts = [part.strip() for part in value.split(";")]
        if any(not part for part in parts):
            raise UsageError(f"empty item in {flag} {value!r} (';' separates shapes)")
        items.extend(parts)
    return tuple(items)


@dataclass(frozen=True)
class PolicyOverrides:
    """Timing options the user set; None keeps the device kind's default."""

    mode: str = "auto"
    timeout_s: float | None = None
    max_noise: float | None = None
    min_samples: int | None = None
    min_time_s: float | None = None
    warmup_s: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"--timing {self.mode!r} is not one of {', '.join(MODES)}")
        for name in ("timeout_s", "max_noise", "min_time_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.warmup_s is not None and self.warmup_s < 0:
            raise UsageError(f"--warmup-s must not be negative, got {self.warmup_s}")
        if self.min_samples is not None and self.min_samples < 1:
            raise UsageError(f"--min-samples must be at least 1, got {self.min_samples}")


def default_policy(kind: str) -> Policy:
    """A GPU warms up for at least a second (clocks and temperature settle); a CPU needs less."""
    if kind == "cpu":
        return Policy(warmup_min_s=0.2, warmup_max_s=3.0)
    return Policy(warmup_min_s=1.0, warmup_max_s=10.0)


@dataclass(frozen=True)
class RunPlan:
    suite: str = "quick"
    kernels: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    axes: Axes = field(default_factory=dict, hash=False)  # e.g. {"matmul": {"shape": ("8x8x8",)}}
    init: str = "randn"
    seed: int = 0
    overrides: PolicyOverrides = field(default_factory=PolicyOverrides)
    peak_overrides: dict[str, float] = field(default_factory=dict, hash=False)
    world_size: int = 1  # ranks in the job: the quick suite adds its distributed part above 1

    def given(self) -> Axes:
        """The axes the user gave values for, per kernel."""
        given = {k: {a: v for a, v in axes.items() if v} for k, axes in self.axes.items()}
        return {k: axes for k, axes in given.items() if axes}

    def selected_kernels(self) -> tuple[str, ...]:
        """--kernel, else the kernels whose own axes were given; () means the whole suite."""
        if self.kernels:
            return self.kernels
        implied = set(self.given())
        return tuple(name for name in kernel_names() if name in implied)

    def validate(self) -> None:
        """Everything that can be checked without a device; UsageError on the first problem."""
        for name in self.kernels:
            check_kernel_name(name)
        get_suite(self.suite, "cpu")
        try:
            check_init(self.init)
        except AxisError as exc:
            raise UsageError(f"--init: {exc}") from None
        for kernel, axes in self.given().items():
            for name in axes:
                try:
                    get_spec(kernel).axis(name)
                except AxisError as exc:
                    raise UsageError(str(exc)) from None
        selected = self.selected_kernels()
        self._validate_axes_match_kernels(selected)
        for kernel, axes in self.given().items():
            for name, items in axes.items():
                for item in items:
                    read(get_spec(kernel).axis(name), item)
        known = {d for k in selected or kernel_names() for d in kernel_dtypes(k)}
        for dtype in self.dtypes:
            if dtype not in known:
                raise UsageError(f"unknown dtype {dtype!r}; choose from {', '.join(sorted(known))}")
        for kind in ("cpu", "cuda"):
            self.cases(kind, kind)  # "nothing to run" is bad input too

    def _validate_axes_match_kernels(self, selected: tuple[str, ...]) -> None:
        for kernel, axes in self.given().items():
            if kernel in selected:
                continue
            spec = get_spec(kernel)
            axis = spec.axis(next(iter(axes)))
            if axis is spec.shape:
                others = [
                    f"{k} takes {get_spec(k).shape.flag} {get_spec(k).shape.metavar}"
                    for k in selected
                ]
                raise UsageError(
                    f"{axis.flag} gives {kernel} shapes ({axis.metavar}), but --kernel selects "
                    f"{', '.join(selected)}; {'; '.join(others)}"
                )
            raise UsageError(
                f"{axis.flag} applies to {kernel}, which --kernel {','.join(selected)} "
                "does not select"
            )

    def suite_for(self, kind: str) -> Suite:
        return get_suite(self.suite, kind, self.world_size)

    def policy(self, kind: str) -> Policy:
        base, o, suite = default_policy(kind), self.overrides, self.suite_for(kind)
        timeout = o.timeout_s if o.timeout_s is not None else suite.timeout_s
        warm_min = o.warmup_s if o.warmup_s is not None else base.warmup_min_s
        return replace(
            base,
            mode=o.mode if o.mode != "auto" else suite.timing,  # `full` times cold
            timeout_s=timeout,
            max_noise=o.max_noise if o.max_noise is not None else base.max_noise,
            min_samples=o.min_samples if o.min_samples is not None else base.min_samples,
            min_time_s=o.min_time_s if o.min_time_s is not None else base.min_time_s,
            warmup_min_s=min(warm_min, timeout / 2),
            warmup_max_s=max(min(base.warmup_max_s, timeout / 2), min(warm_min, timeout / 2)),
        )

    def option_sets(self, plan: KernelPlan, spec: KernelSpec) -> list[dict[str, str]]:
        """The plan's option values with every option axis the user gave replaced by its values."""
        base = dict(plan.options)
        given = {
            a: tuple(read(spec.axis(a), v) for v in values)
            for a, values in self.given().get(spec.name, {}).items()
            if a != spec.shape.name
        }
        combos = itertools.product(*given.values())
        return [{**base, **dict(zip(given, combo, strict=True))} for combo in combos]

    def _plans(self, kind: str, selected: tuple[str, ...]) -> list[KernelPlan]:
        """The suite's plans, plus one for a selected kernel the suite has none for, with the
        user's shapes (e.g. --bytes in the one-process quick suite) or the kernel's default."""
        plans = list(self.suite_for(kind).plans)
        covered = {p.kernel for p in plans}
        for kernel in selected:
            spec = get_spec(kernel)
            shapes = self.given().get(kernel, {}).get(spec.shape.name, ())
            if not shapes and spec.shape.default is not None:
                shapes = (spec.shape.default,)
            if kernel not in covered and shapes:
                plans.append(KernelPlan(kernel, (spec.dtypes[0],), shapes))
        return plans

    def cases(self, kind: str, device: str) -> list[Case]:
        """The cases to run: the suite's recipe with any axis the user replaced."""
        selected = self.selected_kernels()
        cases: list[Case] = []
        seen: set[tuple[Any, ...]] = set()
        for plan in self._plans(kind, selected):
            if selected and plan.kernel not in selected:
                continue
            spec = get_spec(plan.kernel)
            given = self.given().get(plan.kernel, {}).get(spec.shape.name, ())
            shapes = [read(spec.shape, s) for s in given or plan.shapes]
            for options in self.option_sets(plan, spec):
                for dtype in self.dtypes or plan.dtypes:
                    if dtype not in spec.dtypes:
                        continue
                    for shape in shapes:
                        key = (plan.kernel, dtype, *sorted(shape.items()), *sorted(options.items()))
                        if key in seen:
                            continue
                        seen.add(key)
                        try:
                            case = spec.case(shape, dtype, device, self.init, self.seed, options)
                        except AxisError as exc:
                            raise UsageError(str(exc)) from None
                        cases.append(case)
        if not cases:
            raise UsageError(
                f"nothing to run: suite {self.suite!r} has no case for kernels "
                f"{', '.join(selected) or 'any'} and dtypes {', '.join(self.dtypes) or 'any'}"
            )
        return cases
