"""The nightly verdicts, change points and attribution on generated histories (seeded numpy
noise, tests/history_frames.py): the rules one at a time, then the figures of
docs/history-check.md at a smaller but still telling scale."""

import numpy as np
import pandas as pd
import pytest
from history_frames import Fleet, cases_frame, environment_frame, runs_frame

from bench.history import attribution, changepoints
from bench.history.baseline import BASELINE_RUNS, summarise
from bench.history.verdicts import (
    IMPROVEMENT,
    INCONCLUSIVE,
    MIN_BASELINE_RUNS,
    OK,
    REGRESSION,
    WARN,
    judge,
)
from bench.results.eligibility import MAX_CPU_PRESSURE, busy


def _night(frame):
    return (frame["started_at"] - frame["started_at"].min()).dt.days


def _flat(nights=30, **kw):
    """One quiet series with a tiny noise: every verdict comes from what the test plants."""
    return cases_frame(Fleet(nights=nights, noise=0.002, **kw))


def _scale(frame, nights, factor, column="achieved_ops_per_s"):
    frame = frame.copy()
    hit = _night(frame).isin(nights)
    frame.loc[hit, column] = frame.loc[hit, column] * factor
    return frame


def _states(frame, metric="state"):
    return judge(frame)[metric].astype(str).tolist()


def test_baseline_median_mad_and_interval_of_each_row():
    window = np.array([[1.0, 2.0, 3.0, 4.0, 100.0, np.nan], [np.nan] * 6])
    base = summarise(window)
    assert base.n.tolist() == [5, 0]
    assert base.median[0] == 3.0 and np.isnan(base.median[1])
    # MAD of |x - 3| = [2, 1, 0, 1, 97] is 1; x 1.4826, x n / (n - 0.8) for small n
    assert base.sigma[0] == pytest.approx(1.4826 * 5 / 4.2)
    assert (base.low[0], base.high[0]) == (1.0, 100.0)  # n < 6: min..max


def test_busy_rule_is_shared_with_compare():
    from bench.commands import compare

    assert compare.busy is busy
    assert busy({"cpu_pressure": MAX_CPU_PRESSURE + 0.01}) and not busy({"cpu_pressure": 0.01})


def test_one_bad_night_warns_two_in_a_row_regress_and_the_first_bad_run_is_named():
    frame = _scale(_flat(), [25, 26], 0.90)
    judged = judge(frame)
    assert judged["state"].astype(str).tolist()[24:28] == [OK, WARN, REGRESSION, OK]
    row = judged.iloc[26]
    assert row["rate.change"] == pytest.approx(-0.10, abs=0.01)
    assert row["rate.change_low"] < row["rate.change"] < row["rate.change_high"]
    assert judged["run_id"].iat[row["rate.first_bad_row"]] == "r0000-0025"
    assert judged["run_id"].iat[row["rate.last_good_row"]] == "r0000-0024"


def test_judging_only_the_recent_rows_gives_the_same_verdicts():
    frame = _scale(cases_frame(Fleet(cases=5, nights=40, seed=3)), [36, 37, 38], 0.8)
    since = frame["started_at"].min() + pd.Timedelta(days=30)
    full, recent = judge(frame), judge(frame, since)
    later = (full["started_at"] >= since).to_numpy()
    columns = ["state", "rate.baseline", "rate.threshold", "rate.first_bad_row"]
    pd.testing.assert_frame_equal(full.loc[later, columns], recent.loc[later, columns])
    assert (full.loc[later, "state"] == REGRESSION).sum() == 10  # nights 37, 38 x 5 cases
    assert recent.loc[~later, "state"].isna().all() and recent["rate.eligible"].all()


def test_improvement_needs_two_nights_too():
    states = _states(_scale(_flat(), [25, 26], 1.10))
    assert states[25:27] == [OK, IMPROVEMENT]


def test_floor_holds_where_the_noise_is_tiny():
    assert _states(_scale(_flat(), [25, 26], 0.96))[26] == OK  # 4% < the 5% matmul floor
    collective = _flat(family="collective")
    states = _states(_scale(collective, [25, 26], 0.94, "busbw_bytes_per_s"))
    assert states[26] == OK  # 6% < the 7% collective floor
    assert _states(_scale(collective, [25, 26], 0.90, "busbw_bytes_per_s"))[26] == REGRESSION


