"""Scaling efficiency: a data-parallel training step measured on 1, 2, 4, ... ranks.

The step proxy per rank is a matmul (the compute) plus an allreduce of a gradient-sized
buffer (the communication), run one after the other ("seq") or with the allreduce started
first and the matmul overlapping it ("overlap"; on GPUs NCCL runs on its own stream, on CPUs
gloo works on a background thread). One case measures every N = 1, 2, 4, ..., world size in
the same launch, each on a process subgroup of the first N ranks while the others wait.

- weak scaling (fixed work per rank):    E(N) = X(N) / (N X(1)) = T(1) / T(N)
- strong scaling (fixed total work, the matmul's M split across ranks): E(N) = T(1) / (N T(N))

X is throughput (matmul ops per second over all ranks), T the step time: the slowest rank's
mean per step, timed by the same lockstep engine as every collective case
(bench.measuring.collective_timing; a step ends when the last rank is done). Per N the result
keeps every rank's time, the slowest and fastest rank, the share of the step the allreduce
takes alone, and its busbw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from bench.devices.base import Backend, DeviceFacts
from bench.measuring import metrics
from bench.measuring.collective_timing import CollectivePolicy, measure_collective
from kernels.base import Correctness, Prepared
from kernels.case import Case
from kernels.scaling_spec import (  # noqa: F401  the declared half of the Kernel interface
    SPEC,
    bytes_moved,
    make_case,
    ops,
    ops_convention,
    parse_shape,
)

NAME = SPEC.name
DTYPES = SPEC.dtypes
COLLECTIVE = SPEC.collective
# The step is timed by the collective engine every other collective case uses (agreed call
# counts, a pipelined loop, per-iteration marks, max over ranks), on a shorter budget: a study
# times three functions at every subgroup size.
STEP_POLICY = CollectivePolicy(
    warmup_calls=2, target_s=0.1, min_calls=4, max_calls=200, event_calls=8
)

_TORCH = {"bf16": torch.bfloat16, "fp32": torch.float32}


def memory_bytes(case: Case) -> int:
    p, item = case.params, _TORCH[case.dtype].itemsize
    return (p["m"] * p["k"] + p["k"] * p["n"] + p["m"] * p["n"]) * item + p["grad_bytes"]


def math_mode(case: Case) -> str:
    return case.dtype


@contextlib.contextmanager
def precision(case: Case) -> Iterator[None]:
    yield


def unsupported_reason(case: Case, facts: DeviceFacts) -> str | None:
    if case.dtype == "bf16" and facts.kind == "cpu":
        return "bf16 matmul on this CPU is emulated; the CPU step proxy runs in fp32"
    return None


def rank_counts(world: int) -> list[int]:
    """1, 2, 4, ... up to the world size, and the world size itself."""
    counts, n = [], 1
    while n < world:
        counts.append(n)
        n *= 2
    return [*counts, world]


class _Step:
    """One rank's step proxy for one subgroup size."""

    def __init__(self, case: Case, device: Any, n_ranks: int, group: Any) -> None:
        import torch.distributed as dist

        p, dtype = case.params, _TORCH[case.dtype]
        rows = max(1, p["m"] // n_ranks) if p["scaling"] == "strong" else p["m"]
        gen = torch.Generator(device=device).manual_seed(p["seed"])
        self.a = torch.randn(rows, p["k"], generator=gen, device=device).to(dtype)
        self.b = torch.randn(p["k"], p["n"], generator=gen, device=device).to(dtype)
        self.c = torch.empty(rows, p["n"], dtype=dtype, device=device)
        self.grad = torch.ones(
            max(1, p["grad_bytes"] // dtype.itemsize), dtype=dtype, device=device
        )
        self.dist, self.group, self.overlap = dist, group, p["overlap"] == "overlap"

    def compute(self) -> None:
        torch.mm(self.a, self.b, out=self.c)

    def communicate(self) -> None:
        self.dist.all_reduce(self.grad, group=self.group)

    def step(self) -> None:
        if self.overlap:
            work = self.dist.all_reduce(self.grad, group=self.group, async_op=True)
            self.compute()
            work.wait()
        else:
            self.compute()
            self.communicate()


def measure_steps(case: Case, prepared: Prepared, backend: Backend) -> list[dict[str, Any]]:
    """Every rank: time the step on each subgroup of the first N ranks; rows for every N."""
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    groups = prepared.details["_groups"]
    rows = []
    for n in rank_counts(world):
        mine = None
        dist.barrier()
        if rank < n:
            step = _Step(case, backend.torch_device(), n, groups[n])
            timed = [
                measure_collective(fn, backend, STEP_POLICY, group=groups[n])
                for fn in (step.step, step.compute, step.communicate)
            ]
            # the subgroup is the first n ranks, so its rank i is global rank i
            mine = tuple(t.time_by_rank_s[rank] for t in timed)
        dist.barrier()  # ranks outside this subgroup wait here
        everyone: list[Any] = [None] * world
        dist.all_gather_object(everyone, mine)
        rows.append(_row(case, n, [t for t in everyone if t is not None]))
    _add_efficiency(case, rows)
    return rows


def _row(case: Case, n: int, times: list[tuple[float, float, float]]) -> dict[str, Any]:
    steps = [t[0] for t in times]
    step_s = max(steps)
    comm_s = max(t[2] for t in times)
    per_rank_ops = ops(case) / (n if case.params["scaling"] == "strong" else 1)
    return {
        "n": n,
        "step_time_s": step_s,
        "step_time_by_rank_s": steps,
        "slowest_rank": steps.index(step_s),
        "fastest_rank": steps.index(min(steps)),
        "rank_spread": (step_s - min(steps)) / step_s if step_s > 0 else None,
        "compute_time_s": max(t[1] for t in times),
        "comm_time_s": comm_s,
        "comm_share": comm_s / step_s if step_s > 0 else None,
        "throughput_ops_per_s": n * per_rank_ops / step_s if step_s > 0 else None,
        "busbw_bytes_per_s": metrics.busbw(case.params["grad_bytes"], comm_s, "allreduce", n),
    }


def _add_efficiency(case: Case, rows: list[dict[str, Any]]) -> None:
    base = rows[0]
    for row in rows:
        if case.params["scaling"] == "weak":
            row["efficiency"] = metrics.weak_scaling_efficiency(
                row["throughput_ops_per_s"], base["throughput_ops_per_s"], row["n"]
            )
        else:
            row["efficiency"] = metrics.strong_scaling_efficiency(
                base["step_time_s"], row["step_time_s"], row["n"]
            )


def prepare(case: Case, device: Any) -> Prepared:
    import torch.distributed as dist

    world = dist.get_world_size()
    # new_group must be called by every rank, for every group, in the same order.
    groups = {
        n: dist.new_group(ranks=list(range(n))) if n < world else None for n in rank_counts(world)
    }

    def check() -> Correctness:
        grad = torch.ones(8, dtype=_TORCH[case.dtype], device=device)
        dist.all_reduce(grad)
        wrong = int((grad != world).sum())
        return Correctness(
            ok=wrong == 0,
            metric="allreduce of ones equals the world size",
            error=float(wrong),
            tolerance=0.0,
        )

    def run() -> None:
        raise RuntimeError("scaling is measured by measure_steps, not called per iteration")

    return Prepared(run=run, check=check, details={"_groups": groups})
