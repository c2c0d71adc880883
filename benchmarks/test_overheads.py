"""pytest-benchmark figures for the harness itself (not for devices).

    pytest benchmarks --benchmark-enable

- `flopwatt --help` start-up: the target is under 0.5 s (it must not import torch).
- the timing engine's cost per sample on a CPU (marks, bookkeeping, stopping rule), which
  bounds the shortest kernel that hot mode can time honestly.
- summarising 100k raw samples, which happens once per case.
"""

import os
import random
import subprocess
import sys
from pathlib import Path

from bench.measuring.stats import summarize
from bench.measuring.timing import Policy, StoppingRule

ROOT = Path(__file__).resolve().parents[1]


def test_help_startup(benchmark):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def help_once():
        subprocess.run(
            [sys.executable, "-m", "bench", "--help"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    benchmark.pedantic(help_once, rounds=10, warmup_rounds=1)
    assert benchmark.stats.stats.median < 0.5


def test_stopping_rule_cost_per_sample(benchmark):
    rng = random.Random(0)
    xs = [1e-3 * rng.uniform(0.9, 1.1) for _ in range(10_000)]

    def feed():
        rule = StoppingRule(Policy())
        for x in xs:
            rule.add(x)
            rule.stop_reason(1.0)

    benchmark(feed)


def test_summarize_100k_samples(benchmark):
    rng = random.Random(0)
    xs = [rng.lognormvariate(0, 0.1) for _ in range(100_000)]
    benchmark(summarize, xs)