def test_too_few_eligible_runs_is_inconclusive():
    judged = judge(_flat(nights=MIN_BASELINE_RUNS + 1))
    assert judged["state"].astype(str).tolist() == [INCONCLUSIVE] * MIN_BASELINE_RUNS + [OK]


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("cpu_pressure", 0.5, "busy CPU"),
        ("throttled", True, "throttled"),
        ("health_failed", True, "health failed"),
        ("status", "failed", "status failed"),
    ],
)
def test_ineligible_runs_neither_judge_nor_count(column, value, why):
    frame = _scale(_flat(), [20, 21, 22, 29], 0.5)  # four awful nights...
    frame.loc[_night(frame).isin([20, 21, 22, 29]), column] = value  # ...that do not count
    judged = judge(frame)
    assert judged["state"].astype(str).tolist()[20:] == [INCONCLUSIVE] * 3 + [OK] * 6 + [
        INCONCLUSIVE
    ]
    assert judged["ineligible"].iat[29] == why
    assert judged["rate.n"].iat[28] == BASELINE_RUNS


def test_a_new_method_version_starts_a_new_baseline():
    frame = _flat()
    frame.loc[_night(frame) >= 25, "method_version"] = "4"
    judged = judge(frame)
    assert judged["rate.n"].iat[29] == 4
    assert judged["state"].astype(str).iat[29] == INCONCLUSIVE


def test_rates_are_compared_at_the_judged_runs_clock():
    frame = _flat()
    frame["clock_hz"] = 1.98e9
    slow = _night(frame).isin([25, 26])
    frame.loc[slow, "clock_hz"] = 1.98e9 * 0.85
    frame = _scale(frame, [25, 26], 0.85)
    judged = judge(frame)
    assert judged["state"].astype(str).iat[26] == OK  # the clock explains it
    frame["clock_hz"] = np.nan
    assert judge(frame)["state"].astype(str).iat[26] == REGRESSION


def test_ops_per_j_regresses_on_its_own_and_its_absence_leaves_the_rate_standing():
    frame = _scale(_flat(), [25, 26], 0.90, "ops_per_j")
    judged = judge(frame)
    assert judged["state"].astype(str).iat[26] == REGRESSION
    assert judged["metric"].astype(str).iat[26] == "ops_per_j"
    frame["ops_per_j"] = np.nan
    judged = judge(frame)
    assert judged["state"].astype(str).iat[26] == OK and judged["ops_per_j.state"].isna().all()


# --------------------------------------------------------------------------- the figures


def test_quiet_fleet_gives_fewer_than_one_false_regression_per_night():
    """5,000 series of 3% noise, the 25 nights after the baseline fills (125,000 verdicts):
    docs/history-check.md has the 200-night figure (scripts/bench_history_verdicts.py)."""
    fleet = Fleet(testbeds=100, cases=50, nights=BASELINE_RUNS + 25, noise=0.03, seed=11)
    judged = judge(cases_frame(fleet))
    steady = judged[judged["rate.n"] >= BASELINE_RUNS]
    per_night = (steady["state"] == REGRESSION).sum() / steady["started_at"].nunique()
    assert per_night < 1.0
    assert 0 < (steady["state"] == WARN).mean() < 0.02  # warnings exist: the gate is live


def test_a_20_percent_step_in_3_percent_noise_regresses_by_the_second_night():
    fleet = Fleet(cases=100, nights=40, noise=0.03, seed=12, step_night=30, step=-0.20)
    judged = judge(cases_frame(fleet))
    after = judged[_night(judged).between(31, 32)]
    hits = after.groupby("case_key")["state"].apply(lambda s: (s == REGRESSION).any())
    assert hits.sum() >= 95


def _named_within(frame, step_night, nights=7):
    """The cases whose step night (+-1) a nightly check of the `nights` after it names."""
    named = set()
    for last in range(step_night + 1, step_night + nights + 1):
        judged = judge(frame[_night(frame) <= last])
        for cp in changepoints.find(judged, judged["series"].unique()):
            if cp.metric == "rate" and abs(int(cp.first_bad_run[-4:]) - step_night) <= 1:
                named.add(cp.case_key)
    return named


