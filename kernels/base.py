"""The Kernel protocol: what every workload module provides to the harness.

A kernel knows its inputs, how to run once, a higher-precision reference, and how many
operations and bytes one call does. It knows nothing about timing, peaks or files.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.devices.base import DeviceFacts
from kernels.case import Case


@dataclass(frozen=True)
class Correctness:
    """The result of the one check before timing, with what was compared and how."""

    ok: bool
    metric: str  # e.g. "normwise relative error vs fp64 on 256 rows"
    error: float
    tolerance: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "metric": self.metric,
            "error": self.error,
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class Prepared:
    """Inputs bound into a zero-argument call, plus the check that validates its output.

    `details` holds facts the kernel learns only on the device (e.g. which attention backend
    torch picked); the runner stores them with the result as `kernel_details`. `refresh`,
    where the kernel has one, re-randomises the output in place; the ceiling search runs it
    before every timed call, outside the interval (MAMF finder), and cases never do.
    """

    run: Callable[[], object]
    check: Callable[[], Correctness]
    details: dict[str, Any] = field(default_factory=dict)
    refresh: Callable[[], object] | None = None


class Kernel(Protocol):
    """Implemented by each workload *module* (kernels/matmul.py is one), not by a class.

    The torch-free half (NAME, DTYPES, parse_shape, make_case, ops, ops_convention,
    bytes_moved) is the kernel's declaration, a kernels.spec.KernelSpec, re-exported here.
    """

    NAME: str
    DTYPES: tuple[str, ...]

    def parse_shape(self, text: str) -> dict[str, int]:
        """Shape parameters from one item of the shape axis; kernels.spec.AxisError if malformed."""

    def make_case(
        self, shape: dict[str, int], dtype: str, device: str, init: str, seed: int
    ) -> Case:
        """A Case for this kernel."""

    def unsupported_reason(self, case: Case, facts: DeviceFacts) -> str | None:
        """Why this device cannot run the case (it is then skipped), or None."""

    def memory_bytes(self, case: Case) -> int:
        """Peak device memory the case needs, inputs, outputs and check included."""

    def math_mode(self, case: Case) -> str:
        """The peak-table math mode the case runs in (fp32, tf32, bf16, ...)."""

    def precision(self, case: Case) -> AbstractContextManager[None]:
        """Context that sets torch's math flags (TF32 on or off) for check and timing."""

    def prepare(self, case: Case, device: Any) -> Prepared:
        """Allocate seeded inputs on device and bind the call."""

    def ops(self, case: Case) -> int:
        """Arithmetic operations per call (a multiply-add counts 2)."""

    def ops_convention(self, case: Case) -> str:
        """How ops() counts, in words, stored with every result."""

    def bytes_moved(self, case: Case) -> int:
        """Bytes one call must read and write at least once."""
