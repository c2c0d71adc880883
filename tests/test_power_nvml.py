"""NvmlPowerSource over the scripted fake pynvml: energy, fallbacks, faults, device matching."""

import threading
import time

import pytest
from fake_pynvml import (
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_NOT_SUPPORTED,
    EnergyCounter,
    FailAfter,
    FakeGpu,
    FakePynvml,
    install,
)

from bench.devices.base import DeviceFacts, GpuIdentity
from bench.power.base import NVML_COUNTER, NVML_INTEGRAL, PowerUnavailable
from bench.power.counter_energy import choose_energy
from bench.power.nvml_source import NvmlPowerSource, visible_device_target

UUIDS = [f"GPU-{i}{i}{i}{i}0000-1111-2222-3333-444444444444" for i in range(4)]


def gpus(**overrides):
    return [
        FakeGpu(uuid=u, pci_bus_id=f"00000000:{17 + i:02X}:00.0", **overrides)
        for i, u in enumerate(UUIDS)
    ]


def facts(uuid=None, bus=None, index=0):
    identity = GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132)
    return DeviceFacts(
        "cuda", f"cuda:{index}", identity, {"uuid": uuid, "pci_bus_id": bus, "index": index}
    )


def open_source(monkeypatch, gpu, **kwargs):
    install(monkeypatch, FakePynvml([gpu]))
    return NvmlPowerSource.open(facts(uuid=gpu.uuid), {}, rate_hz=100, **kwargs)


def window(source, seconds):
    win = source.start_window()
    start = time.perf_counter()
    time.sleep(seconds)
    return win.stop(time.perf_counter() - start)


def no_sampler_left():
    return not [t for t in threading.enumerate() if t.name == "flopwatt-power-sampler"]


def test_counter_energy_matches_power_times_time_and_the_integral(monkeypatch):
    gpu = FakeGpu(
        total_energy_mj=EnergyCounter(300.0, period_s=0.01),
        power_instant_mw=300_000,
        power_average_mw=290_000,
        sm_clock_mhz=1755,
        clocks_event_reasons=0x4,
        violation_ns={74: EnergyCounter(1.0, 0.01)},
    )  # cumulative power-cap ns
    source = open_source(monkeypatch, gpu, known_period_s=0.01)
    reading = window(source, 0.4)
    assert reading.energy_source == NVML_COUNTER and reading.reason is None
    assert reading.energy_j == pytest.approx(300.0 * reading.window_s, rel=0.1)
    assert reading.integral_j == pytest.approx(300.0 * reading.window_s, rel=0.1)
    assert len(reading.samples) >= 20
    assert {s.sm_clock_hz for s in reading.samples} == {1755e6}
    assert all(s.event_reasons == 0x4 for s in reading.samples)
    assert "sw_power_cap" in reading.throttle_time_s
    assert no_sampler_left()


def test_a_window_shorter_than_the_counter_period_is_refused(monkeypatch):
    gpu = FakeGpu(total_energy_mj=EnergyCounter(300.0, period_s=0.1))
    source = open_source(monkeypatch, gpu, known_period_s=0.1)
    reading = window(source, 0.03)
    assert (
        reading.energy_j is None
        and "shorter than the energy counter's update period" in reading.reason
    )


def test_a_counter_that_goes_backwards_never_gives_negative_energy(monkeypatch):
    counter = EnergyCounter(300.0, period_s=0.01, reset_after_s=0.15)
    gpu = FakeGpu(total_energy_mj=counter, power_instant_mw=300_000)
    source = open_source(monkeypatch, gpu, known_period_s=0.01)  # no probe: the reset is timed
    reading = window(source, 0.4)
    assert reading.energy_source == NVML_INTEGRAL
    assert "went backwards" in reading.reason and reading.energy_j > 0


def test_nvml_failing_mid_window_gives_no_energy_and_no_thread(monkeypatch):
    gpu = FakeGpu(
        total_energy_mj=EnergyCounter(300.0, 0.01), power_instant_mw=FailAfter(300_000, n=5)
    )
    source = open_source(monkeypatch, gpu, known_period_s=0.01)
    reading = window(source, 0.3)
    assert reading.energy_j is None and "NVML failed during the window" in reading.reason
    assert no_sampler_left()


def test_a_lost_gpu_at_the_window_end_gives_no_energy(monkeypatch):
    gpu = FakeGpu(total_energy_mj=EnergyCounter(300.0, 0.01))
    source = open_source(monkeypatch, gpu, known_period_s=0.01)
    win = source.start_window()
    time.sleep(0.05)
    gpu.errors["nvmlDeviceGetTotalEnergyConsumption"] = NVML_ERROR_GPU_IS_LOST
    reading = win.stop(0.05)
    assert reading.energy_j is None and "GPU is lost" in reading.reason
    assert no_sampler_left()


def test_without_an_energy_counter_the_integral_is_used_and_labelled(monkeypatch):
    gpu = FakeGpu(
        power_instant_mw=200_000,
        errors={"nvmlDeviceGetTotalEnergyConsumption": NVML_ERROR_NOT_SUPPORTED},
    )
    source = open_source(monkeypatch, gpu)
    assert source.update_period_s() is None
    reading = window(source, 0.3)
    assert reading.energy_source == NVML_INTEGRAL
    assert "not supported" in reading.reason
    assert reading.energy_j == pytest.approx(200.0 * reading.window_s, rel=0.1)