def test_a_5_percent_step_in_2_percent_noise_is_named_within_7_nights():
    """The gate's threshold here is ~7.3% (3.5 sigma): it misses most such steps. The
    localisation of a 2.5-sigma step is off by 2+ nights ~5% of the time: 93-95 of 100 is
    what this detector gets (docs/history-check.md), so the test asks for 90."""
    fleet = Fleet(cases=100, nights=58, noise=0.02, seed=13, step_night=50, step=-0.05)
    frame = cases_frame(fleet)
    judged = judge(frame)
    gate = judged[_night(judged) >= 51].groupby("case_key")["state"]
    assert gate.apply(lambda s: (s == REGRESSION).any()).sum() < 50
    assert len(_named_within(frame, 50)) >= 90


def test_a_slow_drift_the_gate_follows_is_caught_as_a_change():
    fleet = Fleet(cases=20, nights=60, noise=0.01, seed=14, step_night=30, drift_per_night=-0.004)
    judged = judge(cases_frame(fleet))
    assert (judged["state"] == REGRESSION).mean() < 0.05  # the baseline drifts along
    points = changepoints.find(judged, judged["series"].unique(), pd.Timestamp(0, tz="UTC"))
    rate = {cp.case_key: cp for cp in points if cp.metric == "rate"}
    assert len(rate) >= 18
    assert all(cp.window_shift < -0.05 for cp in rate.values())


def test_the_screen_keeps_a_dip_that_recovered_inside_the_window(monkeypatch):
    """The screen judges one split; a 4-night dip of 3.5% in 1% noise that recovered 7
    nights ago needs two. It must find what segmenting every series finds (a screen at the
    full penalty loses half of them)."""
    frame = _scale(
        cases_frame(Fleet(cases=20, nights=60, noise=0.01, seed=17)), [49, 50, 51, 52], 0.965
    )
    judged = judge(frame)
    screened = changepoints.find(judged, judged["series"].unique())
    monkeypatch.setattr(changepoints, "SCREEN", 0.0)
    everything = changepoints.find(judged, judged["series"].unique())
    assert screened == everything
    assert sum(cp.first_bad_run[-4:] in ("0049", "0053") for cp in screened) >= 25


def test_quiet_series_rarely_show_a_change_point():
    fleet = Fleet(testbeds=10, cases=50, nights=60, noise=0.03, seed=15)
    judged = judge(cases_frame(fleet))
    points = changepoints.find(judged, judged["series"].unique())
    assert len(points) / (2 * 500) < 0.03


# --------------------------------------------------------------------------- attribution


def _fleet_with_a_slow_node(all_nodes: bool):
    fleet = Fleet(
        testbeds=5,
        nights=30,
        noise=0.01,
        seed=16,
        step_night=27,
        step=-0.2,
        changed_testbeds=5 if all_nodes else 1,
    )
    cases = cases_frame(fleet)
    runs = runs_frame(cases)
    return judge(cases), runs


@pytest.mark.parametrize(("all_nodes", "verdict"), [(False, "node"), (True, "software/fleet-wide")])
def test_peers_tell_a_bad_node_from_bad_software(all_nodes, verdict):
    judged, runs = _fleet_with_a_slow_node(all_nodes)
    skus = dict(zip(runs["testbed"], runs["sku"], strict=True))
    row = judged.index[judged["run_id"] == "r0000-0027"][0]
    peers = attribution.peers(attribution.peer_table(judged, skus, [row]), row, "rate")
    assert (peers.verdict, peers.n) == (verdict, 4)
    assert peers.percentile == (0.0 if not all_nodes else peers.percentile)
    few = {t: ("other" if t != runs["testbed"].iat[0] else s) for t, s in skus.items()}
    lonely = attribution.peers(attribution.peer_table(judged, few, [row]), row, "rate")
    assert lonely.verdict == "unknown" and lonely.n == 0


def test_environment_diff_names_what_changed_and_only_what_matters():
    cases = cases_frame(Fleet(nights=3))
    runs = runs_frame(cases)
    env = attribution.environments(
        environment_frame(
            runs, {"r0000-0002": {"software.torch": "2.6.0", "host.hostname": "other"}}
        )
    )
    diff, note = attribution.environment_diff(env, "r0000-0001", "r0000-0002")
    assert diff == [{"key": "software.torch", "before": "2.5.1", "after": "2.6.0"}] and not note
    diff, note = attribution.environment_diff(env, "r0000-0000", "r0000-0001")
    assert diff == [] and note == "nothing watched changed between the two runs"
    diff, note = attribution.environment_diff(env, "gone", "r0000-0001")
    assert diff == [] and note == "no environment recorded for gone"
