"""What `history check` reads (bench.history.window): newest month first, then the older
months in one more query, as far back as the judged runs need. Checked against the plain
answer computed from every case row of the history."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from history_frames import Fleet, cases_frame, environment_frame, node_testbed, runs_frame
from history_frames import write_history as write_frames

from bench.history.query import load_cases
from bench.history.window import LOOKBACK_DAYS, STALE_DAYS, read_window

NIGHTS = 100  # every other night is kept: 50 runs a testbed, over three to four months
STOPPED, LATE = node_testbed(3), node_testbed(2)


def _history(root, last_night: str):
    """4 testbeds x 2 cases, a run every other night up to `last_night`: testbed 3 stopped
    10 days before it (stale), testbed 2's last run is 4 days before it (judged)."""
    cases = cases_frame(Fleet(testbeds=4, cases=2, nights=NIGHTS, seed=5))
    shift = pd.Timestamp(last_night, tz="UTC") - cases["started_at"].max()
    cases["started_at"] += shift
    last = cases["started_at"].max()
    night = (cases["started_at"] - cases["started_at"].min()).dt.days
    gone = ((cases["testbed"] == STOPPED) & (cases["started_at"] > last - timedelta(days=10))) | (
        (cases["testbed"] == LATE) & (cases["started_at"] > last - timedelta(days=4))
    )
    cases = cases[(night % 2 == 0) & ~gone].reset_index(drop=True)
    runs = runs_frame(cases)
    return write_frames(root, cases, runs, environment_frame(runs))


@pytest.fixture(scope="module", params=["2026-12-20 02:00", "2026-12-02 02:00"])
def history(request, tmp_path_factory):
    """The newest month holds a week of runs, or only the last two nights."""
    return _history(tmp_path_factory.mktemp("window"), request.param)


def _expected(history, testbeds, scope, since):
    """(case rows, judged run ids) from every row of the history."""
    rows = load_cases(history)
    rows = rows[rows["testbed"].isin(scope)] if scope else rows
    runs = rows.drop_duplicates("run_id")
    runs = runs[runs["testbed"].isin(testbeds)] if testbeds else runs
    if since is not None:
        judged = runs[runs["started_at"] >= since]
    else:
        latest = runs.groupby("testbed")["started_at"].transform("max")
        judged = runs[runs["started_at"] == latest]
        judged = judged[judged["started_at"] >= runs["started_at"].max() - timedelta(STALE_DAYS)]
    first = judged["started_at"].min() - timedelta(days=LOOKBACK_DAYS)
    return rows[rows["started_at"] >= first], sorted(judged["run_id"])


def _same_rows(got, want):
    keys = ["run_id", "case_key"]
    got = got.sort_values(keys).reset_index(drop=True)
    want = want.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize(
    ("testbeds", "since"),
    [(None, None), ([LATE], None), ([node_testbed(0)], "2026-11-20"), (None, "2026-12-01")],
)
def test_the_window_is_what_the_whole_history_says(history, testbeds, since):
    since = pd.Timestamp(since, tz="UTC") if since else None
    scope = [*testbeds, node_testbed(1)] if testbeds else None  # a peer is read too
    said: list[str] = []
    window = read_window(history, testbeds, scope, since, said.append)
    rows, judged = _expected(history, testbeds, scope, since)
    assert sorted(window.judged["run_id"]) == judged and judged
    _same_rows(window.cases, rows)
    assert window.cases["started_at"].min() < rows["started_at"].max() - timedelta(days=50)
    stale = since is None and not testbeds
    assert [STOPPED.split("/")[0] in s for s in said] == ([True] if stale else [])


def test_a_testbed_whose_latest_run_is_in_the_month_before_is_judged(history):
    window = read_window(history, None, None, None, lambda _: None)
    late = window.judged[window.judged["testbed"] == LATE]
    assert len(late) == 1 and STOPPED not in set(window.judged["testbed"])


def test_an_empty_history_has_an_empty_window(tmp_path):
    from bench.history.layout import open_history

    open_history(tmp_path)
    window = read_window(tmp_path, None, None, None, lambda _: None)
    assert window.cases.empty and window.judged.empty
    assert list(window.cases.columns) == list(load_cases(tmp_path).columns)
