"""The figures of docs/history-check.md on generated histories (seeded numpy noise):

1. quiet fleet: 100 testbeds x 50 cases (5,000 series) x 200 nights, 3% noise: false
   regressions per night across the fleet (every case, both metrics);
2. a 20% step in 3% noise: "regression" by the second night after the step, of 100 series;
3. a 5% step in 2% noise: the change-point detector names the step night (+-1) in one of
   the nightly checks of the 7 nights after it, of 100 series;
and how long judging and segmenting take.

    python scripts/bench_history_verdicts.py [--testbeds 100] [--cases 50] [--nights 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from history_frames import Fleet, cases_frame

from bench.history import changepoints
from bench.history.baseline import BASELINE_RUNS
from bench.history.verdicts import MIN_BASELINE_RUNS, REGRESSION, WARN, judge


def quiet(testbeds: int, cases: int, nights: int, seed: int) -> None:
    frame = cases_frame(Fleet(testbeds=testbeds, cases=cases, nights=nights, seed=seed))
    started = time.perf_counter()
    judged = judge(frame)
    took = time.perf_counter() - started
    false = judged["state"] == REGRESSION
    per_night = false.groupby(judged["started_at"]).sum()
    judged_nights = judged.groupby("started_at")["rate.n"].max() >= MIN_BASELINE_RUNS
    steady_nights = judged.groupby("started_at")["rate.n"].min() >= BASELINE_RUNS
    entering = np.zeros(len(judged), dtype=bool)  # the night a series turns "regression"
    for m in ("rate", "ops_per_j"):
        entering |= (judged[f"{m}.state"] == REGRESSION) & (judged[f"{m}.streak"] == 2)
    new = pd.Series(entering).groupby(judged["started_at"].to_numpy()).sum()
    warns = (judged["state"] == WARN).groupby(judged["started_at"]).sum()
    series = testbeds * cases
    print(
        f"quiet, 3% noise: {series} series x {nights} nights ({len(frame):,} rows) judged in "
        f"{took:.1f} s. False regressions per night: {per_night[judged_nights].mean():.2f} "
        f"over the {judged_nights.sum()} nights with verdicts ({per_night.sum()} in all, "
        f"worst night {per_night.max()}), {per_night[steady_nights].mean():.2f} over the "
        f"{steady_nights.sum()} with a full {BASELINE_RUNS}-run baseline; new ones "
        f"{new[judged_nights.to_numpy()].mean():.2f} per night; warnings "
        f"{warns[judged_nights].mean():.1f} per night"
    )
    started = time.perf_counter()
    latest = judged[judged["started_at"] == judged["started_at"].max()]
    points = changepoints.find(judged, latest["series"].unique())
    took = time.perf_counter() - started
    print(
        f"change points on the last night (quiet fleet, {2 * series} series-metrics): "
        f"{len(points)} reported in {took:.1f} s"
    )


def step20(seed: int) -> None:
    fleet = Fleet(cases=100, nights=40, noise=0.03, seed=seed, step_night=30, step=-0.20)
    judged = judge(cases_frame(fleet))
    night = (judged["started_at"] - judged["started_at"].min()).dt.days
    by_second = judged[(night >= 31) & (night <= 32)]
    hit = by_second.groupby("case_key")["state"].apply(lambda s: (s == REGRESSION).any())
    print(f'20% step in 3% noise: "regression" by the 2nd night after it in {hit.sum()} of 100')


def step5(seed: int) -> None:
    fleet = Fleet(cases=100, nights=60, noise=0.02, seed=seed, step_night=50, step=-0.05)
    frame = cases_frame(fleet)
    night = (frame["started_at"] - frame["started_at"].min()).dt.days
    named: set[str] = set()
    first_named: dict[str, int] = {}
    for last in range(51, 58):  # the nightly checks of the 7 nights after the step night
        judged = judge(frame[night <= last])
        for cp in changepoints.find(judged, judged["series"].unique()):
            bad = int(cp.first_bad_run[-4:])
            if cp.metric == "rate" and abs(bad - 50) <= 1 and cp.case_key not in named:
                named.add(cp.case_key)
                first_named[cp.case_key] = last - 50
    delay = np.median(list(first_named.values())) if first_named else float("nan")
    print(
        f"5% step in 2% noise: step night (+-1) named within 7 nights in {len(named)} of 100 "
        f"(median {delay:.0f} nights after the step)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testbeds", type=int, default=100)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--nights", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    quiet(args.testbeds, args.cases, args.nights, args.seed)
    step20(args.seed)
    step5(args.seed)


if __name__ == "__main__":
    main()
