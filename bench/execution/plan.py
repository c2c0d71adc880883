"""RunPlan: what `flopwatt run` was asked to do, validated before any device is touched.

Every malformed input (unknown kernel, suite, dtype, mask, pass or backend; a bad shape; a
flag that belongs to a kernel the run does not select; a bad --peak) raises UsageError
here, so that a run either starts with a valid plan or does not start at all.

Each kernel takes its shapes from its own flag (matmul --shape MxNxK, attention
--attn B,Hq,Hkv,S,D) and may have further axes of its own (attention: --mask, --pass,
--backend). Giving such a flag without --kernel selects that kernel; giving it with a
--kernel that excludes its kernel is an error rather than silently ignored.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bench.errors import UsageError
from bench.execution.suites import KernelPlan, Suite, get_suite
from bench.measuring.timing import MODES, Policy
from kernels import check_kernel_name, get_kernel, kernel_dtypes, kernel_names
from kernels.case import Case

# The flag that gives each kernel its shapes, with the form its items take.
SHAPE_FLAGS = {
    "matmul": ("--shape", "MxNxK"),
    "attention": ("--attn", "B,Hq,Hkv,S,D"),
    "allreduce": ("--bytes", "SIZE"),
    "scaling": ("--step", "MxNxK/SIZE"),
}
# The kernel each option axis belongs to (the flag is --<axis>).
OPTION_KERNEL = {
    "mask": "attention",
    "pass": "attention",
    "backend": "attention",
    "collective": "allreduce",
    "place": "allreduce",
    "scaling": "scaling",
    "overlap": "scaling",
}


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
    shapes: tuple[str, ...] = ()  # --shape: matmul MxNxK
    init: str = "randn"
    seed: int = 0
    overrides: PolicyOverrides = field(default_factory=PolicyOverrides)
    peak_overrides: dict[str, float] = field(default_factory=dict, hash=False)
    attn_shapes: tuple[str, ...] = ()  # --attn: B,Hq,Hkv,S,D | B,Hq,Hkv,Sq,Skv,D | MODEL:S
    masks: tuple[str, ...] = ()
    passes: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()  # --bytes: collective sizes, e.g. 8,1Mi,1Gi
    collectives: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # --step: scaling's MxNxK/SIZE
    scalings: tuple[str, ...] = ()
    overlaps: tuple[str, ...] = ()
    world_size: int = 1  # ranks in the job: the quick suite adds its distributed part above 1

    def user_shapes(self) -> dict[str, tuple[str, ...]]:
        """Shapes the user gave, per kernel."""
        return {
            "matmul": self.shapes,
            "attention": self.attn_shapes,
            "allreduce": self.sizes,
            "scaling": self.steps,
        }

    def user_options(self) -> dict[str, tuple[str, ...]]:
        """Values the user gave for kernel-specific axes, per axis."""
        return {
            "mask": self.masks,
            "pass": self.passes,
            "backend": self.backends,
            "collective": self.collectives,
            "place": self.places,
            "scaling": self.scalings,
            "overlap": self.overlaps,
        }

    def selected_kernels(self) -> tuple[str, ...]:
        """--kernel, else the kernels whose own flags were given; () means the whole suite."""
        if self.kernels:
            return self.kernels
        implied = {kernel for kernel, items in self.user_shapes().items() if items}
        implied |= {OPTION_KERNEL[axis] for axis, values in self.user_options().items() if values}
        return tuple(name for name in kernel_names() if name in implied)

    def validate(self) -> None:
        """Everything that can be checked without a device; UsageError on the first problem."""
        for name in self.kernels:
            check_kernel_name(name)
        get_suite(self.suite, "cpu")
        selected = self.selected_kernels()
        self._validate_flags_match_kernels(selected)
        self._validate_option_values()
        known = {d for k in selected or kernel_names() for d in kernel_dtypes(k)}
        for dtype in self.dtypes:
            if dtype not in known:
                raise UsageError(f"unknown dtype {dtype!r}; choose from {', '.join(sorted(known))}")
        for kernel, items in self.user_shapes().items():
            for item in items:
                get_kernel(kernel).parse_shape(item)
        for kind in ("cpu", "cuda"):
            self.cases(kind, kind)  # "nothing to run" is bad input too

    def _validate_flags_match_kernels(self, selected: tuple[str, ...]) -> None:
        for kernel, items in self.user_shapes().items():
            if items and kernel not in selected:
                flag, form = SHAPE_FLAGS[kernel]
                others = [
                    f"{k} takes {' '.join(SHAPE_FLAGS[k])}" for k in selected if k in SHAPE_FLAGS
                ]
                raise UsageError(
                    f"{flag} gives {kernel} shapes ({form}), but --kernel selects "
                    f"{', '.join(selected)}; {'; '.join(others)}"
                )
        for axis, values in self.user_options().items():
            owner = OPTION_KERNEL[axis]
            if values and owner not in selected:
                raise UsageError(
                    f"--{axis} applies to {owner}, which --kernel {','.join(selected)} "
                    "does not select"
                )

    def _validate_option_values(self) -> None:
        for axis, values in self.user_options().items():
            if not values:
                continue
            allowed = get_kernel(OPTION_KERNEL[axis]).OPTIONS[axis]
            for value in values:
                if value not in allowed:
                    raise UsageError(f"--{axis} {value!r} is not one of {', '.join(allowed)}")

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

    def option_sets(self, plan: KernelPlan, kernel: Any) -> list[dict[str, str]]:
        """The plan's option values with every axis the user gave replaced by its values."""
        base = dict(plan.options)
        axes = getattr(kernel, "OPTIONS", {})
        given = {a: v for a, v in self.user_options().items() if v and a in axes}
        combos = itertools.product(*given.values())
        return [{**base, **dict(zip(given, combo, strict=True))} for combo in combos]

    def _plans(self, kind: str, selected: tuple[str, ...]) -> list[KernelPlan]:
        """The suite's plans, plus one for a kernel the user selected with its own shapes when
        the suite has none for it (e.g. --bytes in the one-process quick suite)."""
        plans = list(self.suite_for(kind).plans)
        covered = {p.kernel for p in plans}
        for kernel in selected:
            shapes = self.user_shapes().get(kernel, ())
            if kernel not in covered and shapes:
                plans.append(KernelPlan(kernel, (kernel_dtypes(kernel)[0],), shapes))
        return plans

    def cases(self, kind: str, device: str) -> list[Case]:
        """The cases to run: the suite's recipe with any axis the user replaced."""
        selected = self.selected_kernels()
        cases: list[Case] = []
        seen: set[tuple[Any, ...]] = set()
        for plan in self._plans(kind, selected):
            if selected and plan.kernel not in selected:
                continue
            kernel = get_kernel(plan.kernel)
            given = self.user_shapes().get(plan.kernel, ())
            shapes = [kernel.parse_shape(s) for s in given or plan.shapes]
            for options in self.option_sets(plan, kernel):
                for dtype in self.dtypes or plan.dtypes:
                    if dtype not in kernel.DTYPES:
                        continue
                    for shape in shapes:
                        key = (plan.kernel, dtype, *sorted(shape.items()), *sorted(options.items()))
                        if key in seen:
                            continue
                        seen.add(key)
                        extra = {"options": options} if options else {}
                        cases.append(
                            kernel.make_case(shape, dtype, device, self.init, self.seed, **extra)
                        )
        if not cases:
            raise UsageError(
                f"nothing to run: suite {self.suite!r} has no case for kernels "
                f"{', '.join(selected) or 'any'} and dtypes {', '.join(self.dtypes) or 'any'}"
            )
        return cases