def test_average_power_is_used_when_instant_is_not_offered(monkeypatch):
    gpu = FakeGpu(
        total_energy_mj=EnergyCounter(250.0, 0.01),
        power_average_mw=250_000,
        field_errors={186: NVML_ERROR_NOT_SUPPORTED},
    )
    source = open_source(monkeypatch, gpu, known_period_s=0.01)
    assert source.power_channel() == "average"
    reading = window(source, 0.2)
    assert reading.integral_j == pytest.approx(250.0 * reading.window_s, rel=0.15)


def test_a_mig_slice_is_measured_on_its_parent_gpu_and_says_so(monkeypatch):
    parent = FakeGpu(uuid=UUIDS[0], total_energy_mj=EnergyCounter(400.0, 0.01))
    mig = FakeGpu(
        uuid="MIG-aaaa0000-1111-2222-3333-444444444444",
        parent_gpu=parent,
        errors={"nvmlDeviceGetTotalEnergyConsumption": NVML_ERROR_NOT_SUPPORTED},
    )
    install(monkeypatch, FakePynvml([parent, mig]))
    source = NvmlPowerSource.open(facts(uuid=mig.uuid), {}, rate_hz=100, known_period_s=0.01)
    assert source.mig and "MIG slice" in source.reason and "whole GPU" in source.scope
    reading = window(source, 0.2)
    assert reading.energy_source == NVML_COUNTER
    assert reading.energy_j == pytest.approx(400.0 * reading.window_s, rel=0.15)


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_devices_are_matched_by_uuid_whatever_the_order(monkeypatch, order):
    fake = install(monkeypatch, FakePynvml([gpus()[i] for i in order]))
    source = NvmlPowerSource.open(facts(uuid=UUIDS[2], index=0), {"CUDA_VISIBLE_DEVICES": "3"})
    assert source.device.uuid()[0] == UUIDS[2] and source.matched_by == "uuid"
    assert fake.calls.count("nvmlDeviceGetHandleByIndex") == 0


def test_bare_torch_uuids_and_pci_bus_ids_match(monkeypatch):
    install(monkeypatch, FakePynvml(gpus()))
    bare = UUIDS[1].removeprefix("GPU-")
    assert NvmlPowerSource.open(facts(uuid=bare), {}).device.uuid()[0] == UUIDS[1]
    by_bus = NvmlPowerSource.open(facts(bus="00000000:13:00.0"), {})
    assert by_bus.device.uuid()[0] == UUIDS[2] and by_bus.matched_by == "pci_bus_id"


@pytest.mark.parametrize(
    ("visible", "torch_index", "expected_uuid"),
    [
        ("2,0", 0, UUIDS[2]),
        ("2,0", 1, UUIDS[0]),
        (f"{UUIDS[3]},{UUIDS[1]}", 1, UUIDS[1]),
        (None, 1, UUIDS[1]),
    ],
)
def test_cuda_visible_devices_is_the_last_resort(monkeypatch, visible, torch_index, expected_uuid):
    install(monkeypatch, FakePynvml(gpus()))
    environ = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    source = NvmlPowerSource.open(facts(index=torch_index), environ)
    assert source.device.uuid()[0] == expected_uuid
    assert source.matched_by.startswith(("index", "CUDA_VISIBLE_DEVICES"))


def test_unmatched_devices_and_missing_nvml_are_unavailable(monkeypatch):
    install(monkeypatch, FakePynvml(gpus()))
    with pytest.raises(PowerUnavailable, match="not in CUDA_VISIBLE_DEVICES"):
        NvmlPowerSource.open(facts(index=3), {"CUDA_VISIBLE_DEVICES": "0,1"})
    install(monkeypatch, FakePynvml(init_error=12))
    with pytest.raises(PowerUnavailable, match="nvmlInit failed"):
        NvmlPowerSource.open(facts(uuid=UUIDS[0]), {})


def test_visible_device_target_parses_indices_and_uuids():
    assert visible_device_target(0, "3,1") == ("index", 3)
    assert visible_device_target(1, " GPU-abc , 0 ") == ("index", 0)
    assert visible_device_target(0, "GPU-abc,0") == ("uuid", "GPU-abc")
    assert visible_device_target(2, "") == ("index", 2)


@pytest.mark.parametrize(
    ("args", "expected_source", "words"),
    [
        ((10.0, None, 9.5, 1.0, 0.1, None), NVML_COUNTER, None),
        ((10.0, None, 9.5, 0.05, 0.1, None), None, "shorter than"),
        ((-3.0, None, 9.5, 1.0, 0.1, None), NVML_INTEGRAL, "went backwards"),
        ((0.0, None, 9.5, 1.0, 0.1, None), NVML_INTEGRAL, "did not advance"),
        ((0.0, None, None, 1.0, 0.1, None), None, "no usable power samples"),
        ((10.0, None, 9.5, 1.0, 0.1, "boom"), None, "NVML failed during the window: boom"),
        ((None, "not supported on this GPU", 9.5, 1.0, None, None), NVML_INTEGRAL, "unavailable"),
    ],
)
def test_choose_energy_rules(args, expected_source, words):
    energy, source, reason = choose_energy(*args)
    assert source == expected_source
    assert (energy is None) == (source is None)
    if energy is not None:
        assert energy > 0
    if words:
        assert words in reason
