"""flopwatt to pytest-benchmark: a finished run as its JSON, and live samples as its rounds.

SampleClock hands a measurement's device-timed samples to a running pytest-benchmark fixture
(the nightly suite and the `flopwatt` pytest fixture both use it); to_pytest_benchmark()
writes a finished run as the JSON that `pytest-benchmark compare` and its tooling read.

pytest-benchmark's compare loads files whose "benchmarks" list holds, per benchmark, "name",
"fullname", "group", "params", "param", "extra_info", "options" and "stats" (min, max, mean,
stddev, rounds, median, iqr, q1, q3, outliers, ld15iqr, hd15iqr, ops, total, iterations),
next to "machine_info", "commit_info", "datetime" and "version". Here one round is one raw
per-call sample, so its statistics are flopwatt's samples; flopwatt's own figures (rate, % of
peak, W, rate per W, busbw, clocks) ride along in extra_info, and the device identity in
machine_info (the GPU that pytest-benchmark's own machine_info leaves out).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from bench.results.record import Run
from bench.results.frame import case_dicts, case_label, known
from bench.measuring.stats import quantile

FORMAT_VERSION = "5.1.0"  # the pytest-benchmark JSON layout this follows
EXTRA_FIELDS = (
    "achieved_ops_per_s",
    "peak_ops_per_s",
    "peak_source",
    "frac_of_peak",
    "frac_of_clock_peak",
    "frac_of_measured_peak",
    "avg_power_w",
    "ops_per_j",
    "energy_source",
    "busbw_bytes_per_s",
    "link_utilisation",
    "clock_hz_before",
    "clock_hz_after",
    "sm_clock_hz_median",
    "temp_c_max",
    "timing_mode",
    "stop_reason",
    "ops",
    "bytes",
    "case_id",
)


class SampleClock:
    """A pytest-benchmark timer that reads flopwatt's measured per-call times.

    pytest-benchmark reads its timer before and after each round, and replay() makes each
    round one `play()`, which sets the clock to the next raw sample; a read also sets it back
    to zero. So every round starts at 0 and ends at its sample: pytest-benchmark's statistics,
    table and JSON describe exactly flopwatt's device time, not the host's view of an
    asynchronous launch. Use it as the benchmark marker's timer (MARK_OPTIONS).
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._samples: list[float] = []
        self._next = 0

    def __call__(self) -> float:
        now, self.now = self.now, 0.0
        return now

    def __repr__(self) -> str:
        return "flopwatt.SampleClock()"

    def play(self) -> None:
        self.now = self._samples[self._next]
        self._next += 1

    def replay(self, benchmark: Any, samples_s: Sequence[float]) -> None:
        """Record samples_s (per-call seconds) as the rounds of a pytest-benchmark fixture
        whose timer is this clock; ValueError when there is nothing to record."""
        if not samples_s:
            raise ValueError("no samples to hand to pytest-benchmark")
        self._samples, self._next, self.now = [float(x) for x in samples_s], 0, 0.0
        benchmark.pedantic(self.play, rounds=len(self._samples), iterations=1)

    def mark_options(self) -> dict[str, Any]:
        """The benchmark marker's options that make pytest-benchmark record this clock."""
        return {"timer": self, "warmup": False, "disable_gc": False}


def sample_stats(xs: list[float]) -> dict[str, Any]:
    """pytest-benchmark's Stats fields from per-call seconds."""
    data = sorted(xs)
    n = len(data)
    mean = statistics.fmean(data)
    stddev = statistics.stdev(data) if n > 1 else 0.0
    q1, q3 = quantile(data, 0.25), quantile(data, 0.75)
    iqr = q3 - q1
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    inside = [x for x in data if low <= x <= high] or data
    total = math.fsum(data)
    iqr_out = sum(1 for x in data if x < low or x > high)
    sd_out = sum(1 for x in data if x < mean - stddev or x > mean + stddev)
    return {
        "min": data[0],
        "max": data[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": n,
        "median": statistics.median(data),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_out,
        "stddev_outliers": sd_out,
        "outliers": f"{sd_out};{iqr_out}",
        "ld15iqr": inside[0],
        "hd15iqr": inside[-1],
        "ops": n / total if total > 0 else 0,
        "total": total,
        "iterations": 1,
        "data": xs,
    }


def machine_info(meta: dict[str, Any]) -> dict[str, Any]:
    env = meta.get("environment") or {}
    host = env.get("host") or {}
    identity = (meta.get("device_facts") or {}).get("identity") or {}
    return {
        "node": host.get("hostname"),
        "machine": host.get("machine"),
        "system": (host.get("os") or "").split(" ")[0],
        "release": host.get("os"),
        "python_implementation": "CPython",
        "python_version": host.get("python"),
        "cpu": env.get("cpu") or {},
        "flopwatt_device": meta.get("device"),
        "gpu": env.get("gpu") or {},
        "device_identity": {k: v for k, v in identity.items() if k != "flags"},
        "software": env.get("software") or {},
        "nvml": env.get("nvml") or {},
        "method_version": meta.get("method_version"),
    }


def to_pytest_benchmark(run: Run) -> dict[str, Any]:
    """The run as one pytest-benchmark JSON document (ok cases with raw samples only)."""
    git = ((run.meta.get("environment") or {}).get("git")) or {}
    benchmarks = []
    for case in case_dicts(run):
        if case.get("status") != "ok":
            continue
        try:
            xs = [float(x) for x in run.samples(case["case_id"])["time_s"] if known(x)]
        except (OSError, ValueError, KeyError):
            continue
        if not xs:
            continue
        params = {k: v for k, v in case["params"].items() if k != "shape_label"}
        param = f"{case['params'].get('shape_label', '')}-{case.get('dtype')}"
        if (case.get("world_size") or 1) > 1:
            param += f"-n{case['world_size']}"
        benchmarks.append(
            {
                "group": case.get("kernel"),
                "name": f"{case.get('kernel')}[{param}]",
                "fullname": f"flopwatt::{case_label(case)}",
                "params": {**params, "dtype": case.get("dtype")},
                "param": param,
                "extra_info": {f: case.get(f) for f in EXTRA_FIELDS if known(case.get(f))},
                "options": {
                    "disable_gc": False,
                    "timer": f"flopwatt {case.get('timing_mode')}",
                    "min_rounds": len(xs),
                    "max_time": None,
                    "min_time": None,
                    "warmup": True,
                },
                "stats": sample_stats(xs),
            }
        )
    return {
        "machine_info": machine_info(run.meta),
        "commit_info": {
            "id": git.get("sha"),
            "time": None,
            "author_time": None,
            "dirty": git.get("dirty"),
            "project": "flopwatt",
            "branch": None,
        },
        "benchmarks": benchmarks,
        "datetime": run.meta.get("started_at"),
        "version": FORMAT_VERSION,
    }
