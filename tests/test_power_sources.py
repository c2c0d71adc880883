"""RAPL on a fake sysfs tree, the TDP estimate, choosing a source, and the idle baseline."""

import os
import time

import pytest
from fake_pynvml import EnergyCounter, FakeGpu, FakePynvml, install

from bench.devices.base import CpuIdentity, DeviceFacts, GpuIdentity
from bench.power import open_power_source
from bench.power.base import ESTIMATE, RAPL, PowerUnavailable
from bench.power.estimate import EstimatePowerSource
from bench.power.idle import measure_idle
from bench.power.null import NullPowerSource
from bench.power.rapl import RaplPowerSource, counter_delta_uj, find_zones

MAX = 262_143_328_850
CPU = DeviceFacts("cpu", "cpu", CpuIdentity("Test CPU", "x86_64", frozenset(), 2, 2, None, "-"))
GPU = DeviceFacts(
    "cuda",
    "cuda:0",
    GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132),
    {"uuid": FakeGpu().uuid, "index": 0},
)


def put(path, value):
    """Replace a counter file atomically: sysfs reads never see a half-written value."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def zone(root, name, label, value, max_range=MAX):
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(label + "\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    (path / "energy_uj").write_text(f"{value}\n")
    return path


@pytest.fixture
def powercap(tmp_path):
    root = tmp_path / "powercap"
    zone(root, "intel-rapl:0", "package-0", 1_000_000)
    zone(root, "intel-rapl:1", "package-1", 2_000_000)
    zone(root, "intel-rapl:0:0", "core", 500)  # a sub-zone: inside package-0, not summed
    zone(root, "intel-rapl-mmio:0", "package-0", 7)  # duplicate of the MSR zone
    return root


def test_only_top_level_msr_package_zones_are_used(powercap):
    assert [z.name for z in find_zones(powercap)] == ["package-0", "package-1"]


def test_wraparound_delta():
    assert counter_delta_uj(100, 250, MAX) == 150
    assert counter_delta_uj(MAX - 100, 50, MAX) == 150


def test_a_window_sums_packages_and_survives_two_wraps(powercap):
    source = RaplPowerSource.open(powercap, rate_hz=50)
    source._period, source._probed = 0.001, True
    p0, p1 = powercap / "intel-rapl:0" / "energy_uj", powercap / "intel-rapl:1" / "energy_uj"
    win = source.start_window()
    steps = [MAX - 1_000_000, 4_000_000, MAX - 2_000_000, 3_000_000]  # wraps twice
    expected = (MAX - 1_000_000 - 1_000_000) + 5_000_000 + (MAX - 6_000_000) + 5_000_000
    for value in steps:
        time.sleep(0.08)
        put(p0, value)
    put(p1, 2_500_000)  # package-1 adds 0.5 J
    time.sleep(0.08)
    reading = win.stop(0.4)
    assert reading.energy_source == RAPL
    assert reading.energy_j == pytest.approx((expected + 500_000) / 1e6)
    assert reading.samples and reading.scope == "CPU packages (RAPL)"


def test_absent_or_unreadable_rapl_is_unavailable(tmp_path, powercap):
    with pytest.raises(PowerUnavailable, match="does not exist"):
        RaplPowerSource.open(tmp_path / "nothing")
    (powercap / "intel-rapl:1" / "energy_uj").unlink()
    (powercap / "intel-rapl:1" / "energy_uj").mkdir()  # unreadable as a file, even for root
    with pytest.raises(PowerUnavailable, match="cannot read"):
        RaplPowerSource.open(powercap)


def test_cpu_estimate_is_tdp_times_process_utilisation():
    clock = iter([10.0, 10.5])  # 0.5 s of CPU time over a 1 s window on 2 CPUs -> 25%
    source = EstimatePowerSource(
        100.0, "--tdp-w", "cpu", cpu_seconds=lambda: next(clock), logical_cpus=2
    )
    reading = source.start_window().stop(1.0)
    assert reading.energy_source == ESTIMATE and reading.energy_j == pytest.approx(25.0)
    assert "TDP 100 W (--tdp-w) x utilisation 0.25" in reading.reason
    assert not source.has_idle_model()


def test_gpu_estimate_assumes_full_load_and_takes_tdp_from_the_table(tmp_path):
    choice = open_power_source("estimate", GPU)
    reading = choice.source.start_window().stop(2.0)
    assert reading.energy_j == pytest.approx(700.0 * 2.0)
    assert "H100 SXM5 80GB" in reading.reason


def test_auto_on_a_cpu_prefers_rapl_then_estimate_then_none(tmp_path, powercap):
    assert open_power_source("auto", CPU, powercap=powercap).source.name == "rapl"
    choice = open_power_source("auto", CPU, tdp_w=150, powercap=tmp_path / "none")
    assert choice.source.name == "estimate" and choice.skipped[0].startswith("rapl:")
    choice = open_power_source("auto", CPU, powercap=tmp_path / "none")
    assert choice.source.name == "none" and not choice.source.available
    assert "rapl:" in choice.source.reason and "--tdp-w" in choice.source.reason


def test_auto_on_a_gpu_prefers_nvml_then_the_table_estimate(monkeypatch):
    install(monkeypatch, FakePynvml([FakeGpu(total_energy_mj=EnergyCounter(100, 0.01))]))
    assert open_power_source("auto", GPU, environ={}).source.name == "nvml"
    install(monkeypatch, FakePynvml(init_error=12))
    choice = open_power_source("auto", GPU, environ={})
    assert choice.source.name == "estimate" and "nvmlInit failed" in choice.skipped[0]


@pytest.mark.parametrize(
    ("kind", "facts", "words"),
    [
        ("nvml", CPU, "this run is on a CPU"),
        ("rapl", GPU, "on a GPU"),
        ("estimate", CPU, "pass --tdp-w"),
    ],
)
def test_named_sources_that_cannot_work_are_errors(kind, facts, words):
    with pytest.raises(PowerUnavailable, match=words):
        open_power_source(kind, facts)


def test_idle_baseline(powercap):
    source = RaplPowerSource.open(powercap, rate_hz=50)
    source._period, source._probed = 0.001, True
    path = powercap / "intel-rapl:0" / "energy_uj"

    def sleep(seconds):
        time.sleep(seconds / 2)
        put(path, 1_000_000 + 3_000_000)  # 3 J during the idle window
        time.sleep(seconds / 2)

    idle = measure_idle(source, 0.2, sleep=sleep)
    assert idle.energy_source == RAPL
    assert idle.power_w == pytest.approx(3.0 / idle.seconds)
    no_model = measure_idle(EstimatePowerSource(100, "--tdp-w", "cpu"), 1.0)
    assert no_model.power_w is None and "no idle model" in no_model.reason
    assert "no power source" in measure_idle(NullPowerSource("x"), 1.0).reason
    assert "disabled" in measure_idle(source, 0).reason
