"""A scripted stand-in for the pynvml module (nvidia-ml-py), for tests without a GPU.

Install it at the one seam: bench.hardware.nvml.open_nvml() does `import pynvml` inside the
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
NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_AGGREGATE_ECC = 1
NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = 0
NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 1
NVML_NVLINK_MAX_LINKS = 36
NVML_NVLINK_ERROR_DL_REPLAY = 0
NVML_NVLINK_ERROR_DL_RECOVERY = 1
NVML_NVLINK_ERROR_DL_CRC_FLIT = 2
NVML_NVLINK_ERROR_DL_CRC_DATA = 3
NVLINK_COUNTERS = {0: "replay", 1: "recovery", 2: "crc_flit", 3: "crc_data"}

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
    total_energy_mj: Any = 1_000_000
    power_instant_mw: Any = 72_500
    power_average_mw: Any = 72_000
    violation_ns: dict[int, Any] = field(default_factory=dict)  # field id -> cumulative ns
    # health (bench.commands.health): PCIe link, memory errors and repairs, NVLink, thermal threshold
    pcie_gen: Any = 5
    pcie_max_gen: Any = 5
    pcie_width: Any = 16
    pcie_max_width: Any = 16
    pcie_replays: Any = 0
    # "corrected|uncorrected/volatile|aggregate" -> count; a key left out reads 0
    ecc: dict[str, Any] = field(default_factory=dict)
    remapped_rows: Any = (0, 0, 0, 0)  # correctable, uncorrectable, pending, failure
    retired_pages: dict[str, Any] = field(default_factory=lambda: {"sbe": [], "dbe": []})
    retired_pages_pending: Any = NVML_FEATURE_DISABLED
    nvlink_states: list[Any] = field(default_factory=lambda: [NVML_FEATURE_ENABLED] * 18)
    # link -> counter name ("replay", "recovery", "crc_flit", "crc_data") -> count; default 0
    nvlink_errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    slowdown_temperature_c: Any = 87
    virtualization_mode: Any = 0  # nvmlGpuVirtualizationMode_t: 0 none, 1 passthrough, 2 vgpu
    parent_gpu: FakeGpu | None = None  # set on a MIG slice: the GPU it lives on
    errors: dict[str, int] = field(default_factory=dict)  # NVML function name -> error code
    field_errors: dict[int, int] = field(default_factory=dict)  # field id -> error code

    def read(self, attr: str) -> Any:
        value = getattr(self, attr)
        return value() if callable(value) else value


class FakePynvml:
    """An object that looks like the pynvml module to bench.hardware.nvml.

    `missing` names functions the simulated bindings lack (old nvidia-ml-py): getattr on them
    raises AttributeError, as on a real older module. `calls` logs every NVML call made.
    """

    def __init__(
        self,
        gpus: Iterable[FakeGpu] = (),
        *,
        driver_version: Any = "550.54.15",  # a callable is called on each read
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
        version = self.driver_version
        return version() if callable(version) else version

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

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

    # energy (mJ), field values, MIG
    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGpu) -> int:
        return int(self._device("nvmlDeviceGetTotalEnergyConsumption", h, "total_energy_mj"))

    def nvmlDeviceGetFieldValues(self, h: FakeGpu, field_ids: list[int]) -> list[FieldValue]:
        self._enter("nvmlDeviceGetFieldValues", h)
        sources = {186: "power_instant_mw", 185: "power_average_mw"}
        out = []
        for fid in field_ids:
            code = h.field_errors.get(fid)
            if code is None and fid not in sources and fid not in h.violation_ns:
                code = NVML_ERROR_NOT_SUPPORTED
            if code is not None:
                out.append(FieldValue(fid, code, 1, FieldUnion()))
                continue
            raw = h.read(sources[fid]) if fid in sources else h.violation_ns[fid]
            raw = raw() if callable(raw) else raw
            if fid in sources:
                out.append(FieldValue(fid, NVML_SUCCESS, 1, FieldUnion(uiVal=int(raw))))
            else:
                out.append(FieldValue(fid, NVML_SUCCESS, 3, FieldUnion(ullVal=int(raw))))
        return out

    def nvmlDeviceIsMigDeviceHandle(self, h: FakeGpu) -> int:
        self._enter("nvmlDeviceIsMigDeviceHandle", h)
        return int(h.parent_gpu is not None)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, h: FakeGpu) -> FakeGpu:
        self._enter("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", h)
        if h.parent_gpu is None:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return h.parent_gpu

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    # modes
    def nvmlDeviceGetPersistenceMode(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetPersistenceMode", h, "persistence_mode")

    def nvmlDeviceGetEccMode(self, h: FakeGpu) -> list[int]:
        return list(self._device("nvmlDeviceGetEccMode", h, "ecc_mode"))

    def nvmlDeviceGetMigMode(self, h: FakeGpu) -> list[int]:
        return list(self._device("nvmlDeviceGetMigMode", h, "mig_mode"))

    # health: PCIe, ECC, remapped rows, retired pages, NVLink, thresholds
    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetCurrPcieLinkGeneration", h, "pcie_gen")

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetMaxPcieLinkGeneration", h, "pcie_max_gen")

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetCurrPcieLinkWidth", h, "pcie_width")

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetMaxPcieLinkWidth", h, "pcie_max_width")

    def nvmlDeviceGetPcieReplayCounter(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetPcieReplayCounter", h, "pcie_replays")

    def nvmlDeviceGetTotalEccErrors(self, h: FakeGpu, error_type: int, counter: int) -> int:
        self._enter("nvmlDeviceGetTotalEccErrors", h)
        kind = ("corrected", "uncorrected")[error_type]
        value = h.ecc.get(f"{kind}/{('volatile', 'aggregate')[counter]}", 0)
        return value() if callable(value) else value

    def nvmlDeviceGetRemappedRows(self, h: FakeGpu) -> tuple[int, int, int, int]:
        return tuple(self._device("nvmlDeviceGetRemappedRows", h, "remapped_rows"))

    def nvmlDeviceGetRetiredPages(self, h: FakeGpu, cause: int) -> list[int]:
        self._enter("nvmlDeviceGetRetiredPages", h)
        value = h.retired_pages[("sbe", "dbe")[cause]]
        return list(value() if callable(value) else value)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: FakeGpu) -> int:
        fn = "nvmlDeviceGetRetiredPagesPendingStatus"
        return self._device(fn, h, "retired_pages_pending")

    def nvmlDeviceGetNvLinkState(self, h: FakeGpu, link: int) -> int:
        self._enter("nvmlDeviceGetNvLinkState", h)
        if not 0 <= link < len(h.nvlink_states):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        value = h.nvlink_states[link]
        return value() if callable(value) else value

    def nvmlDeviceGetNvLinkErrorCounter(self, h: FakeGpu, link: int, counter: int) -> int:
        self._enter("nvmlDeviceGetNvLinkErrorCounter", h)
        if not 0 <= link < len(h.nvlink_states):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        value = h.nvlink_errors.get(link, {}).get(NVLINK_COUNTERS[counter], 0)
        return value() if callable(value) else value

    def nvmlDeviceGetVirtualizationMode(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetVirtualizationMode", h, "virtualization_mode")

    def nvmlDeviceGetTemperatureThreshold(self, h: FakeGpu, threshold: int) -> int:
        assert threshold == NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        return self._device("nvmlDeviceGetTemperatureThreshold", h, "slowdown_temperature_c")


@dataclass
class FieldUnion:
    """c_nvmlValue_t: flopwatt reads the member that valueType names."""

    dVal: float = 0.0
    uiVal: int = 0
    ulVal: int = 0
    ullVal: int = 0
    sllVal: int = 0
    siVal: int = 0
    usVal: int = 0


@dataclass
class FieldValue:
    """c_nvmlFieldValue_t with the members flopwatt reads."""

    fieldId: int
    nvmlReturn: int
    valueType: int
    value: FieldUnion


def install(monkeypatch: Any, fake: FakePynvml) -> FakePynvml:
    """Make `import pynvml` (inside bench.hardware.nvml.open_nvml) return the fake."""
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


class EnergyCounter:
    """A scripted total-energy counter in mJ: constant power, updated every `period_s`.

    `reset_after_s` makes it restart from zero that long after creation, as a driver reload
    does. Time is real (perf_counter) unless a `clock` is injected; `first_tick_s` places the
    first tick that long after creation (default: one period), so ticks need not fall on
    round numbers of the clock.
    """

    def __init__(
        self,
        power_w: float,
        period_s: float = 0.02,
        start_mj: int = 5_000_000,
        reset_after_s: float | None = None,
        clock: Any = None,
        first_tick_s: float | None = None,
    ) -> None:
        import time

        self._clock = clock or time.perf_counter
        self._t0 = self._clock()
        self.power_w = power_w
        self.period_s = period_s
        self.start_mj = start_mj
        self.reset_after_s = reset_after_s
        self.first_tick_s = period_s if first_tick_s is None else first_tick_s

    def __call__(self) -> int:
        elapsed = self._clock() - self._t0
        base = self.start_mj
        if self.reset_after_s is not None and elapsed >= self.reset_after_s:
            elapsed -= self.reset_after_s
            base = 0
        shifted = elapsed - self.first_tick_s
        ticks = 0 if shifted < 0 else int(shifted / self.period_s) + 1
        return int(base + self.power_w * 1000 * ticks * self.period_s)


class FailAfter:
    """A field that returns `value` for the first `n` reads, then raises an NVML error."""

    def __init__(self, value: Any, n: int, code: int = NVML_ERROR_UNKNOWN) -> None:
        self.value, self.n, self.code, self.reads = value, n, code, 0

    def __call__(self) -> Any:
        self.reads += 1
        if self.reads > self.n:
            raise NVMLError(self.code)
        return self.value


class Steps:
    """A field that returns its values one read at a time and then keeps the last one:
    `Steps([0, 2])` is a counter that rises between the first and the second read."""

    def __init__(self, values: Iterable[Any]) -> None:
        self.values, self.reads = list(values), 0

    def __call__(self) -> Any:
        value = self.values[min(self.reads, len(self.values) - 1)]
        self.reads += 1
        return value
