"""flopwatt's kernels as a pytest-benchmark suite: the nightly runner's second face.

    pytest --pyargs bench.nightly --benchmark-enable --benchmark-json nightly.json
    pytest-benchmark compare old.json nightly.json

Each case is measured by flopwatt's own engine (check, warm-up, adaptive sampling, CUDA
events or perf_counter blocks, the energy window) inside `benchmark.pedantic`; pytest-benchmark's
rounds are flopwatt's raw per-call samples, handed over through a timer that advances by
exactly those times (so its statistics, table and JSON describe the device time, not the
host's view of an asynchronous launch). TFLOP/s, W, TFLOP/s per W, busbw, clocks and the
fractions of peak go to extra_info; the device identity goes to machine_info, which
pytest-benchmark alone fills with the host's OS and Python only.

Environment knobs (all optional): FLOPWATT_DEVICE (auto|cpu|cuda|cuda:N), FLOPWATT_SUITE
(quick), FLOPWATT_KERNEL, FLOPWATT_DTYPE, FLOPWATT_SHAPE (comma lists as for `flopwatt run`),
FLOPWATT_TIMEOUT_S (per-case sampling limit).
"""

from __future__ import annotations

import os
from typing import Any


def _env_list(name: str) -> tuple[str, ...]:
    """A comma list from the environment: pytest owns argv, so the knobs live there."""
    return tuple(x for x in os.environ.get(name, "").split(",") if x)


def flopwatt_plan() -> Any:
    """The cases `flopwatt run` would measure with the same choices (execution.plan.RunPlan)."""
    from bench.execution.plan import PolicyOverrides, RunPlan

    timeout = os.environ.get("FLOPWATT_TIMEOUT_S")
    return RunPlan(
        suite=os.environ.get("FLOPWATT_SUITE", "quick"),
        kernels=_env_list("FLOPWATT_KERNEL") or ("matmul", "attention"),
        dtypes=_env_list("FLOPWATT_DTYPE"),
        axes={"matmul": {"shape": _env_list("FLOPWATT_SHAPE")}},
        overrides=PolicyOverrides(timeout_s=float(timeout) if timeout else None),
    )


def device_spec() -> str:
    """--device of `flopwatt run`: auto picks CUDA when torch sees it."""
    return os.environ.get("FLOPWATT_DEVICE", "auto")
