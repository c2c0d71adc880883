"""The workloads flopwatt measures, looked up by name through their declarations.

Each kernel declares itself in a torch-free kernels.spec.KernelSpec (built-in ones in
`kernels/<name>_spec.py`); its torch module is imported only to run a case, so listing kernels,
printing help and validating a command line never load torch. Third-party kernels register a
KernelSpec under the `flopwatt.kernels` entry point group; they are looked up on first use,
and one that fails to load is left out with a one-line warning (`flopwatt list` shows it).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.errors import UsageError

if TYPE_CHECKING:
    from kernels.base import Kernel
    from kernels.spec import KernelSpec

ENTRY_POINT_GROUP = "flopwatt.kernels"
BUILTIN = (
    "kernels.matmul_spec",
    "kernels.attention_spec",
    "kernels.scaling_spec",
    "kernels.allreduce_spec",
)


@dataclass(frozen=True)
class Registry:
    specs: dict[str, KernelSpec]
    warnings: tuple[str, ...]  # one line per third-party kernel left out, and why


@functools.cache
def registry() -> Registry:
    """The built-in kernels, then every loadable third-party one, by name."""
    specs = {}
    for module in BUILTIN:
        spec = importlib.import_module(module).SPEC
        specs[spec.name] = spec
    warnings = []
    for entry in _entry_points():
        try:
            spec = _plugin(entry, specs)
        except Exception as exc:  # a broken plugin must not break flopwatt
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            warnings.append(f"kernel plugin {entry.name!r} ({entry.value}) left out: {why}")
            continue
        specs[spec.name] = spec
    return Registry(specs, tuple(warnings))


def _entry_points() -> list:  # type: ignore[type-arg]
    from importlib.metadata import entry_points

    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


def _plugin(entry, known: dict[str, KernelSpec]) -> KernelSpec:  # type: ignore[no-untyped-def]
    """The plugin's KernelSpec, if its name and flags are its own.

    A plugin's flags start with its kernel's name, so that none can shadow a flag of
    `flopwatt run` or of another kernel.
    """
    from kernels.spec import KernelSpec

    spec = entry.load()
    if not isinstance(spec, KernelSpec):
        raise TypeError(f"{entry.value} is a {type(spec).__name__}, not a kernels.spec.KernelSpec")
    if spec.name in known:
        raise ValueError(f"the kernel name {spec.name!r} is taken")
    taken = {a.flag for s in known.values() for a in s.axes}
    for axis in spec.axes:
        if axis.flag != f"--{spec.name}" and not axis.flag.startswith(f"--{spec.name}-"):
            raise ValueError(f"flag {axis.flag} must be --{spec.name} or --{spec.name}-...")
        if axis.flag in taken:
            raise ValueError(f"flag {axis.flag} is taken")
    return spec


def specs() -> dict[str, KernelSpec]:
    return registry().specs


def kernel_names() -> tuple[str, ...]:
    return tuple(specs())


def check_kernel_name(name: str) -> str:
    if name not in specs():
        raise UsageError(f"unknown kernel {name!r}; choose from {', '.join(specs())}")
    return name


def get_spec(name: str) -> KernelSpec:
    """The declaration of a kernel (no torch import)."""
    return specs()[check_kernel_name(name)]


def kernel_dtypes(name: str) -> tuple[str, ...]:
    return get_spec(name).dtypes


def get_kernel(name: str) -> Kernel:
    """The kernel module for a name (imports torch)."""
    return get_spec(name).load()  # type: ignore[no-any-return]
