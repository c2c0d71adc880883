"""The `flopwatt` pytest fixture, run by pytest itself (pytester) on a real CPU matmul."""

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

# Imported here, not first inside a pytester run: pytester's in-process runs drop the modules
# they imported, and torch does not survive being imported a second time.
import torch  # noqa: F401

import bench.api.measurement  # noqa: F401

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

# Once flopwatt is installed with this pyproject.toml the entry point loads the plugin;
# naming it again with -p would register it twice.
INSTALLED = any(ep.value == "bench.pytest_plugin" for ep in entry_points(group="pytest11"))
PLUGIN = [] if INSTALLED else ["-p", "bench.pytest_plugin"]

MEASURING_TEST = """
import json

import pytest
import torch

CALLS = []


@pytest.mark.benchmark(group="gemm")
def test_mm(flopwatt):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a = torch.randn(32, 32)
    try:
        m = flopwatt(lambda: CALLS.append(torch.mm(a, a)), ops=2 * 32**3, dtype="fp32",
                     device="cpu", max_time_s=0.2)
    finally:
        torch.set_num_threads(threads)
    with open("measured.json", "w") as fh:
        json.dump({"calls": len(CALLS)} if m is None else {"samples_s": list(m.samples_s),
                                                           "time_median_s": m.time_median_s}, fh)
"""


def run_measuring_test(pytester: pytest.Pytester, *args: str) -> dict:
    pytester.makepyfile(test_measures=MEASURING_TEST)
    result = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    return json.loads((pytester.path / "measured.json").read_text())


def test_the_benchmark_json_carries_flopwatt_figures_and_device_timed_samples(pytester):
    measured = run_measuring_test(pytester, "--benchmark-enable", "--benchmark-json=out.json")
    doc = json.loads((pytester.path / "out.json").read_text())
    (bench,) = doc["benchmarks"]
    info, stats = bench["extra_info"], bench["stats"]
    # pytest-benchmark's rounds are exactly flopwatt's per-call samples.
    assert stats["data"] == measured["samples_s"]
    assert stats["rounds"] == info["n_samples"] == len(measured["samples_s"])
    assert stats["median"] == pytest.approx(info["time_median_s"], rel=1e-9)
    assert bench["options"]["timer"] == "flopwatt.SampleClock()"
    assert bench["group"] == "gemm"  # the test's own marker options are kept
    # The figures, named as in cases.jsonl; an unknown one is None with its reason.
    assert info["ops"] == 2 * 32**3 and info["dtype"] == "fp32" and info["device"] == "cpu"
    assert info["achieved_ops_per_s"] == pytest.approx(info["ops"] / info["time_median_s"])
    assert info["frac_of_peak"] == pytest.approx(
        info["achieved_ops_per_s"] / info["peak_ops_per_s"]
    )
    for name in ("energy_j", "ops_per_j"):
        assert info[name] is not None or info["reasons"][name]
    device = doc["machine_info"]["flopwatt"]["devices"]["cpu"]
    assert device["kind"] == "cpu" and device["identity"]["arch"]


def test_without_pytest_benchmark_the_fixture_still_measures(pytester):
    measured = run_measuring_test(pytester, "-p", "no:benchmark")
    assert len(measured["samples_s"]) >= 1 and measured["time_median_s"] > 0


def test_disabled_benchmarks_call_the_function_once_and_measure_nothing(pytester):
    pytester.makepyfile(test_measures=MEASURING_TEST)
    result = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", "--benchmark-disable")
    result.assert_outcomes(passed=1, warnings=0)
    assert json.loads((pytester.path / "measured.json").read_text()) == {"calls": 1}


def test_loading_the_plugin_imports_no_torch():
    code = "import bench.pytest_plugin, sys; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_a_pytest_run_with_the_plugin_and_pytest_benchmark_imports_no_torch(pytester, monkeypatch):
    """Every hook of the plugin runs here (configure, collection, machine_info) in a run
    whose tests never ask for the fixture, as in every other project's test suite."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_no_torch(benchmark):
            benchmark(sum, range(10))
            assert "torch" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN, "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)


def test_pyproject_declares_the_pytest11_entry_point():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"flopwatt": "bench.pytest_plugin"}
