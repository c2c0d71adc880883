"""bench.hardware.nvml against a scripted fake pynvml, plus the real no-driver path."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from fake_pynvml import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_FUNCTION_NOT_FOUND,
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_ERROR_UNKNOWN,
    NVML_FEATURE_DISABLED,
    NVML_FEATURE_ENABLED,
    FakeGpu,
    FakePynvml,
    install,
)

from bench.hardware.nvml import (
    NvmlCallFailed,
    NvmlUnavailable,
    decode_clock_event_reasons,
    normalize_pci_bus_id,
    normalize_uuid_candidates,
    open_nvml,
)

UUID_A = "GPU-aaaaaaaa-0000-0000-0000-000000000001"
UUID_B = "GPU-bbbbbbbb-0000-0000-0000-000000000002"
MIG_C = "MIG-cccccccc-0000-0000-0000-000000000003"


def two_gpus(**b_fields: object) -> list[FakeGpu]:
    return [
        FakeGpu(uuid=UUID_A, pci_bus_id="00000000:17:00.0", name="NVIDIA A"),
        FakeGpu(uuid=UUID_B, pci_bus_id="00000000:3B:00.0", name="NVIDIA B", **b_fields),
    ]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakePynvml:
    return install(monkeypatch, FakePynvml(two_gpus()))


# lookup


@pytest.mark.parametrize("uuid", [UUID_B, UUID_B.removeprefix("GPU-"), UUID_B.upper()])
def test_device_by_uuid_accepts_prefixed_and_bare_forms(fake: FakePynvml, uuid: str) -> None:
    with open_nvml() as nvml:
        assert nvml.device_by_uuid(uuid).name() == ("NVIDIA B", None)


def test_bare_uuid_of_a_mig_instance_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakePynvml([FakeGpu(uuid=MIG_C, name="MIG 1g.10gb")]))
    with open_nvml() as nvml:
        assert nvml.device_by_uuid(MIG_C.removeprefix("MIG-")).name() == ("MIG 1g.10gb", None)
        assert nvml.device_by_uuid(MIG_C).uuid() == (MIG_C, None)


def test_unknown_uuid_raises_unavailable_naming_what_was_tried(fake: FakePynvml) -> None:
    with open_nvml() as nvml, pytest.raises(NvmlUnavailable) as info:
        nvml.device_by_uuid("deadbeef-0000-0000-0000-000000000000")
    message = str(info.value)
    assert "GPU-deadbeef" in message and "MIG-deadbeef" in message
    assert "\n" not in message


@pytest.mark.parametrize("bus_id", ["0000:3b:00.0", "00000000:3B:00.0", "3b:00.0", "0:3b:00"])
def test_device_by_pci_bus_id_accepts_cuda_nvml_and_lspci_forms(
    fake: FakePynvml, bus_id: str
) -> None:
    with open_nvml() as nvml:
        device = nvml.device_by_pci_bus_id(bus_id)
        assert device.uuid() == (UUID_B, None)
        assert device.pci_bus_id() == ("00000000:3B:00.0", None)


def test_unknown_or_malformed_pci_bus_id_raises_unavailable(fake: FakePynvml) -> None:
    with open_nvml() as nvml:
        with pytest.raises(NvmlUnavailable, match="no NVML device with PCI bus id"):
            nvml.device_by_pci_bus_id("0000:99:00.0")
        with pytest.raises(NvmlUnavailable, match="not a PCI bus id"):
            nvml.device_by_pci_bus_id("cuda:0")


def test_normalizers() -> None:
    assert normalize_pci_bus_id("0000:17:00.0") == "00000000:17:00.0"
    assert normalize_uuid_candidates("GPU-ab") == ["GPU-ab"]
    assert normalize_uuid_candidates("mig-ab") == ["MIG-ab"]
    assert normalize_uuid_candidates("AB") == ["GPU-ab", "MIG-ab"]


# readings and units


def test_readings_are_converted_to_si_units(fake: FakePynvml) -> None:
    with open_nvml() as nvml:
        device = nvml.device_by_uuid(UUID_A)
        assert device.sm_clock_hz() == (1980e6, None)
        assert device.mem_clock_hz() == (2619e6, None)
        assert device.max_sm_clock_hz() == (1980e6, None)
        assert device.max_mem_clock_hz() == (2619e6, None)
        assert device.power_limit_w() == (700.0, None)
        assert device.default_power_limit_w() == (700.0, None)
        assert device.power_usage_w() == (72.5, None)
        assert device.temperature_c() == (34.0, None)
        assert device.persistence_mode() == (True, None)
        assert device.ecc_mode() == (True, None)
        assert device.mig_mode() == (False, None)
        assert device.vbios_version() == ("96.00.74.00.01", None)
        assert device.serial() == ("1650000000001", None)
        assert device.clocks_event_reasons() == (0x1, None)


def test_ecc_reports_the_current_not_the_pending_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(uuid=UUID_A, ecc_mode=(NVML_FEATURE_DISABLED, NVML_FEATURE_ENABLED))
    install(monkeypatch, FakePynvml([gpu]))
    with open_nvml() as nvml:
        assert nvml.device_by_uuid(UUID_A).ecc_mode() == (False, None)


def test_callable_fields_script_successive_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(uuid=UUID_A, power_usage_mw=iter([100_000, 250_500]).__next__)
    install(monkeypatch, FakePynvml([gpu]))
    with open_nvml() as nvml:
        device = nvml.device_by_uuid(UUID_A)
        assert [device.power_usage_w()[0], device.power_usage_w()[0]] == [100.0, 250.5]


def test_driver_versions(fake: FakePynvml) -> None:
    with open_nvml() as nvml:
        assert nvml.driver_version() == "550.54.15"
        assert nvml.cuda_driver_version() == "12.4"
        assert nvml.cuda_driver_version_reading() == ("12.4", None)


def test_system_call_failure_is_none_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    errors = {"nvmlSystemGetCudaDriverVersion": NVML_ERROR_UNKNOWN}
    install(monkeypatch, FakePynvml(two_gpus(), errors=errors))
    with open_nvml() as nvml:
        assert nvml.cuda_driver_version() is None
        assert nvml.cuda_driver_version_reading() == (
            None,
            "nvmlSystemGetCudaDriverVersion: Unknown Error",
        )


# error mapping


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (NVML_ERROR_NOT_SUPPORTED, "not supported on this GPU"),
        (NVML_ERROR_NO_PERMISSION, "needs root"),
        (NVML_ERROR_UNKNOWN, "nvmlDeviceGetEnforcedPowerLimit: Unknown Error"),
    ],
)
def test_errors_become_none_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    gpus = two_gpus(errors={"nvmlDeviceGetEnforcedPowerLimit": code})
    install(monkeypatch, FakePynvml(gpus))
    with open_nvml() as nvml:
        device = nvml.device_by_uuid(UUID_B)
        assert device.power_limit_w() == (None, reason)
        assert device.default_power_limit_w() == (700.0, None)  # other getters unaffected


def test_gpu_is_lost_raises_call_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = two_gpus(errors={"nvmlDeviceGetPowerUsage": NVML_ERROR_GPU_IS_LOST})
    install(monkeypatch, FakePynvml(gpus))
    with open_nvml() as nvml:
        device = nvml.device_by_uuid(UUID_B)
        with pytest.raises(NvmlCallFailed) as info:
            device.power_usage_w()
    assert info.value.fn_name == "nvmlDeviceGetPowerUsage"
    assert info.value.error == "GPU is lost"


def test_gpu_lost_during_lookup_raises_call_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePynvml(two_gpus(), errors={"nvmlDeviceGetHandleByUUID": NVML_ERROR_GPU_IS_LOST})
    install(monkeypatch, fake)
    with open_nvml() as nvml, pytest.raises(NvmlCallFailed):
        nvml.device_by_uuid(UUID_A)


# clock-event reasons


def test_decode_clock_event_reasons() -> None:
    assert decode_clock_event_reasons(0) == []
    assert decode_clock_event_reasons(0x1) == ["GpuIdle"]
    assert decode_clock_event_reasons(0x4 | 0x40 | 0x80) == [
        "SwPowerCap",
        "HwThermalSlowdown",
        "HwPowerBrakeSlowdown",
    ]
    assert decode_clock_event_reasons(0x1FF) == [
        "GpuIdle",
        "ApplicationsClocksSetting",
        "SwPowerCap",
        "HwSlowdown",
        "SyncBoost",
        "SwThermalSlowdown",
        "HwThermalSlowdown",
        "HwPowerBrakeSlowdown",
        "DisplayClockSetting",
    ]
    assert decode_clock_event_reasons(0x8 | 0x1000) == ["HwSlowdown", "0x1000"]


def test_old_bindings_fall_back_to_throttle_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePynvml(
        [FakeGpu(uuid=UUID_A, clocks_event_reasons=0x4)],
        missing={"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetTemperatureV"},
    )
    install(monkeypatch, fake)
    with open_nvml() as nvml:
        device = nvml.device_by_uuid(UUID_A)
        assert device.clocks_event_reasons() == (0x4, None)
        assert device.temperature_c() == (34.0, None)
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" in fake.calls
    assert "nvmlDeviceGetTemperature" in fake.calls


def test_old_driver_falls_back_to_throttle_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    errors = {"nvmlDeviceGetCurrentClocksEventReasons": NVML_ERROR_FUNCTION_NOT_FOUND}
    fake = FakePynvml([FakeGpu(uuid=UUID_A, clocks_event_reasons=0x20, errors=errors)])
    install(monkeypatch, fake)
    with open_nvml() as nvml:
        assert nvml.device_by_uuid(UUID_A).clocks_event_reasons() == (0x20, None)


def test_new_bindings_use_the_event_reasons_call(fake: FakePynvml) -> None:
    with open_nvml() as nvml:
        nvml.device_by_uuid(UUID_A).clocks_event_reasons()
    assert "nvmlDeviceGetCurrentClocksEventReasons" in fake.calls
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" not in fake.calls


def test_not_supported_event_reasons_does_not_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    errors = {"nvmlDeviceGetCurrentClocksEventReasons": NVML_ERROR_NOT_SUPPORTED}
    fake = FakePynvml([FakeGpu(uuid=UUID_A, errors=errors)])
    install(monkeypatch, fake)
    with open_nvml() as nvml:
        reading = nvml.device_by_uuid(UUID_A).clocks_event_reasons()
    assert reading == (None, "not supported on this GPU")
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" not in fake.calls


# session lifecycle


def test_close_is_idempotent(fake: FakePynvml) -> None:
    nvml = open_nvml()
    assert fake.initialized == 1
    nvml.close()
    nvml.close()
    assert fake.shutdowns == 1
    assert fake.initialized == 0


def test_init_failure_in_the_fake_raises_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakePynvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED))
    with pytest.raises(NvmlUnavailable, match="nvmlInit failed: Driver Not Loaded"):
        open_nvml()


def test_missing_pynvml_raises_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import` fail
    with pytest.raises(NvmlUnavailable, match="nvidia-ml-py"):
        open_nvml()


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is None, reason="nvidia-ml-py missing")
def test_open_nvml_on_this_machine_is_unavailable_or_works() -> None:
    """The real path: real pynvml. Without a driver, one line that says what and what to do."""
    try:
        nvml = open_nvml()
    except NvmlUnavailable as err:
        message = str(err)
        assert message.startswith("nvmlInit failed:")
        assert "\n" not in message
        assert "NVIDIA driver" in message
        return
    nvml.close()  # a machine with a driver: the real session opened and closed cleanly


def test_importing_the_modules_imports_neither_pynvml_nor_torch() -> None:
    code = (
        "import sys, bench.hardware.nvml, bench.devices.environment, bench.power; "
        "print('pynvml' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
