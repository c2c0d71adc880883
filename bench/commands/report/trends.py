"""The report's trends section (`flopwatt report --history DIR`): per case, the achieved
rate and ops/J of every testbed over the last TREND_DAYS, with the baseline band, the change
points and the GPU swaps (trend_plots.py draws them).

A fleet has thousands of series: the section shows the MAX_CASES cases with the worst latest
verdict (regression, then warn, ...; the larger change first) and at most MAX_TESTBEDS
testbeds per case (the worst again), and says how many it left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results.document import Block, Figure, Heading, Para, Plot, Table

TREND_DAYS = 90
MAX_CASES = 6
MAX_TESTBEDS = 8


@dataclass(frozen=True)
class Trend:
    """What one case's plot needs: its judged rows, change points and GPU swaps."""

    case_key: str
    label: str
    family: str
    rows: Any  # judged rows of the case (bench.history.verdicts.judge), chosen testbeds
    change_points: list[Any]
    swaps: list[tuple[str, str, Any]]  # (previous testbed, testbed, first run's time)
    left_out: int  # testbeds not drawn


def load_trends(history: Path, testbeds: Sequence[str] | None) -> tuple[list[Trend], str]:
    """The worst cases' trends and a sentence saying what was chosen."""
    import pandas as pd

    from bench.history import changepoints
    from bench.history.check import check_testbeds
    from bench.history.query import check_history, load_cases, load_runs
    from bench.history.verdicts import STATES, judge

    check_history(history)
    runs = load_runs(history)
    if runs.empty:
        return [], "the history holds no runs yet"
    check_testbeds(dict.fromkeys(runs["testbed"]), testbeds)
    if testbeds:
        runs = runs[runs["testbed"].isin(testbeds)]
    start = runs["started_at"].max() - pd.Timedelta(days=TREND_DAYS)
    judged = judge(load_cases(history, since=start, testbeds=testbeds))
    latest = judged[judged["started_at"] == judged.groupby("series")["started_at"].transform("max")]
    latest = latest.assign(
        rank=latest["state"].cat.codes, size=latest["rate.change"].abs().fillna(0)
    ).sort_values(["rank", "size"], ascending=False)
    order = list(dict.fromkeys(latest["case_key"]))
    swaps = _swaps(runs)
    trends = []
    for key in order[:MAX_CASES]:
        worst = list(dict.fromkeys(latest.loc[latest["case_key"] == key, "testbed"]))
        shown = worst[:MAX_TESTBEDS]
        shown += [old for old, new, _ in swaps if new in shown and old not in shown]
        rows = judged[(judged["case_key"] == key) & judged["testbed"].isin(shown)]
        points = changepoints.find(judged, rows["series"].unique(), start)
        first = rows.iloc[0]
        trends.append(
            Trend(
                key,
                str(first["case_label"]),
                str(first["family"]),
                rows,
                points,
                [s for s in swaps if s[1] in shown],
                max(len(worst) - MAX_TESTBEDS, 0),
            )
        )
    states = ", ".join(f"{(latest['state'] == s).sum()} {s}" for s in reversed(STATES))
    caption = (
        f"The last {TREND_DAYS} days of {judged['testbed'].nunique()} testbeds: latest verdicts "
        f"{states}. Shown: the {len(trends)} of {len(order)} cases with the worst latest "
        f"verdict, at most {MAX_TESTBEDS} testbeds each (the worst)."
    )
    return trends, caption


def _swaps(runs: Any) -> list[tuple[str, str, Any]]:
    """(previous testbed, testbed, first run of the new one) for every GPU swap."""
    linked = runs[runs["previous_testbed"].notna()]
    first = linked.sort_values("started_at").drop_duplicates("testbed")
    return [
        (str(p), str(t), s)
        for p, t, s in zip(
            first["previous_testbed"], first["testbed"], first["started_at"], strict=True
        )
    ]


def trends_section(
    history: Path, testbeds: Sequence[str] | None, plots: bool
) -> tuple[list[Block], list[Plot]]:
    """The section's blocks and the figures drawn for it."""
    from bench.commands.report.plots import as_plot
    from bench.commands.report.trend_plots import trend_figure

    trends, caption = load_trends(history, testbeds)
    blocks: list[Block] = [Heading("Trends"), Para(caption)]
    figures: list[Plot] = []
    for i, trend in enumerate(trends):
        if plots:
            plot = as_plot(f"trend_{i + 1}", f"Trend: {trend.label}", trend_figure(trend))
            figures.append(plot)
            blocks.append(Figure(plot))
        if trend.left_out:
            blocks.append(Para(f"{trend.left_out} more testbeds ran {trend.label}; not drawn."))
    rows = [
        [t.label, cp.testbed, cp.metric, cp.first_bad_run, cp.first_bad_at[:10], f"{cp.shift:+.1%}"]
        for t in trends
        for cp in t.change_points
    ]
    if rows:
        headers = ["case", "testbed", "metric", "first bad run", "night", "shift"]
        blocks.append(Table(headers, rows, "Change points of the cases shown."))
    return blocks, figures
