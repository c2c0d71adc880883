"""AmdsmiPowerSource over the fake amdsmi: accumulator energy vs the power integral, the wrap,
the VF fallback (labelled), device matching, and `--power amdsmi` as bad input."""

import time

import pytest
from fake_amdsmi import UINT64_MAX, Accumulator, FakeAmdGpu, FakeAmdsmi, install, mi300x_vf

from bench.devices.base import CpuIdentity, DeviceFacts, GpuIdentity
from bench.power import open_power_source
from bench.power.amdsmi_source import AmdsmiPowerSource
from bench.power.base import AMDSMI_COUNTER, AMDSMI_INTEGRAL, PowerUnavailable

BDF = "0000:0c:00.0"


def rocm_facts(name="AMD Instinct MI300X", bdf="00000000:0C:00.0", index=0):
    identity = GpuIdentity("amd", name, "9.4", 304, gcn_arch="gfx942")
    return DeviceFacts(
        "cuda", f"cuda:{index}", identity, {"uuid": None, "pci_bus_id": bdf, "index": index}
    )


def cpu_facts():
    identity = CpuIdentity("cpu", "x86_64", frozenset(), 1, 1, None, "none")
    return DeviceFacts("cpu", "cpu", identity, {})


def window(source, seconds):
    win = source.start_window()
    start = time.perf_counter()
    time.sleep(seconds)
    return win.stop(time.perf_counter() - start)


def test_accumulator_energy_matches_power_times_time_and_the_integral(monkeypatch):
    gpu = FakeAmdGpu(energy_accumulator=Accumulator(400.0), current_socket_power=400)
    install(monkeypatch, FakeAmdsmi([gpu]))
    source = AmdsmiPowerSource.open(rocm_facts(), {}, rate_hz=100, known_period_s=0.001)
    try:
        reading = window(source, 0.3)
        assert reading.energy_source == AMDSMI_COUNTER and reading.reason is None
        assert reading.energy_j == pytest.approx(400 * reading.window_s, rel=0.05)
        assert reading.integral_j == pytest.approx(reading.energy_j, rel=0.1)
        assert reading.samples[0].sm_clock_hz == 2080e6  # the slowest XCD
        assert reading.samples[0].temp_c == 41.0
        described = source.describe()
        assert described["matched_by"] == "bdf"
        assert described["power_channel"] == "current_socket_power"
        assert described["synthetic_reason"]
    finally:
        source.close()


def test_window_across_the_64_bit_wrap_is_still_counted(monkeypatch):
    start = UINT64_MAX - int(0.05 * 1e6 / 15.259 * 300)  # wraps ~50 ms into the window
    gpu = FakeAmdGpu(energy_accumulator=Accumulator(300.0, start_ticks=start))
    install(monkeypatch, FakeAmdsmi([gpu]))
    source = AmdsmiPowerSource.open(rocm_facts(), {}, rate_hz=50, known_period_s=0.001)
    try:
        reading = window(source, 0.2)
        assert reading.energy_source == AMDSMI_COUNTER
        assert reading.energy_j == pytest.approx(300 * reading.window_s, rel=0.1)
        assert source.describe()["counter_wraps"] == 1
    finally:
        source.close()


def test_counter_reset_falls_back_to_the_integral_with_the_reason(monkeypatch):
    values = iter([10**12, 10**12, 10**12, 5])

    gpu = FakeAmdGpu(energy_accumulator=lambda: next(values, 5), current_socket_power=200)
    install(monkeypatch, FakeAmdsmi([gpu]))
    source = AmdsmiPowerSource.open(rocm_facts(), {}, rate_hz=100, known_period_s=0.001)
    try:
        reading = window(source, 0.1)
        assert reading.energy_source == AMDSMI_INTEGRAL
        assert "backwards" in reading.reason
        assert reading.energy_j == pytest.approx(200 * reading.window_s, rel=0.15)
    finally:
        source.close()


