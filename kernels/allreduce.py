"""Collectives as nccl-tests measures them: allreduce, allgather and reduce-scatter.

Definitions (nccl-tests doc/PERFORMANCE.md): S is the operation's size in bytes, as
kernels.allreduce_spec declares it; algbw = S / t; busbw = algbw x 2(n-1)/n for allreduce
and x (n-1)/n for allgather and reduce-scatter, comparable to a link's unidirectional peak.
Collectives are rated by bandwidth, not by operations, so `ops` is None.

Inputs are exactly representable: rank r's element i is ((i + r) mod 4) + 1, so every sum
over up to 64 ranks is an integer of at most 256, exact in fp32 and bf16 in any reduction
order. The check counts wrong elements on every rank and sums them over ranks (#wrong);
any wrong element fails the case. It runs once, outside timing, on fresh inputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from bench.devices.base import DeviceFacts
from kernels.allreduce_spec import (  # noqa: F401  the declared half of the Kernel interface
    COLLECTIVES,
    SPEC,
    bytes_moved,
    counts,
    format_size,
    make_case,
    ops,
    ops_convention,
    parse_shape,
    parse_size,
)
from kernels.base import Correctness, Prepared
from kernels.case import Case

NAME = SPEC.name
DTYPES = SPEC.dtypes
COLLECTIVE = SPEC.collective  # timed in lockstep across ranks (bench.measuring.collective_timing)
MAX_EXACT_RANKS = 64  # sums of values <= 4 stay exact in bf16 up to 256

_TORCH = {"fp32": torch.float32, "bf16": torch.bfloat16}


def memory_bytes(case: Case) -> int:
    send, recv, _ = counts(case)
    return (send + recv) * _TORCH[case.dtype].itemsize * 2 + send * 8


def math_mode(case: Case) -> str:
    return case.dtype


@contextlib.contextmanager
def precision(case: Case) -> Iterator[None]:
    yield


def unsupported_reason(case: Case, facts: DeviceFacts) -> str | None:
    if case.world_size > MAX_EXACT_RANKS:
        return (
            f"the exact check holds up to {MAX_EXACT_RANKS} ranks; this job has {case.world_size}"
        )
    return None


def rank_values(rank: int, start: int, count: int, device: Any) -> torch.Tensor:
    """Rank r's exactly representable inputs ((i + r) mod 4) + 1 for i in [start, start+count)."""
    i = torch.arange(start, start + count, device=device, dtype=torch.int64)
    return ((i + rank) % 4 + 1).to(torch.float64)


def expected_sum(world: int, start: int, count: int, device: Any) -> torch.Tensor:
    """The exact element-wise sum over ranks of rank_values."""
    total = torch.zeros(count, dtype=torch.float64, device=device)
    for r in range(world):
        total += rank_values(r, start, count, device)
    return total


def count_wrong(output: torch.Tensor, expected: torch.Tensor) -> int:
    """Elements that differ from the expected values, compared exactly (tolerance 0)."""
    return int((output.to(torch.float64) != expected).sum())


class _Buffers:
    """Send and receive buffers, and the call for one collective on the default group."""

    def __init__(self, case: Case, device: Any) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.case = case
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.collective, self.place = case.params["collective"], case.params["place"]
        self.send_count, self.recv_count, _ = counts(case)
        dtype = _TORCH[case.dtype]
        self.send = torch.empty(self.send_count, dtype=dtype, device=device)
        if self.place == "in" and self.collective == "allgather":
            self.recv = torch.empty(self.recv_count, dtype=dtype, device=device)
            self.send = self.recv.narrow(0, self.rank * self.send_count, self.send_count)
        elif self.place == "in" and self.collective == "reduce_scatter":
            self.recv = self.send.narrow(0, self.rank * self.recv_count, self.recv_count)
        elif self.place == "in":
            self.recv = self.send
        else:
            self.recv = torch.empty(self.recv_count, dtype=dtype, device=device)
        self.device = device
        # torch 2.12 renamed the tensor collectives; older torch has only the old names.
        self._gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        self._scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor

    def run(self) -> None:
        if self.collective == "allreduce":
            if self.place == "in":
                self.dist.all_reduce(self.send)
            else:
                self.recv.copy_(self.send)  # torch has no out-of-place all_reduce
                self.dist.all_reduce(self.recv)
        elif self.collective == "allgather":
            self._gather(self.recv, self.send)
        else:
            self._scatter(self.recv, self.send)

    def fill(self, corrupt: int = 0) -> None:
        """Fresh exact inputs; `corrupt` elements of this rank's input set wrong (tests)."""
        start = self.rank * self.send_count if self.collective == "allgather" else 0
        self.send.copy_(rank_values(self.rank, start, self.send_count, self.device))
        if corrupt:
            self.send[:corrupt] = 100.0

    def expected(self) -> torch.Tensor:
        if self.collective == "allreduce":
            return expected_sum(self.world, 0, self.recv_count, self.device)
        if self.collective == "allgather":
            parts = [
                rank_values(r, r * self.send_count, self.send_count, self.device)
                for r in range(self.world)
            ]
            return torch.cat(parts)
        return expected_sum(self.world, self.rank * self.recv_count, self.recv_count, self.device)

    def wrong_over_ranks(self, corrupt: int = 0) -> int:
        """Run once on fresh inputs and sum every rank's wrong elements (a collective)."""
        self.fill(corrupt)
        self.run()
        wrong = torch.tensor(
            [count_wrong(self.recv, self.expected())], dtype=torch.int64, device=self.device
        )
        self.dist.all_reduce(wrong)
        return int(wrong.item())


def prepare(case: Case, device: Any) -> Prepared:
    buffers = _Buffers(case, device)

    def check() -> Correctness:
        wrong = buffers.wrong_over_ranks()
        buffers.fill()
        return Correctness(
            ok=wrong == 0,
            metric="#wrong elements summed over ranks",
            error=float(wrong),
            tolerance=0.0,
        )

    details = {
        "world_size": buffers.world,
        "count_per_rank_in": buffers.send_count,
        "count_per_rank_out": buffers.recv_count,
    }
    if case.params["collective"] == "allreduce" and case.params["place"] == "out":
        details["out_of_place"] = (
            "a device copy of S bytes, then the in-place all_reduce "
            "(torch.distributed has no out-of-place all_reduce); both timed"
        )
    return Prepared(run=buffers.run, check=check, details=details)
