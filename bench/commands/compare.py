"""Baseline vs candidate: one verdict per case, decided from the raw samples.

The rule (README "Reports and comparisons" says the same): for each case in both runs, with
m = --min-effect (default 0.03) and effect = candidate median / baseline median - 1,

- SAME       |effect| < m. Whether or not the medians' 95% CIs overlap: a difference the
             data resolve but that is smaller than the effect you said matters is not one.
- SLOWER     effect >= +m (FASTER: <= -m), the two medians' distribution-free 95% CIs are
  FASTER     separated, and both measurements were stable: CPU pressure (some task waited
             for a CPU, bench.measuring.pressure) at most 5% and relative IQR at most 25%
             (torch.utils.benchmark's "significant environmental influence"); where either
             run did not record the pressure, the IQR must stand in for it and the line is
             10% ("system fluctuation").
- AMBIGUOUS  |effect| >= m but not confirmed: the CIs overlap (too noisy to tell), or either
             measurement was unstable. A case that shared the machine with other work for
             its whole measurement can look tight and still be 2x slow: the median's CI
             cannot see that, only the spread and the pressure can.
- NEW / MISSING  in only the candidate / only the baseline (or it did not run there).

Clocks: where both runs recorded an SM clock for the case, the same rule is applied to
cycles = time x clock. A time verdict that cycles do not confirm is not a regression of the
code: SLOWER in time but SAME in cycles is SAME with a note (the clock was lower); SLOWER in
time but AMBIGUOUS in cycles is AMBIGUOUS (nvbench-compare-robust's "cycle space").

Energy efficiency (ops_per_j) is compared the same way, higher is better (BETTER, WORSE), its
interval from the CI of the median power in the energy window's trace; WORSE fails a nightly
like SLOWER. Identity differences (SKU, driver, CUDA, torch, power limit, world size,
threads) are warnings; different METHOD_VERSIONs are refused (CompareError).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.measuring.stats import REL_IQR_SEVERE, REL_IQR_WARN, median_ci_ranks, quantile
from bench.results.eligibility import busy, case_clock
from bench.results.frame import case_dicts, case_key, case_label, column, known

SAME, FASTER, SLOWER, AMBIGUOUS, NEW, MISSING = (
    "SAME",
    "FASTER",
    "SLOWER",
    "AMBIGUOUS",
    "NEW",
    "MISSING",
)
BETTER, WORSE = "BETTER", "WORSE"
DEFAULT_MIN_EFFECT = 0.03
MAX_REL_IQR = REL_IQR_SEVERE  # 0.25: above it a measurement cannot carry a verdict...
MAX_REL_IQR_BLIND = REL_IQR_WARN  # ...0.10 when the run could not record CPU pressure
EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


class CompareError(ValueError):
    """The two runs cannot be compared at all (method versions, nothing in common)."""


@dataclass(frozen=True)
class Spread:
    """A distribution reduced to what the rule needs: median, its 95% CI, relative IQR."""

    n: int
    median: float
    low: float
    high: float
    rel_iqr: float
    source: str  # "samples" | "summary" | "trace" | "point"

    def scaled(self, factor: float) -> Spread:
        lo, hi = self.low * factor, self.high * factor
        return Spread(self.n, self.median * factor, lo, hi, self.rel_iqr, self.source)


def spread(values: Sequence[float], source: str = "samples") -> Spread | None:
    """Median, its distribution-free 95% CI (measuring.stats) and relative IQR; None if empty."""
    xs = sorted(float(x) for x in values if known(x) and math.isfinite(float(x)))
    if not xs:
        return None
    lo, hi, _ = median_ci_ranks(len(xs))
    median = quantile(xs, 0.5)
    iqr = quantile(xs, 0.75) - quantile(xs, 0.25)
    rel_iqr = iqr / median if median > 0 else math.inf
    return Spread(len(xs), median, xs[lo], xs[hi], rel_iqr, source)


def spread_from_summary(case: dict[str, Any]) -> Spread | None:
    """The stored summary when the raw samples are gone: no CI means no separation."""
    median = case.get("time_median_s")
    if not known(median) or median <= 0:
        return None
    low = column(case, "time_ci95_low_s") or median
    high = column(case, "time_ci95_high_s") or median
    rel_iqr = column(case, "rel_iqr")
    rel_iqr = rel_iqr if rel_iqr is not None else math.inf  # unknown spread: no verdict
    return Spread(case.get("n_samples") or 0, median, low, high, rel_iqr, "summary")


@dataclass(frozen=True)
class Decision:
    """One application of the rule, with the numbers it used."""

    verdict: str
    effect: float  # candidate / baseline - 1 of the medians
    separated: bool  # the two medians' 95% CIs do not overlap
    reason: str


def decide(
    base: Spread,
    cand: Spread,
    min_effect: float = DEFAULT_MIN_EFFECT,
    higher_is_better: bool = False,
    words: tuple[str, str] = (SLOWER, FASTER),
    max_rel_iqr: float = MAX_REL_IQR_BLIND,
) -> Decision:
    """The rule in the module docstring. words = (worse, better) names for the verdicts."""
    effect = cand.median / base.median - 1
    up = effect > 0
    separated = cand.low > base.high if up else cand.high < base.low
    word = words[0] if up != higher_is_better else words[1]
    if abs(effect) < min_effect:
        why = f"{effect:+.1%} is within the {min_effect:.0%} minimum effect"
        if separated:
            why += " (a real difference, but smaller than the minimum effect)"
        return Decision(SAME, effect, separated, why)
    if not separated:
        why = f"{effect:+.1%} but the medians' 95% CIs overlap: too noisy to confirm"
        return Decision(AMBIGUOUS, effect, False, why)
    unstable = [
        f"{who} IQR is {s.rel_iqr:.0%} of its median"
        for who, s in (("baseline", base), ("candidate", cand))
        if s.rel_iqr > max_rel_iqr
    ]
    if unstable:
        why = f"{effect:+.1%} but unstable: " + ", ".join(unstable) + " (system fluctuation)"
        return Decision(AMBIGUOUS, effect, True, why)
    return Decision(word, effect, True, f"{effect:+.1%}, 95% CIs separated")


def confirm_with_clocks(time: Decision, cycles: Decision | None) -> str:
    """The case verdict once cycles have had their say (None: no clocks on both sides).

    SAME in cycles is SAME: whatever moved in time, the clock explains it. A change in time
    stands only where cycles moved the same way; any other disagreement is AMBIGUOUS."""
    if cycles is None or time.verdict == SAME:
        return time.verdict
    if cycles.verdict == SAME:
        return SAME
    return time.verdict if cycles.verdict == time.verdict else AMBIGUOUS


@dataclass
class CaseComparison:
    """The verdict of one case and everything it was decided from."""

    key: str
    label: str
    verdict: str
    baseline_median_s: float | None = None
    candidate_median_s: float | None = None
    baseline_rel_iqr: float | None = None
    candidate_rel_iqr: float | None = None
    time: Decision | None = None
    cycles: Decision | None = None
    clock_change: float | None = None  # candidate clock / baseline clock - 1
    energy_verdict: str | None = None
    energy: Decision | None = None
    broken: bool = False  # failed in the candidate (a wrong result or a crash) but ran before
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    """All cases, the identity warnings, and what the exit code should be."""

    baseline: str
    candidate: str
    min_effect: float
    cases: list[CaseComparison]
    warnings: list[str]

    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in (SAME, FASTER, SLOWER, AMBIGUOUS, NEW, MISSING)}
        for c in self.cases:
            out[c.verdict] += 1
        out[WORSE] = sum(c.energy_verdict == WORSE for c in self.cases)
        return out

    def exit_code(self, strict: bool = False) -> int:
        """1 when a case is SLOWER, WORSE in ops/J or newly failing (a wrong result is worse
        than a slow one), or AMBIGUOUS with strict; else 0."""
        counts = self.counts()
        failing = counts[SLOWER] + counts[WORSE] + sum(c.broken for c in self.cases)
        if strict:
            failing += counts[AMBIGUOUS] + sum(c.energy_verdict == AMBIGUOUS for c in self.cases)
        return EXIT_REGRESSION if failing else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "min_effect": self.min_effect,
            "counts": self.counts(),
            "warnings": self.warnings,
            "cases": [c.as_dict() for c in self.cases],
        }


# --------------------------------------------------------------------------- loading


def _samples(run: Any, case: dict[str, Any], notes: list[str]) -> Any:
    """The case's raw samples as a DataFrame, or None (noted) when they cannot be read."""
    try:
        frame = run.samples(case["case_id"])
        frame["time_s"]
    except (OSError, ValueError, KeyError) as exc:
        notes.append(f"{run.path.name}: no raw samples ({type(exc).__name__}); used the summary")
        return None
    return frame


