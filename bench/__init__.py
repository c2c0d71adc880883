"""flopwatt's harness: measures how much of a device's peak real kernels reach.

The public Python API is `__all__`; everything else in the package is private. Names are
loaded on first use, so `import bench` touches no device and does not import torch.

    >>> import bench
    >>> m = bench.measure(lambda: a @ a, ops=2 * n**3, dtype="bf16")  # doctest: +SKIP
    >>> m.achieved_ops_per_s, m.frac_of_peak, m.ops_per_j  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Measurement",
    "PolicyOverrides",
    "PowerWindow",
    "RunPlan",
    "load_runs",
    "measure",
    "power_window",
    "run",
]

# Where each public name lives; imported when first asked for. A subpackage may not share a
# name with this list: importing bench.run.<module> would rebind `bench.run` to the package.
_HOMES = {
    "Measurement": "bench.api.measurement",
    "measure": "bench.api.measurement",
    "PowerWindow": "bench.api.window",
    "power_window": "bench.api.window",
    "run": "bench.api.runs",
    "load_runs": "bench.api.runs",
    "RunPlan": "bench.execution.plan",
    "PolicyOverrides": "bench.execution.plan",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
