"""A MAMF-finder-like shape search, coarse to fine, on an injected measurement.

MAMF finder scans an M x N x K lattice (step 256 up to 20480) exhaustively, which takes
hours. This search reaches the same region in a budget: it measures seed shapes (the
published best shapes, and in `--suite full` the run's own shapes), then sweeps each
dimension over a coarse set of values with the other two fixed at the best point so far
(K first: the best H100 bf16 shape, 2048x2048x13312, is K-heavy), and finally refines the
best regions by a pattern search whose step halves down to the lattice step. Every shape is
measured at most once. The budget is checked before each shape, so the search ends within
one shape's measurement of it; Ctrl-C ends it too, keeping every shape measured so far.

The measurement is a plain callable `shape -> ShapeStats` (it raises Unsupported for a
shape the device cannot run), so tests can search a scripted rate function on a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.results.ceiling_model import Shape, ShapeStats, geomean, shape_label
from bench.devices.base import Unsupported

MeasurePoint = Callable[[Shape], ShapeStats]


@dataclass(frozen=True)
class SearchSpace:
    """Where and how finely to search; presets.py has one per device kind and depth."""

    coarse: tuple[int, ...]  # values each dimension is swept over
    lo: int  # smallest dimension
    hi: int  # largest dimension
    min_step: int  # the lattice step: every dimension is a multiple of it
    refine_step: int  # the pattern search's first step
    starts: int = 1  # regions refined (best first)
    sweeps: int = 2  # coordinate sweeps over the coarse values
    seeds: tuple[Shape, ...] = ()
    max_call_s: float = float("inf")  # skip shapes predicted to take longer per call

    def snap(self, value: int) -> int:
        """Clip to [lo, hi] and round to the lattice step."""
        value = max(self.lo, min(self.hi, value))
        return max(self.lo, round(value / self.min_step) * self.min_step)


@dataclass
class SearchResult:
    """Every shape measured, the ones skipped and why, and why the search ended."""

    points: list[ShapeStats] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    stop_reason: str = "exhausted"  # exhausted | budget | interrupted
    elapsed_s: float = 0.0

    @property
    def best(self) -> ShapeStats | None:
        return max(self.points, key=lambda p: p.median_ops_per_s, default=None)

    def best_by(self, statistic: str) -> ShapeStats | None:
        return max(self.points, key=lambda p: getattr(p, f"{statistic}_ops_per_s"), default=None)

    @property
    def geomean_ops_per_s(self) -> float | None:
        return geomean([p.median_ops_per_s for p in self.points])

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == "interrupted"


class _BudgetSpent(Exception):
    pass


class _Search:
    def __init__(
        self,
        measure_point: MeasurePoint,
        space: SearchSpace,
        budget_s: float,
        clock: Callable[[], float],
        ops_of: Callable[[Shape], float],
        on_point: Callable[[ShapeStats | None, SearchResult], None] | None,
    ) -> None:
        self.measure_point, self.space, self.budget_s = measure_point, space, budget_s
        self.clock, self.ops_of, self.on_point = clock, ops_of, on_point
        self.result = SearchResult()
        self.seen: dict[Shape, ShapeStats | None] = {}
        self.start = clock()

    def rate(self, shape: Shape) -> float:
        stats = self.seen.get(shape)
        return stats.median_ops_per_s if stats is not None else 0.0

    def best_shape(self) -> Shape | None:
        best = self.result.best
        return best.shape if best is not None else None

    def measure(self, shape: Shape, exact: bool = False) -> float:
        """The median rate of shape, measuring it once; 0 for a skipped shape.

        Shapes are snapped to the lattice unless `exact` (the caller's seeds: a run's own
        shapes must be measured as they are, and whatever their predicted time).
        """
        if not exact:
            shape = tuple(self.space.snap(d) for d in shape)  # type: ignore[assignment]
        if shape in self.seen:
            return self.rate(shape)
        if self.clock() - self.start >= self.budget_s:
            raise _BudgetSpent
        best = self.result.best
        if best is not None and not exact:
            predicted = self.ops_of(shape) / best.median_ops_per_s
            if predicted > self.space.max_call_s:
                self.seen[shape] = None
                self.result.skipped[shape_label(shape)] = (
                    f"predicted {predicted:.2g} s per call at the best rate so far, "
                    f"above this search's {self.space.max_call_s:g} s"
                )
                return 0.0
        try:
            stats = self.measure_point(shape)
        except Unsupported as exc:
            self.seen[shape] = None
            self.result.skipped[shape_label(shape)] = str(exc)
            stats = None
        else:
            self.seen[shape] = stats
            self.result.points.append(stats)
        if self.on_point is not None:
            self.on_point(stats, self.result)
        return self.rate(shape)

    def sweep(self) -> bool:
        """One coordinate sweep (K, then M, then N); True if it moved the best point."""
        before = self.best_shape()
        for dim in (2, 0, 1):
            base = self.best_shape()
            if base is None:
                return False
            for value in self.space.coarse:
                candidate = list(base)
                candidate[dim] = value
                self.measure(tuple(candidate))  # type: ignore[arg-type]
        return self.best_shape() != before

    def refine(self, start: Shape) -> None:
        """Pattern search: move to the best neighbour, else halve the step."""
        current, step = start, self.space.refine_step
        while step >= self.space.min_step:
            neighbours = []
            for dim in range(3):
                for sign in (1, -1):
                    candidate = list(current)
                    candidate[dim] = self.space.snap(current[dim] + sign * step)
                    neighbours.append(tuple(candidate))
            rates = {n: self.measure(n) for n in neighbours if n != current}  # type: ignore[misc]
            best = max(rates, key=rates.__getitem__, default=None)
            if best is not None and rates[best] > self.rate(current):
                current = best  # type: ignore[assignment]
            else:
                step //= 2

    def run(self, seeds: Sequence[Shape]) -> SearchResult:
        try:
            for seed in seeds:
                self.measure(seed, exact=True)
            for seed in self.space.seeds:
                self.measure(seed)
            if not self.result.points:
                middle = self.space.coarse[len(self.space.coarse) // 2]
                self.measure((middle, middle, middle))
            for _ in range(self.space.sweeps):
                if not self.sweep():
                    break
            ranked = sorted(self.result.points, key=lambda p: -p.median_ops_per_s)
            for start in [p.shape for p in ranked[: self.space.starts]]:
                self.refine(start)
            self.result.stop_reason = "exhausted"
        except _BudgetSpent:
            self.result.stop_reason = "budget"
        except KeyboardInterrupt:
            self.result.stop_reason = "interrupted"
        self.result.elapsed_s = self.clock() - self.start
        return self.result


def search(
    measure_point: MeasurePoint,
    space: SearchSpace,
    budget_s: float,
    *,
    seeds: Sequence[Shape] = (),
    clock: Callable[[], float] = time.perf_counter,
    ops_of: Callable[[Shape], float] = lambda s: 2.0 * s[0] * s[1] * s[2],
    on_point: Callable[[ShapeStats | None, SearchResult], None] | None = None,
) -> SearchResult:
    """Search space for the shape with the highest median rate within budget_s seconds.

    `seeds` are measured first, exactly as given, then the space's own seeds. Never raises for a
    shape the device cannot run (it is recorded in `skipped`) nor for Ctrl-C (the result
    then says `interrupted` and holds every shape measured before it).
    """
    return _Search(measure_point, space, budget_s, clock, ops_of, on_point).run(seeds)