def _time_spread(frame: Any, case: dict[str, Any]) -> Spread | None:
    if frame is None:
        return spread_from_summary(case)
    return spread(frame["time_s"].tolist()) or spread_from_summary(case)


def _cycle_spread(frame: Any, case: dict[str, Any], time: Spread) -> tuple[Spread | None, float]:
    """Cycles per call and the clock used: per-sample clocks when the samples have them
    (nvbench records one per sample), else time x the case's clock; (None, nan) without."""
    if frame is not None and "sm_clock_hz" in frame and frame["sm_clock_hz"].notna().all():
        cycles = (frame["time_s"] * frame["sm_clock_hz"]).tolist()
        return spread(cycles), float(frame["sm_clock_hz"].median())
    clock, _ = case_clock(case)
    if clock is None:
        return None, math.nan
    return time.scaled(clock), clock


def _energy_spread(run: Any, case: dict[str, Any]) -> Spread | None:
    """ops/J with an interval from the CI of the window's median power (ops/J ~ 1 / power);
    a point (no interval) when there is no trace."""
    value = case.get("ops_per_j")
    if not known(value) or value <= 0 or case.get("energy_source") == "estimate":
        return None
    try:
        power = spread(run.trace(case["case_id"])["power_w"].tolist(), "trace")
    except (OSError, ValueError, KeyError):
        power = None
    if power is None or power.median <= 0 or power.low <= 0:
        return Spread(1, value, value, value, 0.0, "point")
    scale = value * power.median
    return Spread(power.n, value, scale / power.high, scale / power.low, power.rel_iqr, "trace")


