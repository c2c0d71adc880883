"""What `history check` reads: the case rows of its window, and the runs it judges among them.

Before `history compact` every run is one file per table, and opening files is most of a
check's time. So the cases table is read in two steps: the newest month first, which names
the judged runs (each testbed's latest run in the STALE_DAYS before the newest one), and then,
in one more query, the older months from LOOKBACK_DAYS before the first of them. 20 eligible
nightly runs fit in LOOKBACK_DAYS with room for ineligible nights, and the change-point
detector sees two months. A case row carries its run's id, testbed, time and health mark, so
the runs table is not needed to find the runs. The reads stay arrow tables until the window is
cut, and are converted to one DataFrame once.
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

    from bench.history.query import case_table, concat, runs_in

    opts: dict[str, Any] = {"testbeds": scope, "warn": warn}
    if since is not None:
        table = case_table(history, since=since - timedelta(days=LOOKBACK_DAYS), **opts)
        return _cut(table, testbeds, since, warn)
    newest, start = _newest_month(history, opts)
    if newest is None:
        return _cut(None, testbeds, None, warn)
    runs = runs_in(newest)
    older = _older_start(_of(runs, testbeds), start)
    if older is None or older < start:
        rest = case_table(history, since=older, until=start, **opts)
        if rest is not None:
            newest = concat([rest, newest], "cases")
            runs = pd.concat([runs_in(rest), runs], ignore_index=True)
    return _cut(newest, testbeds, None, warn, runs)


def _newest_month(history: Path, opts: dict[str, Any]) -> tuple[Any, datetime | None]:
    """The case rows of the newest month that has any (an arrow table, None if no month has
    any), and that month's first instant."""
    from bench.history.layout import months
    from bench.history.query import case_table

    for month in reversed(months(history, "cases")):
        start = _month_start(month)
        until = (start + timedelta(days=32)).replace(day=1)
        table = case_table(history, since=start, until=until, **opts)
        if table is not None and table.num_rows:
            return table, start
    return None, None


def _month_start(month: str) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime(year, number, 1, tzinfo=timezone.utc)


def _older_start(runs: Any, start: datetime) -> datetime | None:
    """How far back the window reaches, given the runs of the newest month (read from
    `start` on): LOOKBACK_DAYS before the first judged run, where those runs name them all.
    When the newest month began less than STALE_DAYS before its newest run, a testbed's
    latest run may be older still: then as far as any judged run's lookback can reach.
    None (read everything) when no run of the testbeds judged is in the newest month."""
    if runs.empty:
        return None
    newest = runs["started_at"].max()
    if start > newest - timedelta(days=STALE_DAYS):
        return newest - timedelta(days=STALE_DAYS + LOOKBACK_DAYS)
    return _latest(runs, newest)["started_at"].min() - timedelta(days=LOOKBACK_DAYS)


def _of(runs: Any, testbeds: Sequence[str] | None) -> Any:
    """The runs of `testbeds` (None: all)."""
    return runs[runs["testbed"].isin(testbeds)] if testbeds else runs


def _latest(runs: Any, newest: Any) -> Any:
    """Each testbed's latest run, if it is within STALE_DAYS of the newest run."""
    latest = runs.groupby("testbed")["started_at"].transform("max")
    last = runs[runs["started_at"] == latest].drop_duplicates("testbed")
    return last[last["started_at"] >= newest - timedelta(days=STALE_DAYS)]


def _judged_runs(runs: Any, since: datetime | None, warn: Warn) -> Any:
    """Every run since `since`; else the latest run of each testbed that ran in the
    STALE_DAYS before the newest run (the others are named in a warning: a testbed that
    stopped running is news, its last verdict is not)."""
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


def _cut(
    table: Any,
    testbeds: Sequence[str] | None,
    since: datetime | None,
    warn: Warn,
    runs: Any = None,
) -> Window:
    """The window of the case rows read (an arrow table; `runs`, its runs where the caller
    has them): the judged runs, and the rows from LOOKBACK_DAYS before the first of them on,
    as one DataFrame."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from bench.history.query import runs_in, typed
    from bench.history.schema import arrow_schema

    if table is None:
        table = arrow_schema("cases").empty_table()
    runs = runs_in(table) if runs is None else runs
    judged = _judged_runs(_of(runs, testbeds), since, warn)
    if not judged.empty:
        first = judged["started_at"].min() - timedelta(days=LOOKBACK_DAYS)
        if runs["started_at"].min() < first:  # often the rows read are all in the window
            started = table["started_at"].cast(arrow_schema("cases").field("started_at").type)
            start = pa.scalar(first.to_pydatetime(), type=started.type)
            table = table.filter(pc.greater_equal(started, start))
    return Window(typed(table, "cases"), judged.reset_index(drop=True))
