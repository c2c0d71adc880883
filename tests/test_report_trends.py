"""The report's trends (`flopwatt report --history DIR`) rendered with real matplotlib from a
real history, read back from the Figure: panels, units, limits, band, change point, GPU swap,
legend; and the command's files and bad input."""

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from history_frames import (
    START,
    Fleet,
    cases_frame,
    environment_frame,
    node_testbed,
    runs_frame,
    write_history,
)
from matplotlib.collections import PolyCollection
from run_copies import DATA

from bench.cli import main
from bench.commands.report import trends
from bench.commands.report.trend_plots import trend_figure

SLOW = node_testbed(0)
SWAPPED = "node0002/GPU-new/H100"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """3 testbeds x 3 cases x 40 nights; node 0 loses 20% on night 34; node 2's GPU is
    swapped on night 20 (a new testbed linked to the old one)."""
    fleet = Fleet(
        testbeds=3,
        cases=3,
        nights=40,
        noise=0.01,
        seed=31,
        step_night=34,
        step=-0.2,
        changed_testbeds=1,
    )
    cases = cases_frame(fleet)
    swapped = cases["run_id"].str.startswith("r0002") & (
        cases["started_at"] >= START + pd.Timedelta(days=20)
    )
    cases.loc[swapped, "testbed"] = SWAPPED
    runs = runs_frame(cases)
    runs.loc[runs["testbed"] == SWAPPED, "previous_testbed"] = node_testbed(2)
    root = tmp_path_factory.mktemp("history")
    return write_history(root, cases, runs, environment_frame(runs))


@pytest.fixture(scope="module")
def worst(history):
    found, caption = trends.load_trends(history, None)
    return found[0], found, caption


def test_the_worst_cases_come_first_and_the_caption_says_what_was_left_out(history, monkeypatch):
    monkeypatch.setattr(trends, "MAX_CASES", 2)
    found, caption = trends.load_trends(history, None)
    assert len(found) == 2 and "the 2 of 3 cases with the worst latest verdict" in caption
    assert "3 regression" in caption
    first = found[0].rows
    latest = first[first["started_at"] == first["started_at"].max()]
    assert (latest.loc[latest["testbed"] == SLOW, "state"] == "regression").all()


def test_trend_figure_has_both_metrics_in_si_units_with_the_data_inside(worst):
    trend, _, _ = worst
    fig, note = trend_figure(trend)
    assert note == ""
    top, bottom = fig.axes[:2]
    assert (top.get_ylabel(), bottom.get_ylabel()) == ("achieved rate", "ops per joule")
    assert bottom.get_xlabel() == "run started (UTC)"
    fig.canvas.draw()
    assert any(t.get_text().endswith("TFLOP/s") for t in top.get_yticklabels())
    assert any(t.get_text().endswith("GFLOP/J") for t in bottom.get_yticklabels())
    lo, hi = top.get_ylim()
    values = trend.rows["rate.value"]
    assert lo <= values.min() and values.max() <= hi and lo > 0  # not from zero: the band
    testbeds = trend.rows["testbed"].nunique()
    assert len([c for c in top.collections if isinstance(c, PolyCollection)]) == testbeds


def _day(x):
    when = mdates.num2date(x) if isinstance(x, float) else pd.Timestamp(x)
    return when.date().isoformat()


def test_change_point_and_gpu_swap_are_marked_where_they_happened(worst):
    trend, _, _ = worst
    fig, _ = trend_figure(trend)
    top = fig.axes[0]
    vertical = {
        (line.get_linestyle(), _day(line.get_xdata()[0]))
        for line in top.get_lines()
        if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
    }
    assert (":", "2026-02-04") in vertical  # night 34: the first bad run
    assert ("--", "2026-01-21") in vertical  # night 20: the swap
    assert any(t.get_text().startswith("GPU swap → node0002") for t in top.texts)
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {SLOW, SWAPPED, node_testbed(2), "baseline ± threshold"} <= labels
    assert {"change point (first bad run)", "GPU swap (new testbed)"} <= labels


def test_no_band_before_the_baseline_has_its_runs(worst):
    trend, _, _ = worst
    fig, _ = trend_figure(trend)
    band = next(c for c in fig.axes[0].collections if isinstance(c, PolyCollection))
    xs = band.get_paths()[0].vertices[:, 0]
    first = mdates.date2num(np.datetime64(START.tz_localize(None)))
    assert xs.min() >= first + 10 - 1e-9  # 10 eligible runs before the first band


def test_report_command_writes_the_trends(history, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--history", str(history), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## Trends" in text and "plots/trend_1.png" in text
    assert (out / "plots" / "trend_1.png").read_bytes()[:4] == b"\x89PNG"
    assert "r0000-0034" in text  # the change point's first bad run


def test_trends_follow_a_runs_report(history, tmp_path):
    out = tmp_path / "report"
    assert (
        main(["report", str(DATA / "cpu-run"), "--history", str(history), "--out", str(out)]) == 0
    )
    text = (out / "report.md").read_text()
    assert text.index("## Results") < text.index("## Trends")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report"], "give RUN_DIR"),
        (["report", "--history", "{h}"], "give --out DIR"),
        (["report", "--history", "{h}", "--out", "{o}", "--testbed", "x"], "unknown testbed"),
        (["report", "--history", "{o}", "--out", "{o}"], "not a flopwatt history"),
    ],
)
def test_report_history_bad_input(argv, message, history, tmp_path, capsys):
    argv = [a.format(h=history, o=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