# --------------------------------------------------------------------------- the comparison

IDENTITY_FIELDS = (
    ("SKU", None),
    ("device", ("device",)),
    ("driver", ("environment", "nvml", "driver_version")),
    ("CUDA", ("environment", "software", "torch_cuda")),
    ("HIP", ("environment", "software", "torch_hip")),
    ("torch", ("environment", "software", "torch")),
    ("power limit (W)", ("environment", "nvml", "power_limit_enforced_w")),
    ("world size", ("world_size",)),
    ("CPU threads", ("device_facts", "threads")),
)


def _dig(meta: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = meta
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def identity(meta: dict[str, Any]) -> dict[str, Any]:
    """What must match between two runs for their numbers to mean the same thing."""
    from bench.results.blessed.runs import run_sku

    out: dict[str, Any] = {}
    for name, path in IDENTITY_FIELDS:
        if path is None:
            try:
                out[name] = run_sku(meta)
            except ValueError:
                out[name] = None
        else:
            out[name] = _dig(meta, path)
    if out["world size"] is None:
        out["world size"] = 1
    return out


def identity_warnings(base_meta: dict[str, Any], cand_meta: dict[str, Any]) -> list[str]:
    a, b = identity(base_meta), identity(cand_meta)
    return [
        f"{name} differs: baseline {a[name]!r}, candidate {b[name]!r}"
        for name in a
        if a[name] != b[name]
    ]


def check_methods(base: Any, cand: Any, base_cases: list, cand_cases: list) -> None:
    """Refuse to compare numbers measured by different methods."""
    a = {base.meta.get("method_version")} | {c.get("method_version") for c in base_cases}
    b = {cand.meta.get("method_version")} | {c.get("method_version") for c in cand_cases}
    a, b = a - {None}, b - {None}
    if len(a) > 1 or len(b) > 1 or a != b:
        raise CompareError(
            f"METHOD_VERSION differs (baseline {sorted(a)}, candidate {sorted(b)}): "
            "the numbers were measured differently; re-measure the baseline with this flopwatt "
            "and re-bless it (flopwatt baseline bless RUN_DIR)"
        )


def _index(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Cases by key; a repeated key gets its occurrence number (nvbench does the same)."""
    out: dict[str, dict[str, Any]] = {}
    for case in cases:
        key, n = case_key(case), 1
        while key in out:
            n += 1
            key = f"{case_key(case)}#{n}"
        out[key] = case
    return out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compare_case(
    base_run: Any, cand_run: Any, a: dict[str, Any], b: dict[str, Any], min_effect: float
) -> CaseComparison:
    """The verdict of one case present in both runs."""
    out = CaseComparison(key=case_key(b), label=case_label(b), verdict=AMBIGUOUS)
    if b.get("health_verdict") == "FAIL":
        out.notes.append("measured on a GPU that failed its health check (health.jsonl)")
    if b.get("status") != "ok":
        both_skipped = a.get("status") == b.get("status") == "skipped"
        out.verdict = SAME if both_skipped else MISSING
        out.broken = b.get("status") == "failed" and a.get("status") == "ok"
        where = "both runs" if both_skipped else "the candidate"
        out.notes.append(f"{b.get('status')} in {where}: {b.get('reason')}")
        return out
    if a.get("status") != "ok":
        out.verdict = NEW
        out.notes.append(f"{a.get('status')} in the baseline: {a.get('reason')}")
        return out
    fa, fb = _samples(base_run, a, out.notes), _samples(cand_run, b, out.notes)
    ta, tb = _time_spread(fa, a), _time_spread(fb, b)
    if ta is None or tb is None:
        out.notes.append("no timing to compare")
        return out
    out.baseline_median_s, out.candidate_median_s = ta.median, tb.median
    out.baseline_rel_iqr, out.candidate_rel_iqr = _finite(ta.rel_iqr), _finite(tb.rel_iqr)
    # The spread's line: stricter where no pressure reading can say the machine was busy.
    seen = known(a.get("cpu_pressure")) and known(b.get("cpu_pressure"))
    gate = MAX_REL_IQR if seen else MAX_REL_IQR_BLIND
    out.time = decide(ta, tb, min_effect, max_rel_iqr=gate)
    out.verdict = out.time.verdict
    (ca, clock_a), (cb, clock_b) = _cycle_spread(fa, a, ta), _cycle_spread(fb, b, tb)
    if ca is not None and cb is not None:
        out.cycles = decide(ca, cb, min_effect, max_rel_iqr=gate)
        out.clock_change = clock_b / clock_a - 1
        out.verdict = confirm_with_clocks(out.time, out.cycles)
        if out.cycles.verdict != out.time.verdict:
            out.notes.append(
                f"{out.time.verdict} in time ({out.time.effect:+.1%}) and the clock "
                f"{out.clock_change:+.1%}: {out.cycles.verdict} in cycles (time x clock, "
                f"{out.cycles.effect:+.1%})"
            )
    pressures = [f"{w} {p:.0%}" for w, p in (("baseline", busy(a)), ("candidate", busy(b))) if p]
    if pressures:
        out.notes.append(
            f"busy machine: some task waited for a CPU during {', '.join(pressures)} of the timing"
        )
        if out.verdict in (SLOWER, FASTER):
            out.verdict = AMBIGUOUS
    ea, eb = _energy_spread(base_run, a), _energy_spread(cand_run, b)
    if ea is not None and eb is not None:
        out.energy = decide(ea, eb, min_effect, True, (WORSE, BETTER), gate)
        out.energy_verdict = out.energy.verdict
        if a.get("energy_source") != b.get("energy_source"):
            out.notes.append(f"energy from {a.get('energy_source')} vs {b.get('energy_source')}")
    return out


def compare_runs(base: Any, cand: Any, min_effect: float = DEFAULT_MIN_EFFECT) -> Comparison:
    """Every case of either run, matched by case_key; CompareError if nothing can be compared."""
    if not min_effect >= 0:
        raise CompareError(f"--min-effect must be >= 0, got {min_effect}")
    base_cases, cand_cases = case_dicts(base), case_dicts(cand)
    check_methods(base, cand, base_cases, cand_cases)
    a_index, b_index = _index(base_cases), _index(cand_cases)
    common = [k for k in b_index if k in a_index]
    if not common:
        raise CompareError(
            f"no case in common between {base.path} ({len(a_index)} cases) and "
            f"{cand.path} ({len(b_index)} cases): different suites, devices or shapes"
        )
    results = []
    for key, b in b_index.items():
        if key in a_index:
            results.append(compare_case(base, cand, a_index[key], b, min_effect))
        else:
            results.append(CaseComparison(key, case_label(b), NEW, notes=["not in the baseline"]))
    for key, a in a_index.items():
        if key not in b_index:
            note = "not in the candidate"
            results.append(CaseComparison(key, case_label(a), MISSING, notes=[note]))
    warnings = identity_warnings(base.meta, cand.meta)
    warnings += [f"baseline: {p}" for p in base.problems]
    warnings += [f"candidate: {p}" for p in cand.problems]
    return Comparison(str(base.path), str(cand.path), min_effect, results, warnings)
