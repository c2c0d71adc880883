"""How long `flopwatt history check` of the latest night takes on a generated fleet, and where
the time goes (reading, verdicts, change points, attribution).

The fleet (100 testbeds x 50 cases x 200 nights = 1,000,000 case rows, 3% noise, one node
20% slower for its last 5 nights) is written as one parquet file per night per table under
--dir: the store's own layout (a file per run per table) is measured by its own benchmark;
this one measures the check's share.

    python scripts/bench_history_check.py --dir /tmp/fleet [--testbeds 100] [--nights 200]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from history_frames import Fleet, cases_frame, environment_frame, runs_frame


def write(root: Path, testbeds: int, cases: int, nights: int) -> None:
    fleet = Fleet(
        testbeds=testbeds,
        cases=cases,
        nights=nights,
        seed=7,
        step_night=nights - 5,
        step=-0.2,
        changed_testbeds=1,
    )
    frame = cases_frame(fleet)
    runs = runs_frame(frame)
    env = environment_frame(runs)
    for table, data in (("runs", runs), ("cases", frame), ("environment", env)):
        (root / table).mkdir(parents=True, exist_ok=True)
        night = data["run_id"].str[-4:]
        for n, part in data.groupby(night):
            part.to_parquet(root / table / f"night-{n}.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--testbeds", type=int, default=100)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--nights", type=int, default=200)
    args = parser.parse_args()
    if not (args.dir / "cases").is_dir():
        started = time.perf_counter()
        write(args.dir, args.testbeds, args.cases, args.nights)
        print(f"wrote the fleet in {time.perf_counter() - started:.1f} s")

    from bench.history import changepoints, check, verdicts
    from bench.history.query import load_cases, load_runs

    timings: dict[str, float] = {}
    originals = (verdicts.judge, changepoints.find, check._attribute, load_cases, load_runs)

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - t

        return wrapper

    check.verdicts.judge = timed("verdicts", originals[0])
    check.changepoints.find = timed("change points (incl. importing ruptures)", originals[1])
    check._attribute = timed("attribution", originals[2])
    import bench.history.query as query

    query.load_cases = timed("reading cases", originals[3])
    query.load_runs = timed("reading runs", originals[4])
    started = time.perf_counter()
    result = check.run_check(args.dir)
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"history check of the latest night: {total:.1f} s, peak RSS {peak:.0f} MiB")
    for name, seconds in timings.items():
        print(f"  {name}: {seconds:.2f} s")
    print(f"  {result.nagios()[1]}")


if __name__ == "__main__":
    main()
