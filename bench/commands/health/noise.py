"""How sure a health rate comparison can be: repeats, their spread, and CPU pressure.

One timed run of a kernel on a shared machine can be 30% slow without anything being wrong
with the device: another job held a core for part of it. So a health rate is never one
number. The check measures each kernel in several short repeats, interleaved with the other
kernel's, and a blessed baseline keeps all of its repeats. Each side is reduced to the median
of its quiet repeats (CPU pressure, measuring.pressure, at most MAX_CPU_PRESSURE as in `flopwatt
compare`) and a robust relative spread (1.4826 x MAD / median, the normal sigma's estimate).

The rule, judge() (a pure function of the numbers, so it is tested with numbers):

- INCONCLUSIVE  half or more of the baseline's repeats were busy: its median is not what a
                healthy device reaches, neither a PASS nor a FAIL can be read against it.
- PASS          the reading is at least `min_ratio` x the baseline median, busy or not (a
                device that reaches the rate while shared reaches it alone).
- INCONCLUSIVE  below that, but half or more of the reading's repeats were busy (a slow
                reading on a busy machine says nothing about the device), or the drop is
                within `z` x the combined spread of the two sides (within noise).
- FAIL          below `min_ratio` x the baseline median and beyond `z` x the spread, on quiet
                repeats.

The spread is that of single repeats, not the standard error of their median, and never
less than a floor per device kind (spread_floor): a machine's state drifts between runs more
than between the repeats of one run, and a gate that cries wolf gets switched off. A side
with fewer than MIN_SPREAD_N quiet repeats has no spread of its own (a collective's busbw is
one number): the floor stands in for it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.commands.health.model import FAIL, INCONCLUSIVE, PASS
from bench.results.eligibility import MAX_CPU_PRESSURE  # the line compare uses too

MAD_TO_SIGMA = 1.4826  # MAD x this estimates a normal distribution's standard deviation
MIN_SPREAD_N = 3  # fewer repeats than this have no spread worth the name


@dataclass(frozen=True)
class Repeat:
    """One short timed repeat: its rate (ops/s or bytes/s) and the CPU pressure during it
    (None where the pressure cannot be read)."""

    rate: float
    pressure: float | None = None

    @property
    def busy(self) -> bool:
        return self.pressure is not None and self.pressure > MAX_CPU_PRESSURE


@dataclass(frozen=True)
class RateStats:
    """One side of a comparison: the median of its quiet repeats and their spread."""

    median: float
    rel_spread: float | None  # robust sigma / median of the quiet repeats; None with n < 3
    n: int  # quiet repeats the median is of (all repeats when too few were quiet)
    total: int  # repeats measured
    busy: int  # repeats some task waited for a CPU during more than MAX_CPU_PRESSURE
    max_pressure: float | None  # the highest pressure of any repeat; None if unreadable

    @property
    def quiet(self) -> bool:
        """More than half the repeats ran on a machine nothing else competed for."""
        return 2 * (self.total - self.busy) > self.total

    def describe(self) -> str:
        spread = f" ± {self.rel_spread:.1%}" if self.rel_spread is not None else ""
        text = f"median of {self.n}{spread}"
        if self.busy:
            text += f", {self.busy} of {self.total} busy"
        return text


def summarize(repeats: Sequence[Repeat]) -> RateStats | None:
    """The median and spread of the quiet repeats (of all of them when half or more were
    busy, and then .quiet is False); None without any repeat."""
    if not repeats:
        return None
    quiet = [r.rate for r in repeats if not r.busy]
    busy = len(repeats) - len(quiet)
    rates = quiet if 2 * len(quiet) > len(repeats) else [r.rate for r in repeats]
    median = statistics.median(rates)
    spread = None
    if len(rates) >= MIN_SPREAD_N and median > 0:
        mad = statistics.median(abs(x - median) for x in rates)
        spread = MAD_TO_SIGMA * mad / median
    pressures = [r.pressure for r in repeats if r.pressure is not None]
    top = max(pressures) if pressures else None
    return RateStats(median, spread, len(rates), len(repeats), busy, top)


@dataclass(frozen=True)
class Judgement:
    verdict: str
    ratio: float  # reading / baseline median
    tolerance: float  # the drop the noise allows (z x combined spread); 0 when unknown
    reason: str


def judge(
    base: RateStats, cand: RateStats, min_ratio: float, z: float, floor: float = 0.0
) -> Judgement:
    """The rule in the module docstring; `floor` is the least spread either side is taken
    to have (spread_floor)."""
    ratio = cand.median / base.median
    sides = (base.rel_spread, cand.rel_spread)
    tolerance = z * math.hypot(*(max(s or 0.0, floor) for s in sides))
    of = f"{ratio:.1%} of the baseline median"
    if not base.quiet:
        why = (
            f"{of}, but the baseline was measured on a busy machine ({base.busy} of "
            f"{base.total} repeats): bless one measured on a quiet machine"
        )
        return Judgement(INCONCLUSIVE, ratio, tolerance, why)
    if ratio >= min_ratio:
        return Judgement(PASS, ratio, tolerance, of)
    if not cand.quiet:
        top = f" (up to {cand.max_pressure:.0%} of the timing)" if cand.max_pressure else ""
        why = (
            f"{of}, but the machine was busy: some task waited for a CPU in {cand.busy} of "
            f"{cand.total} repeats{top}; rerun it on a quiet machine"
        )
        return Judgement(INCONCLUSIVE, ratio, tolerance, why)
    drop = 1 - ratio
    noise = f"{z:g} x the spread = {tolerance:.1%}"
    if floor > 0:
        noise += f", each side's spread at least {floor:.1%}"
    if all(s is None for s in sides):
        noise += "; no spread measured: one measurement each"
    if drop <= tolerance:
        why = f"{of}: {drop:.1%} below, within the noise ({noise})"
        return Judgement(INCONCLUSIVE, ratio, tolerance, why)
    return Judgement(FAIL, ratio, tolerance, f"{of}: {drop:.1%} below, beyond the noise ({noise})")


# The least spread a side is taken to have, by device kind. On a shared 2-core VM the quiet
# repeats of one health run agree within 1%, while the medians of runs minutes apart drift by
# up to 10% (turbo, and neighbours on the host that the pressure does not see); 3 x the
# combined floor is 12.7%. A GPU's runs agree far better.
SPREAD_FLOOR = {"cpu": 0.03}
DEFAULT_SPREAD_FLOOR = 0.005


def spread_floor(kind: str) -> float:
    return SPREAD_FLOOR.get(kind, DEFAULT_SPREAD_FLOOR)
