"""Case: a frozen description of one measurement. It says what to run, never how."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One (kernel, parameters, dtype, device) point of a run.

    `params` holds the kernel's own axes (matmul: m, n, k) plus the input distribution and
    seed, because data values change power and therefore clocks and results.
    """

    kernel: str
    params: dict[str, Any] = field(hash=False)
    dtype: str
    device: str
    world_size: int = 1

    def label(self) -> str:
        """A short human label of the kernel's shape parameters, e.g. "4096x4096x4096"."""
        shape = self.params.get("shape_label")
        return (
            str(shape)
            if shape is not None
            else ",".join(f"{k}={v}" for k, v in self.params.items())
        )
