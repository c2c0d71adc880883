"""scripts/gpu_check_timers.py and sampler_overhead.py: their pure parts, and the flopwatt
side of the timer comparison on this CPU (triton's do_bench needs a GPU: None, with why)."""

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


timers = load("gpu_check_timers")
sampler = load("sampler_overhead")


def test_the_ratio_is_the_median_of_alternated_pairs():
    pairs = [(1.00, 1.00), (1.10, 1.00), (0.99, 1.00), (2.0, 0.0)]  # the last has no do_bench
    assert timers.ratio_of(pairs) == pytest.approx(1.0)
    assert timers.ratio_of([]) is None


def test_do_bench_refuses_a_cpu_with_a_reason():
    bench, reason = timers.do_bench_or_reason("cpu")
    assert bench is None and "CUDA" in reason


def test_on_a_cpu_flopwatt_times_and_the_ratio_is_none_with_the_reason():
    result = timers.measure_pairs(argparse.Namespace(device="cpu", size=32, pairs=1))
    assert result["ratio"] is None and "CUDA devices only" in result["reason"]
    assert result["flopwatt_median_s"] > 0 and result["pairs"] == []
    assert result["op"].startswith("fp32 32x32x32")


def test_the_sampler_kernel_is_sized_to_about_a_millisecond():
    assert sampler.size_for(1e-3, 8192) == 8192
    assert sampler.size_for(8e-3, 8192) == 4096  # 8x the time: half the size
    assert sampler.size_for(1e-6, 256) == 2560  # 1000x too fast: 10x the size
    assert sampler.size_for(10.0, 512) == 256  # never below one lattice step
