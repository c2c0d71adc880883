"""Timing a collective: every rank runs the same number of calls, in lockstep.

The single-device engine (bench.measuring.timing.measure) stops when *its* samples are quiet; ranks
stopping at different counts would leave a collective waiting forever. Here the counts are
agreed first (from the slowest rank's estimate), then two styles run, as nccl-tests has them:

- pipelined: barrier, n calls with no sync between them, one sync; per-call time is the mean.
  Each rank times its own loop; the cross-rank reduction is the max (the collective is done
  when the last rank is), and it is named in the results.
- per-iteration: a mark before and after every call (CUDA events on GPU, no sync inside the
  loop); each iteration's time is reduced by max across ranks, giving p50 and p99.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.devices.base import Backend
from bench.measuring.stats import quantile

RANK_REDUCTION = "max"


@dataclass(frozen=True)
class CollectivePolicy:
    warmup_calls: int = 5
    target_s: float = 0.2  # length of the pipelined loop
    min_calls: int = 5
    max_calls: int = 1000
    event_calls: int = 20  # per-iteration samples


@dataclass(frozen=True)
class CollectiveTimings:
    """Per-rank figures and their named reductions; identical on every rank."""

    time_s: float  # pipelined mean per call, max across ranks
    time_by_rank_s: tuple[float, ...]
    calls: int
    per_iteration_s: tuple[float, ...]  # each iteration's max across ranks
    p50_s: float
    p99_s: float
    rank_reduction: str = RANK_REDUCTION


def _all_gather(obj: object, group: Any = None) -> list[object]:
    import torch.distributed as dist

    out: list[object] = [None] * dist.get_world_size(group)
    dist.all_gather_object(out, obj, group=group)
    return out


def _barrier(backend: Backend, group: Any = None) -> None:
    import torch.distributed as dist

    backend.synchronize()
    dist.barrier(group=group)


def measure_collective(
    run: Callable[[], object],
    backend: Backend,
    policy: CollectivePolicy,
    clock: Callable[[], float] = time.perf_counter,
    group: Any = None,
) -> CollectiveTimings:
    """Time `run` (one collective call) on every rank of `group` (None: the default group).

    Only the ranks of `group` call this; a scaling study times its step on the subgroup of
    the first N ranks while the others wait outside.
    """
    for _ in range(policy.warmup_calls):
        run()
    _barrier(backend, group)
    start = clock()
    run()
    backend.synchronize()
    estimate = max(float(t) for t in _all_gather(clock() - start, group))  # the slowest rank's
    calls = min(policy.max_calls, max(policy.min_calls, math.ceil(policy.target_s / estimate)))

    _barrier(backend, group)
    start = clock()
    for _ in range(calls):
        run()
    backend.synchronize()
    mine = (clock() - start) / calls

    _barrier(backend, group)
    marks = []
    for _ in range(policy.event_calls):
        first = backend.mark()
        run()
        marks.append((first, backend.mark()))
    backend.synchronize()
    iterations = [backend.elapsed_s(a, b) for a, b in marks]

    gathered = _all_gather((mine, iterations), group)
    return reduce_ranks(gathered, calls)  # type: ignore[arg-type]


def reduce_ranks(gathered: list[tuple[float, list[float]]], calls: int) -> CollectiveTimings:
    """Every rank's (mean per-call time, per-iteration event times) as one result.

    A collective ends when its slowest rank ends, so both the mean time and each iteration
    are the maximum across ranks; p50 interpolates, p99 is nccl-tests' nearest rank.
    """
    by_rank = tuple(float(mine) for mine, _ in gathered)
    columns = zip(*(iterations for _, iterations in gathered), strict=True)
    per_iter = tuple(max(float(g) for g in column) for column in columns)
    ordered = sorted(per_iter)
    return CollectiveTimings(
        time_s=max(by_rank),
        time_by_rank_s=by_rank,
        calls=calls,
        per_iteration_s=per_iter,
        p50_s=quantile(ordered, 0.5),
        p99_s=_nearest_rank(ordered, 0.99),
    )


def _nearest_rank(sorted_xs: list[float], q: float) -> float:
    """nccl-tests' percentile: the nearest-rank value, never an interpolation."""
    return sorted_xs[min(len(sorted_xs) - 1, max(0, math.ceil(q * len(sorted_xs)) - 1))]
