"""`flopwatt compare` output: a Markdown table for people, JSON for the nightly job."""

from __future__ import annotations

import json
from typing import Any

from bench.commands.compare import (
    AMBIGUOUS,
    FASTER,
    MAX_REL_IQR,
    MAX_REL_IQR_BLIND,
    MISSING,
    NEW,
    SAME,
    SLOWER,
    WORSE,
    Comparison,
    Decision,
)
from bench.results.document import Heading, Para, Table, render_markdown
from bench.results.eligibility import MAX_CPU_PRESSURE
from bench.results.render import seconds

ORDER = {SLOWER: 0, AMBIGUOUS: 1, MISSING: 2, FASTER: 3, NEW: 4, SAME: 5}


def rule_text(min_effect: float) -> str:
    m = f"{min_effect:.0%}"
    return (
        f"SAME: the median moved less than {m}. SLOWER/FASTER: it moved {m} or more, the "
        "two medians' 95% CIs are separated, both measurements were stable (CPU pressure "
        f"at most {MAX_CPU_PRESSURE:.0%} and IQR at most {MAX_REL_IQR:.0%} of the median; "
        f"{MAX_REL_IQR_BLIND:.0%} where the pressure was not recorded), and cycles (time x "
        "SM clock) agree where both runs recorded clocks. "
        f"AMBIGUOUS: it moved {m} or more but that is not confirmed. ops/J is compared the "
        "same way (WORSE/BETTER)."
    )


def _effect(d: Decision | None) -> str:
    return "—" if d is None else f"{d.effect:+.1%}"


def _iqr(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def verdict_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    cases = sorted(comparison.cases, key=lambda c: (ORDER.get(c.verdict, 9), c.label))
    for c in cases:
        notes = list(c.notes)
        if c.time is not None and c.verdict not in (SAME,) and c.verdict == c.time.verdict:
            notes.insert(0, c.time.reason)
        rows.append(
            [
                c.verdict,
                c.label,
                seconds(c.baseline_median_s),
                seconds(c.candidate_median_s),
                _effect(c.time),
                f"{_iqr(c.baseline_rel_iqr)} / {_iqr(c.candidate_rel_iqr)}",
                _effect(c.cycles),
                f"{c.energy_verdict} {_effect(c.energy)}" if c.energy else "—",
                "; ".join(notes),
            ]
        )
    return rows


def summary_line(comparison: Comparison, strict: bool) -> str:
    counts = comparison.counts()
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    code = comparison.exit_code(strict)
    return f"{', '.join(parts) or 'nothing compared'} -> exit {code}"


def to_markdown(comparison: Comparison, strict: bool = False) -> str:
    blocks: list[Any] = [
        Heading("flopwatt compare", 1),
        Para(f"baseline: {comparison.baseline}"),
        Para(f"candidate: {comparison.candidate}"),
        Para(rule_text(comparison.min_effect)),
    ]
    if comparison.warnings:
        blocks.append(Heading("Warnings"))
        blocks += [Para(f"- {w}") for w in comparison.warnings]
    blocks.append(Heading("Verdicts"))
    headers = [
        "verdict",
        "case",
        "baseline",
        "candidate",
        "change",
        "IQR/median",
        "cycles",
        "ops/J",
        "notes",
    ]
    caption = (
        "baseline, candidate: median per call; change: candidate / baseline - 1 of the "
        "medians (cycles: of time x clock); IQR/median: baseline / candidate spread"
    )
    blocks.append(Table(headers, verdict_rows(comparison), caption))
    blocks.append(Para(summary_line(comparison, strict)))
    return render_markdown(blocks)


def to_json(comparison: Comparison, strict: bool = False) -> str:
    doc = comparison.as_dict()
    doc["rule"] = rule_text(comparison.min_effect)
    doc["strict"] = strict
    doc["exit_code"] = comparison.exit_code(strict)
    doc["energy_worse"] = sum(c.energy_verdict == WORSE for c in comparison.cases)
    return json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n"
