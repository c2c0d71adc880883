"""How long a projection takes: 20 values of N, three bands (with the knee), excluding loading
the runs and drawing the plot. The target is under 1 s on a 2-core machine.

    python scripts/bench_projection.py [RUN_DIR] [--repeats 5]   # exit 0 under 1 s, 1 over

The run folder defaults to the test suite's synthetic H100 run in tests/data (plausible
matmul and allreduce figures, no GPU measured them); loading and calibration are timed
separately and reported, not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bench.projection import setup
from bench.projection.from_runs import calibrate
from bench.projection.iteration import Parallel
from bench.projection.models import PRESETS
from bench.projection.project import Power, project
from bench.results.record import load_run

ROOT = Path(__file__).resolve().parents[1]
NS = [512 * k for k in range(1, 21)]  # 512 ... 10,240: 20 values, all divisible by TP x PP
TARGET_S = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, default=ROOT / "tests/data/gpu-run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    cal = calibrate([load_run(args.run)])
    comp = setup.compute(cal)
    fab, _ = setup.fabric(cal.fits, {})
    loading = time.perf_counter() - started
    par = Parallel(tp=8, pp=8, global_batch=8192, vp=2)
    power = Power(cal.gpu_power_w, 350.0, 1.2, 0.1)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = project(NS, PRESETS["gpt3-175b"], par, comp, fab, cal.max_world_size, power)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(
        f"projection of {len(NS)} N x 3 bands ({len(out['rows'])} rows, knees {out['knee']}): "
        f"median {median * 1e3:.1f} ms over {args.repeats} repeats "
        f"(min {min(times) * 1e3:.1f} ms); loading + calibration {loading * 1e3:.0f} ms, "
        "not counted"
    )
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
