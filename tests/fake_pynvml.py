"""A scripted stand-in for the pynvml module (nvidia-ml-py), for tests without a GPU.

Install it at the one seam: bench.power.nvml.open_nvml() does `import pynvml` inside the
function, so

    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml([FakeGpu(...)]))

makes open_nvml() use the fake; the `install` helper below does exactly that.

Data-driven: a FakeGpu holds each quantity in NVML's raw units (mW, MHz, mJ), a field may be
a zero-argument callable that is called on every read (e.g. `iter([...]).__next__` scripts a
counter), and `errors` maps an NVML function name to the error code it raises. Later issues
add fields (the energy counter) and the matching functions; nothing else needs to change.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Error codes and constants as nvml.h and nvidia-ml-py define them.
NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_TEMPERATURE_GPU = 0

_ERROR_TEXT = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """Like pynvml.NVMLError: NVMLError(code) builds the subclass registered for that code."""

    _code_to_class: dict[int, type[NVMLError]] = {}  # noqa: RUF012 (mirrors pynvml)
    code = NVML_ERROR_UNKNOWN

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._code_to_class.get(value, NVMLError)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _ERROR_TEXT.get(self.value, f"NVML Error with code {self.value}")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        NVMLError._code_to_class[cls.code] = cls


class NVMLError_NotSupported(NVMLError):  # the real names
    code = NVML_ERROR_NOT_SUPPORTED


class NVMLError_NoPermission(NVMLError):
    code = NVML_ERROR_NO_PERMISSION


class NVMLError_NotFound(NVMLError):
    code = NVML_ERROR_NOT_FOUND


class NVMLError_InvalidArgument(NVMLError):
    code = NVML_ERROR_INVALID_ARGUMENT


class NVMLError_DriverNotLoaded(NVMLError):
    code = NVML_ERROR_DRIVER_NOT_LOADED


class NVMLError_LibraryNotFound(NVMLError):
    code = NVML_ERROR_LIBRARY_NOT_FOUND


class NVMLError_FunctionNotFound(NVMLError):
    code = NVML_ERROR_FUNCTION_NOT_FOUND


class NVMLError_GpuIsLost(NVMLError):
    code = NVML_ERROR_GPU_IS_LOST


@dataclass
class PciInfo:
    """The one field of nvmlPciInfo_t that flopwatt reads."""

    busId: str  # the real field name


@dataclass
class FakeGpu:
    """One scripted device, in NVML's raw units. A callable field is called on each read."""

    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"
    pci_bus_id: str = "00000000:17:00.0"
    name: str = "NVIDIA H100 80GB HBM3"
    serial: str = "1650000000001"
    vbios_version: str = "96.00.74.00.01"
    sm_clock_mhz: Any = 1980
    mem_clock_mhz: Any = 2619
    max_sm_clock_mhz: Any = 1980
    max_mem_clock_mhz: Any = 2619
    enforced_power_limit_mw: Any = 700_000
    default_power_limit_mw: Any = 700_000
    power_usage_mw: Any = 72_500
    temperature_c: Any = 34
    clocks_event_reasons: Any = 0x1
    persistence_mode: int = NVML_FEATURE_ENABLED
    ecc_mode: tuple[int, int] = (NVML_FEATURE_ENABLED, NVML_FEATURE_ENABLED)
    mig_mode: tuple[int, int] = (NVML_DEVICE_MIG_DISABLE, NVML_DEVICE_MIG_DISABLE)
    errors: dict[str, int] = field(default_factory=dict)  # NVML function name -> error code

    def read(self, attr: str) -> Any:
        value = getattr(self, attr)
        return value() if callable(value) else value


