"""What `history check` reads: the case rows of its window, and the runs it judges among them.

Before `history compact` every run is one file per table, and opening files is most of a
check's time. So the cases table is read one month folder at a time, newest first, and no
further back than needed: until the judged runs are known (each testbed's latest run in the
STALE_DAYS before the newest one, or every run since --since) and the LOOKBACK_DAYS before
the earliest of them are covered. 20 eligible nightly runs fit in LOOKBACK_DAYS with room for
ineligible nights, and the change-point detector sees two months. A case row carries its
run's id, testbed, time and health mark, so the runs table is not needed to find the runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

LOOKBACK_DAYS = 60
STALE_DAYS = 7  # without --since: testbeds whose latest run is older are named, not judged

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Window:
    """The case rows a check reads and the runs (run_id, testbed, started_at) it judges."""

    cases: Any
    judged: Any


def read_window(
    history: Path,
    testbeds: Sequence[str] | None,
    scope: Sequence[str] | None,
    since: datetime | None,
    warn: Warn,
) -> Window:
    """The window of a check of `testbeds` (None: all), reading the case rows of `scope`
    (the testbeds and their peers; None: all). Testbeds that stopped running are named in
    one warning."""
    import pandas as pd

    from bench.history.layout import months
    from bench.history.query import load_cases

    if since is not None:
        start = since - timedelta(days=LOOKBACK_DAYS)
        cases = load_cases(history, since=start, testbeds=scope, warn=warn)
        return _trimmed(cases, _judged_runs(cases, testbeds, since, warn))
    parts: list[Any] = []
    runs: list[Any] = []  # one row per run of each part: what coverage is judged on
    for month in reversed(months(history, "cases")):
        start = _month_start(month)
        until = (start + timedelta(days=32)).replace(day=1)
        part = load_cases(history, since=start, until=until, testbeds=scope, warn=warn)
        parts.insert(0, part)
        runs.append(_runs(part, testbeds))
        if _covered(pd.concat(runs, ignore_index=True), start):
            break
    cases = pd.concat(parts, ignore_index=True) if parts else load_cases(history)
    return _trimmed(cases, _judged_runs(cases, testbeds, None, warn))


def _month_start(month: str) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime(year, number, 1, tzinfo=timezone.utc)


def _covered(runs: Any, start: datetime) -> bool:
    """Do the runs read, from `start` on, hold every judged run and the lookback before the
    first of them?"""
    if runs.empty:
        return False
    newest = runs["started_at"].max()
    if start > newest - timedelta(days=STALE_DAYS):
        return False  # an older month may hold a testbed's latest run
    first = _latest(runs, newest)["started_at"].min()
    return start <= first - timedelta(days=LOOKBACK_DAYS)


def _runs(cases: Any, testbeds: Sequence[str] | None) -> Any:
    """One row per run of `testbeds` (None: all): run_id, testbed, started_at."""
    runs = cases.drop_duplicates("run_id")[["run_id", "testbed", "started_at"]]
    return runs[runs["testbed"].isin(testbeds)] if testbeds else runs


def _latest(runs: Any, newest: Any) -> Any:
    """Each testbed's latest run, if it is within STALE_DAYS of the newest run."""
    latest = runs.groupby("testbed")["started_at"].transform("max")
    last = runs[runs["started_at"] == latest].drop_duplicates("testbed")
    return last[last["started_at"] >= newest - timedelta(days=STALE_DAYS)]


def _judged_runs(
    cases: Any, testbeds: Sequence[str] | None, since: datetime | None, warn: Warn
) -> Any:
    """Every run since `since`; else the latest run of each testbed that ran in the
    STALE_DAYS before the newest run (the others are named in a warning: a testbed that
    stopped running is news, its last verdict is not)."""
    runs = _runs(cases, testbeds)
    if since is not None or runs.empty:
        return runs[runs["started_at"] >= since] if since is not None else runs
    judged = _latest(runs, runs["started_at"].max())
    stale = sorted(set(runs["testbed"]) - set(judged["testbed"]))
    if stale:
        warn(
            f"{len(stale)} testbeds have not run in the {STALE_DAYS} days before the newest "
            f"run, not judged: {', '.join(stale[:5])}" + (", ..." if len(stale) > 5 else "")
        )
    return judged


def _trimmed(cases: Any, judged: Any) -> Window:
    """The rows from LOOKBACK_DAYS before the first judged run on."""
    if judged.empty:
        return Window(cases, judged)
    first = judged["started_at"].min() - timedelta(days=LOOKBACK_DAYS)
    return Window(cases[cases["started_at"] >= first].reset_index(drop=True), judged)