def test_vf_without_accumulator_integrates_power_and_says_so(monkeypatch):
    install(monkeypatch, FakeAmdsmi([mi300x_vf(current_socket_power=350)]))
    source = AmdsmiPowerSource.open(rocm_facts("AMD Instinct MI300X VF"), {}, rate_hz=100)
    try:
        assert source.update_period_s() is None
        reading = window(source, 0.2)
        assert reading.energy_source == AMDSMI_INTEGRAL
        assert "VM guest" in reading.reason and "integrated" in reading.reason
        assert reading.energy_j == pytest.approx(350 * reading.window_s, rel=0.15)
        described = source.describe()
        assert described["virtual_function"] is True
        assert "energy_counter" in described["unavailable"]
    finally:
        source.close()


def test_average_socket_power_is_the_fallback_on_older_parts(monkeypatch):
    gpu = FakeAmdGpu(current_socket_power="N/A", average_socket_power=280)
    install(monkeypatch, FakeAmdsmi([gpu]))
    source = AmdsmiPowerSource.open(rocm_facts(), {}, rate_hz=100, known_period_s=0.001)
    try:
        assert source.channel == "average"
        assert window(source, 0.05).samples[0].power_w == 280
    finally:
        source.close()


def test_auto_picks_amdsmi_on_a_rocm_device(monkeypatch):
    install(monkeypatch, FakeAmdsmi([FakeAmdGpu(energy_accumulator=Accumulator(100.0))]))
    choice = open_power_source("auto", rocm_facts(), environ={})
    try:
        assert choice.source.name == "amdsmi"
    finally:
        choice.source.close()


def test_amdsmi_without_the_module_is_unavailable(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "amdsmi", None)
    with pytest.raises(PowerUnavailable, match="cannot import amdsmi"):
        open_power_source("amdsmi", rocm_facts(), environ={})
    choice = open_power_source("auto", rocm_facts(), environ={})  # auto falls back, says why
    assert choice.source.name != "amdsmi" and "amdsmi" in choice.skipped[0]


def test_amdsmi_on_a_cpu_without_the_fake_is_unavailable(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "amdsmi", None)
    with pytest.raises(PowerUnavailable, match="no ROCm device"):
        open_power_source("amdsmi", cpu_facts(), environ={})


def test_amdsmi_on_a_cpu_with_the_fake_is_a_synthetic_source(monkeypatch):
    install(monkeypatch, FakeAmdsmi([FakeAmdGpu(energy_accumulator=Accumulator(100.0))]))
    choice = open_power_source("amdsmi", cpu_facts(), environ={})
    try:
        described = choice.source.describe()
        assert described["matched_by"].startswith("synthetic")
        assert "fake" in described["synthetic_reason"]
    finally:
        choice.source.close()


def test_no_device_at_the_bdf_and_no_hip_id_is_unavailable(monkeypatch):
    gpu = FakeAmdGpu(hip_id=3)
    install(monkeypatch, FakeAmdsmi([gpu]))
    with pytest.raises(PowerUnavailable, match="no amdsmi device"):
        AmdsmiPowerSource.open(rocm_facts(bdf="0000:99:00.0", index=1), {})


def test_a_driver_lost_while_matching_is_unavailable_not_a_crash(monkeypatch):
    from fake_amdsmi import AMDSMI_STATUS_DRIVER_NOT_LOADED

    gpu = FakeAmdGpu(errors={"amdsmi_get_gpu_device_uuid": AMDSMI_STATUS_DRIVER_NOT_LOADED})
    fake = install(monkeypatch, FakeAmdsmi([gpu]))
    facts = rocm_facts(bdf="0000:99:00.0")
    facts.extra["uuid"] = "8dff74a1-0000-1000-80a4-3dfd6a1f3b7c"
    with pytest.raises(PowerUnavailable, match="Driver not loaded"):
        AmdsmiPowerSource.open(facts, {})
    assert fake.initialized == 0  # the session was closed
