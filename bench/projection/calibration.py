"""Constants for the model from what was measured, each labelled measured or assumed.

Compute: efficiency tables (achieved / peak by operation size) from matmul and attention
cases, interpolated in log(FLOPs), with the measured ceiling as the top. Collectives: a
least-squares fit of t = alpha + c(n)·S/B per collective and world size, residuals kept.
Inter-node constants are never fitted from fewer than three nodes: on two, NCCL runs trees
at intra-node bandwidth and busbw overstates the network.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

BUS_FACTOR = {
    "allreduce": lambda n: 2 * (n - 1) / n,
    "allgather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
}
MIN_INTER_NODES = 3


class CalibrationError(ValueError):
    """The runs cannot calibrate the model; the message says what to measure."""


@dataclass(frozen=True)
class Input:
    """One number the projection uses, and where it came from."""

    name: str
    value: Any
    source: str  # measured | assumed | user
    detail: str = ""


@dataclass(frozen=True)
class Table:
    """Efficiency by operation size: sorted (flops, fraction of peak), capped by the top."""

    points: tuple[tuple[float, float], ...]
    top: float  # the measured ceiling as a fraction of peak

    def __call__(self, flops: float) -> float:
        xs = [math.log(f) for f, _ in self.points]
        x = math.log(max(flops, 1.0))
        if x >= xs[-1]:
            return self.top  # beyond the largest measured shape: the ceiling
        if x <= xs[0]:
            return self.points[0][1]
        i = bisect.bisect_right(xs, x)
        (x0, y0), (x1, y1) = (xs[i - 1], self.points[i - 1][1]), (xs[i], self.points[i][1])
        return min(self.top, y0 + (y1 - y0) * (x - x0) / (x1 - x0))

    @property
    def largest_flops(self) -> float:
        return self.points[-1][0]


def table(rows: Sequence[tuple[float, float]], peak: float, ceiling: float | None) -> Table:
    """Table from (ops per call, achieved ops/s); several at one size keep the best."""
    if not rows:
        raise CalibrationError("no measured cases to build an efficiency table from")
    best: dict[float, float] = {}
    for ops, rate in rows:
        best[ops] = max(best.get(ops, 0.0), rate / peak)
    points = tuple(sorted(best.items()))
    top = max(max(e for _, e in points), (ceiling or 0.0) / peak)
    return Table(points, top)


@dataclass(frozen=True)
class Fit:
    """t = alpha + c(n)·S/B fitted over sizes for one collective at one world size."""

    collective: str
    world_size: int
    nodes: int
    alpha_s: float
    busbw: float  # B, bytes/s
    residuals: tuple[float, ...]  # relative: (model - measured) / measured, per size
    sizes: tuple[float, ...]

    @property
    def max_residual(self) -> float:
        return max((abs(r) for r in self.residuals), default=0.0)


def fit(
    collective: str, n: int, sizes: Sequence[float], times: Sequence[float], nodes: int = 1
) -> Fit:
    """Least squares on t = alpha + x·beta with x = c(n)·S; needs two sizes or more."""
    if collective not in BUS_FACTOR:
        raise CalibrationError(f"no bus factor for {collective!r}")
    if n < 2:
        raise CalibrationError(f"a collective on {n} rank has no bus to fit")
    if len(set(sizes)) < 2:
        raise CalibrationError(
            f"{collective} on {n} ranks: one message size cannot separate latency from "
            "bandwidth; measure several, e.g. --bytes 8,1Mi,64Mi"
        )
    c = BUS_FACTOR[collective](n)
    xs = [c * s for s in sizes]
    k = len(xs)
    mx, mt = sum(xs) / k, sum(times) / k
    sxx = sum((x - mx) ** 2 for x in xs)
    beta = sum((x - mx) * (t - mt) for x, t in zip(xs, times, strict=True)) / sxx
    if beta <= 0:
        raise CalibrationError(
            f"{collective} on {n} ranks: the time does not grow with the size over "
            f"{min(sizes):.0f}-{max(sizes):.0f} B, so no bandwidth can be fitted; "
            "measure larger sizes, e.g. --bytes 1Mi,16Mi,256Mi"
        )
    alpha = max(0.0, mt - beta * mx)
    res = tuple((alpha + beta * x - t) / t for x, t in zip(xs, times, strict=True))
    return Fit(collective, n, nodes, alpha, 1 / beta, res, tuple(sizes))


def fit_inter_node(
    collective: str, n: int, sizes: Sequence[float], times: Sequence[float], nodes: int
) -> Fit:
    """An inter-node fit; refused below three nodes (two-node trees run at NVLink speed)."""
    if nodes < MIN_INTER_NODES:
        raise CalibrationError(
            f"refusing to fit inter-node constants from {nodes} node(s): NCCL uses trees and "
            "intra-node bandwidth on two nodes, so busbw overstates the network; measure on "
            f"{MIN_INTER_NODES} or more nodes (ideally 4, with NCCL_ALGO=RING)"
        )
    return fit(collective, n, sizes, times, nodes)


@dataclass
class Calibration:
    """What the runs give the model; every value also appears in `inputs`."""

    dtype: str
    peak_ops_per_s: float
    matmul: Table
    attention: Table
    mem_bytes_per_s: float | None = None
    gpu_power_w: float | None = None
    fits: list[Fit] = field(default_factory=list)
    max_world_size: int = 1
    max_nodes: int = 1
    inputs: list[Input] = field(default_factory=list)