class FakePynvml:
    """An object that looks like the pynvml module to bench.power.nvml.

    `missing` names functions the simulated bindings lack (old nvidia-ml-py): getattr on them
    raises AttributeError, as on a real older module. `calls` logs every NVML call made.
    """

    def __init__(
        self,
        gpus: Iterable[FakeGpu] = (),
        *,
        driver_version: str = "550.54.15",
        cuda_driver_version: int = 12040,
        init_error: int | None = None,
        missing: Iterable[str] = (),
        errors: dict[str, int] | None = None,
    ) -> None:
        self.gpus = list(gpus)
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.init_error = init_error
        self.missing = frozenset(missing)
        self.errors = dict(errors or {})  # system-level function name -> error code
        self.calls: list[str] = []
        self.initialized = 0
        self.shutdowns = 0

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("nvml") and name in object.__getattribute__(self, "missing"):
            raise AttributeError(f"module 'pynvml' has no attribute {name!r}")
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        """Constants and error classes, looked up on this module like `pynvml.X`."""
        value = globals().get(name) if name.startswith(("NVML", "nvml")) else None
        if value is None:
            raise AttributeError(f"module 'pynvml' has no attribute {name!r}")
        return value

    # scripting helpers
    def _enter(self, fn_name: str, gpu: FakeGpu | None = None) -> None:
        self.calls.append(fn_name)
        if not self.initialized and fn_name != "nvmlInit":
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        code = (gpu.errors if gpu is not None else self.errors).get(fn_name)
        if code is not None:
            raise NVMLError(code)

    def _device(self, fn_name: str, handle: FakeGpu, attr: str) -> Any:
        self._enter(fn_name, handle)
        return handle.read(attr)

    # system
    def nvmlInit(self) -> None:  # pynvml's names
        self._enter("nvmlInit")
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.initialized -= 1
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self.cuda_driver_version

    # lookup
    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        self._enter("nvmlDeviceGetHandleByUUID")
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> FakeGpu:
        self._enter("nvmlDeviceGetHandleByPciBusId")
        for gpu in self.gpus:
            if gpu.pci_bus_id.upper() == bus_id.upper():
                return gpu
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    # identity
    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return self._device("nvmlDeviceGetName", h, "name")

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> str:
        return self._device("nvmlDeviceGetUUID", h, "uuid")

    def nvmlDeviceGetSerial(self, h: FakeGpu) -> str:
        return self._device("nvmlDeviceGetSerial", h, "serial")

    def nvmlDeviceGetPciInfo(self, h: FakeGpu) -> PciInfo:
        return PciInfo(self._device("nvmlDeviceGetPciInfo", h, "pci_bus_id"))

    def nvmlDeviceGetVbiosVersion(self, h: FakeGpu) -> str:
        return self._device("nvmlDeviceGetVbiosVersion", h, "vbios_version")

    # clocks (MHz)
    def nvmlDeviceGetClockInfo(self, h: FakeGpu, clock: int) -> int:
        attr = {NVML_CLOCK_SM: "sm_clock_mhz", NVML_CLOCK_MEM: "mem_clock_mhz"}[clock]
        return self._device("nvmlDeviceGetClockInfo", h, attr)

    def nvmlDeviceGetMaxClockInfo(self, h: FakeGpu, clock: int) -> int:
        attr = {NVML_CLOCK_SM: "max_sm_clock_mhz", NVML_CLOCK_MEM: "max_mem_clock_mhz"}[clock]
        return self._device("nvmlDeviceGetMaxClockInfo", h, attr)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetCurrentClocksEventReasons", h, "clocks_event_reasons")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: FakeGpu) -> int:
        fn = "nvmlDeviceGetCurrentClocksThrottleReasons"
        return self._device(fn, h, "clocks_event_reasons")

    # power (mW) and temperature (C)
    def nvmlDeviceGetEnforcedPowerLimit(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetEnforcedPowerLimit", h, "enforced_power_limit_mw")

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: FakeGpu) -> int:
        fn = "nvmlDeviceGetPowerManagementDefaultLimit"
        return self._device(fn, h, "default_power_limit_mw")

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetPowerUsage", h, "power_usage_mw")

    def nvmlDeviceGetTemperatureV(self, h: FakeGpu, sensor: int) -> int:
        assert sensor == NVML_TEMPERATURE_GPU
        return self._device("nvmlDeviceGetTemperatureV", h, "temperature_c")

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        assert sensor == NVML_TEMPERATURE_GPU
        return self._device("nvmlDeviceGetTemperature", h, "temperature_c")

    # modes
    def nvmlDeviceGetPersistenceMode(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetPersistenceMode", h, "persistence_mode")

    def nvmlDeviceGetEccMode(self, h: FakeGpu) -> list[int]:
        return list(self._device("nvmlDeviceGetEccMode", h, "ecc_mode"))

    def nvmlDeviceGetMigMode(self, h: FakeGpu) -> list[int]:
        return list(self._device("nvmlDeviceGetMigMode", h, "mig_mode"))


def install(monkeypatch: Any, fake: FakePynvml) -> FakePynvml:
    """Make `import pynvml` (inside bench.power.nvml.open_nvml) return the fake."""
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake
