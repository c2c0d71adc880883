"""RunPlan: what `flopwatt run` was asked to do, validated before any device is touched.

Every malformed input (unknown kernel, suite or dtype; a bad shape; a bad --peak) raises
UsageError here, so that a run either starts with a valid plan or does not start at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bench.case import Case
from bench.errors import UsageError
from bench.suites import Suite, get_suite
from bench.timing import MODES, Policy
from kernels import check_kernel_name, get_kernel, kernel_dtypes


def split_list(text: str | None) -> tuple[str, ...]:
    """Items of a comma-separated flag value; empty items are an error, not ignored."""
    if text is None:
        return ()
    items = tuple(item.strip() for item in text.split(","))
    if any(not item for item in items):
        raise UsageError(f"empty item in list {text!r}")
    return items


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
    shapes: tuple[str, ...] = ()
    init: str = "randn"
    seed: int = 0
    overrides: PolicyOverrides = field(default_factory=PolicyOverrides)
    peak_overrides: dict[str, float] = field(default_factory=dict, hash=False)

    def validate(self) -> None:
        """Everything that can be checked without a device; UsageError on the first problem."""
        for name in self.kernels:
            check_kernel_name(name)
        get_suite(self.suite, "cpu")
        known = {d for k in self.kernels or ("matmul",) for d in kernel_dtypes(k)}
        for dtype in self.dtypes:
            if dtype not in known:
                raise UsageError(f"unknown dtype {dtype!r}; choose from {', '.join(sorted(known))}")
        for name in self.kernels or ("matmul",):
            for shape in self.shapes:
                get_kernel(name).parse_shape(shape)

    def suite_for(self, kind: str) -> Suite:
        return get_suite(self.suite, kind)

    def policy(self, kind: str) -> Policy:
        base, o = default_policy(kind), self.overrides
        timeout = o.timeout_s if o.timeout_s is not None else self.suite_for(kind).timeout_s
        warm_min = o.warmup_s if o.warmup_s is not None else base.warmup_min_s
        return replace(
            base,
            mode=o.mode,
            timeout_s=timeout,
            max_noise=o.max_noise if o.max_noise is not None else base.max_noise,
            min_samples=o.min_samples if o.min_samples is not None else base.min_samples,
            min_time_s=o.min_time_s if o.min_time_s is not None else base.min_time_s,
            warmup_min_s=min(warm_min, timeout / 2),
            warmup_max_s=max(min(base.warmup_max_s, timeout / 2), min(warm_min, timeout / 2)),
        )

    def cases(self, kind: str, device: str) -> list[Case]:
        """The cases to run: the suite's recipe with any axis the user replaced."""
        cases: list[Case] = []
        seen: set[tuple[str, str, str]] = set()
        for plan in self.suite_for(kind).plans:
            if self.kernels and plan.kernel not in self.kernels:
                continue
            kernel = get_kernel(plan.kernel)
            dtypes = self.dtypes or plan.dtypes
            shapes = self.shapes or plan.shapes
            for dtype in dtypes:
                if dtype not in kernel.DTYPES:
                    continue
                for shape in shapes:
                    key = (plan.kernel, dtype, shape)
                    if key not in seen:
                        seen.add(key)
                        params = kernel.parse_shape(shape)
                        cases.append(kernel.make_case(params, dtype, device, self.init, self.seed))
        if not cases:
            raise UsageError(
                f"nothing to run: suite {self.suite!r} has no case for kernels "
                f"{', '.join(self.kernels) or 'any'} and dtypes {', '.join(self.dtypes) or 'any'}"
            )
        return cases
