"""What a kernel declares about itself: its axes, dtypes and ops/bytes formulas.

A declaration is importable without torch, so that `flopwatt list`, `flopwatt --help` and the
validation of a command line never load it; the kernel's torch module (`KernelSpec.module`)
is imported only to run a case. Built-in kernels declare themselves in `kernels/<name>_spec.py`;
a third-party kernel exposes a KernelSpec through the `flopwatt.kernels` entry point group.

Errors here speak of values ("shape '12x3' is not MxNxK"); whoever read the value from a
flag adds the flag ("--shape: shape '12x3' is not MxNxK").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kernels.case import Case

INITS = ("randn", "zeros", "ones")  # input distributions every kernel may offer


class AxisError(ValueError):
    """A value an axis, dtype or option cannot take; the message names the value, no flag."""


@dataclass(frozen=True)
class Axis:
    """One axis of a kernel's cases: the values a flag gives and how each is read.

    A shape axis has a `parse` that turns one item into shape parameters (ints); an option
    axis has `choices`, and its value is stored in the case params under `name`.
    """

    name: str  # key in RunPlan.axes[kernel] (and, for an option, in the case params)
    flag: str  # the `flopwatt run` flag, e.g. "--attn"
    help: str
    metavar: str | None = None  # the form of one item, e.g. "MxNxK"
    parse: Callable[[str], dict[str, int]] | None = None  # shape axes: item -> parameters
    choices: tuple[str, ...] = ()  # option axes: the values allowed
    default: str | None = None  # the value used when neither the suite nor the user gives one
    repeatable: bool = False  # items contain commas: ';' separates them, the flag repeats

    def form(self) -> str:
        """What one item looks like, for `flopwatt list`: the shape's form or the choices."""
        return "|".join(self.choices) if self.choices else str(self.metavar or self.name.upper())

    def read(self, text: str) -> Any:
        """The value of one item: shape parameters, or the option itself; AxisError if bad."""
        if self.parse is not None:
            return self.parse(text)
        if text not in self.choices:
            raise AxisError(f"{self.name} {text!r} is not one of {', '.join(self.choices)}")
        return text


def option(name: str, choices: tuple[str, ...], default: str, help: str) -> Axis:
    """An option axis whose flag is --<name>."""
    return Axis(name, f"--{name}", help, name.upper(), choices=choices, default=default)


@dataclass(frozen=True)
class KernelSpec:
    """A kernel's declaration: everything the plan, the CLI and `flopwatt list` need."""

    name: str
    module: str  # the torch module implementing kernels.base.Kernel (prepare, precision, ...)
    description: str
    dtypes: tuple[str, ...]
    shape: Axis  # the axis giving the kernel's shapes (the suites' shape strings)
    ops: Callable[[Case], int | None]  # operations per call (a multiply-add counts 2)
    bytes_moved: Callable[[Case], int]  # bytes one call must read and write at least once
    ops_convention: Callable[[Case], str]  # how ops counts, in words, stored with each result
    options: tuple[Axis, ...] = ()  # further axes, each an option with a default
    make_case: Callable[..., Case] | None = None  # None: default_case
    collective: bool = False  # timed in lockstep across ranks

    @property
    def axes(self) -> tuple[Axis, ...]:
        return (self.shape, *self.options)

    def axis(self, name: str) -> Axis:
        for axis in self.axes:
            if axis.name == name:
                return axis
        names = ", ".join(a.name for a in self.axes)
        raise AxisError(f"{self.name} has no axis {name!r}; it has {names}")

    def default_options(self) -> dict[str, str]:
        return {a.name: a.default for a in self.options if a.default is not None}

    def choose(self, dtype: str, options: dict[str, str] | None) -> dict[str, str]:
        """Check the dtype; the option values: the declared defaults, overridden by `options`,
        each checked against its axis's choices."""
        check_dtype(self.name, dtype, self.dtypes)
        allowed = {a.name: a.choices for a in self.options}
        return choose_options(self.name, options, allowed, self.default_options())

    def case(
        self,
        shape: dict[str, int],
        dtype: str,
        device: str,
        init: str = "randn",
        seed: int = 0,
        options: dict[str, str] | None = None,
    ) -> Case:
        """A Case from parsed shape parameters; options only where the kernel has some."""
        extra = {"options": options} if options else {}
        if self.make_case is not None:
            return self.make_case(shape, dtype, device, init, seed, **extra)
        return default_case(self, shape, dtype, device, init, seed, **extra)

    def load(self) -> Any:
        """The kernel's implementing module (imports torch)."""
        return importlib.import_module(self.module)


def default_case(
    spec: KernelSpec,
    shape: dict[str, int],
    dtype: str,
    device: str,
    init: str = "randn",
    seed: int = 0,
    options: dict[str, str] | None = None,
) -> Case:
    """params = shape, options, init and seed; the label joins the shape with 'x'."""
    chosen = spec.choose(dtype, options)
    check_init(init)
    label = " ".join(["x".join(str(v) for v in shape.values()), *chosen.values()])
    params = {**shape, **chosen, "shape_label": label, "init": init, "seed": seed}
    return Case(kernel=spec.name, params=params, dtype=dtype, device=device)


def choose_options(
    kernel: str,
    options: dict[str, str] | None,
    allowed: dict[str, tuple[str, ...]],
    defaults: dict[str, str],
) -> dict[str, str]:
    """A kernel's option values: defaults overridden by `options`, each one checked."""
    chosen = {**defaults, **(options or {})}
    for axis, value in chosen.items():
        if axis not in allowed:
            raise AxisError(f"{kernel} has no option {axis!r}; it has {', '.join(allowed)}")
        if value not in allowed[axis]:
            raise AxisError(f"{axis} {value!r} is not one of {', '.join(allowed[axis])}")
    return chosen


def check_dtype(kernel: str, dtype: str, dtypes: tuple[str, ...]) -> None:
    """AxisError naming the kernel's dtypes when it has no `dtype`."""
    if dtype not in dtypes:
        raise AxisError(f"{kernel} has no dtype {dtype!r}; choose from {', '.join(dtypes)}")


def check_init(init: str) -> None:
    if init not in INITS:
        raise AxisError(f"init {init!r} is not one of {', '.join(INITS)}")
