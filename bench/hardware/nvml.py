"""The NVML boundary: the only module in flopwatt that imports pynvml.

Why a boundary of its own:
- pynvml is imported lazily, inside open_nvml(), so importing flopwatt never needs the NVML
  library (there is none on a CPU machine or in a container without the driver).
- NVML errors are mapped to our own small vocabulary in one place (_reason_for). A getter
  that the hardware cannot answer returns (None, reason) instead of raising, because "not
  supported on this GPU" is a fact to record, not a failure; only a lost GPU raises.
- Units are converted here, once: NVML speaks mW, MHz and (for energy) mJ; the rest of the
  project speaks W, Hz and J.
- Devices are found by UUID or PCI bus id, never by index: CUDA's order (FASTEST_FIRST by
  default, and renumbered by CUDA_VISIBLE_DEVICES) differs from NVML's PCI order.

Tests replace the module at the seam: open_nvml() does a plain `import pynvml` inside the
function, which reads sys.modules first, so `monkeypatch.setitem(sys.modules, "pynvml", fake)`
installs a scripted fake (tests/fake_pynvml.py) without any hook in production code.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# A reading is (value, None) when known, (None, reason) when not.
Reading = tuple[T | None, str | None]

# Bits of nvmlDeviceGetCurrentClocksEventReasons (nvml.h, nvmlClocksEventReason*). The last
# two exist only in the deprecated nvmlClocksThrottleReason* twins, which older bindings use.
CLOCK_EVENT_REASON_BITS: tuple[tuple[int, str], ...] = (
    (0x1, "GpuIdle"),
    (0x2, "ApplicationsClocksSetting"),
    (0x4, "SwPowerCap"),
    (0x8, "HwSlowdown"),
    (0x10, "SyncBoost"),
    (0x20, "SwThermalSlowdown"),
    (0x40, "HwThermalSlowdown"),
    (0x80, "HwPowerBrakeSlowdown"),
    (0x100, "DisplayClockSetting"),
    (0x200, "BoardLimit"),
    (0x400, "Reliability"),
)

# nvml.h field ids (stable ABI numbers; nvidia-ml-py names them NVML_FI_DEV_*).
FIELD_POWER_AVERAGE = 185
FIELD_POWER_INSTANT = 186
VIOLATION_FIELDS = {
    "sw_power_cap": 74,
    "sync_boost": 76,
    "sw_thermal": 269,
    "hw_thermal": 270,
    "hw_power_brake": 271,
}

_INSTALL_HINT = "install nvidia-ml-py (`pip install nvidia-ml-py`)"
_LOOKUP_HINT = "check CUDA_VISIBLE_DEVICES and that torch and NVML see the same GPUs"
_DRIVER_HINT = "run on a machine with an NVIDIA driver, or expect power and NVML fields as None"


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used here (no library, init failed, no such device); says what to do."""


class NvmlCallFailed(RuntimeError):
    """An NVML call failed in a way that must stop the caller (e.g. the GPU fell off the bus)."""

    def __init__(self, fn_name: str, error: str) -> None:
        super().__init__(f"{fn_name} failed: {error}")
        self.fn_name = fn_name
        self.error = error


def decode_clock_event_reasons(mask: int) -> list[str]:
    """Names of the set bits of a clock-event ("throttle") reason mask, lowest bit first.

    Unknown bits are kept as hex ("0x800") rather than dropped, so nothing is hidden.
    """
    names = [name for bit, name in CLOCK_EVENT_REASON_BITS if mask & bit]
    known = 0
    for bit, _ in CLOCK_EVENT_REASON_BITS:
        known |= bit
    rest = mask & ~known
    bit = 1
    while rest:
        if rest & bit:
            names.append(hex(bit))
            rest &= ~bit
        bit <<= 1
    return names


def normalize_uuid_candidates(uuid: str) -> list[str]:
    """The NVML UUID strings to try for a UUID as torch or a user wrote it.

    NVML names GPUs "GPU-<hex>" and MIG instances "MIG-<hex>", hex in lower case;
    str(torch's props.uuid) has no prefix, so a bare UUID is tried as a GPU first and as a MIG
    instance second.
    """
    text = uuid.strip()
    prefix = text[:4].upper()
    if prefix in ("GPU-", "MIG-"):
        return [prefix + text[4:].lower()]
    return [f"GPU-{text.lower()}", f"MIG-{text.lower()}"]


_PCI_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{1,2}):"
    r"(?P<device>[0-9a-fA-F]{1,2})(?:\.(?P<function>[0-7]))?$"
)


def normalize_pci_bus_id(bus_id: str) -> str:
    """A PCI bus id in NVML's own form, "00000000:17:00.0".

    CUDA writes "0000:17:00.0", NVML "00000000:17:00.0", lspci "17:00.0"; normalising once
    lets ids from torch and NVML be compared as strings. Raises ValueError on anything else.
    """
    match = _PCI_RE.match(bus_id.strip())
    if match is None:
        raise ValueError(f"not a PCI bus id: {bus_id!r} (expected e.g. 0000:17:00.0)")
    domain = int(match["domain"] or "0", 16)
    bus = int(match["bus"], 16)
    device = int(match["device"], 16)
    function = int(match["function"] or "0")
    return f"{domain:08X}:{bus:02X}:{device:02X}.{function}"


def _reason_for(lib: Any, fn_name: str, err: Exception) -> str:
    """The one place that maps an NVMLError to a recorded reason, or raises.

    A lost GPU raises NvmlCallFailed: every later reading would be garbage. Everything else
    becomes a reason string, so that "not supported" is recorded instead of crashing a run.
    """
    if isinstance(err, _error_class(lib, "NVMLError_GpuIsLost")):
        raise NvmlCallFailed(fn_name, str(err)) from err
    if isinstance(err, _error_class(lib, "NVMLError_NotSupported")):
        return "not supported on this GPU"
    if isinstance(err, _error_class(lib, "NVMLError_NoPermission")):
        return "needs root"
    if isinstance(err, _error_class(lib, "NVMLError_FunctionNotFound")):
        return f"{fn_name}: not in this driver's NVML"
    return f"{fn_name}: {err}"


def _error_class(lib: Any, name: str) -> type[BaseException]:
    """An NVMLError subclass by name; a never-raised class when the bindings lack it."""
    cls = getattr(lib, name, None)
    return cls if isinstance(cls, type) else _NeverRaised


class _NeverRaised(Exception):
    """Stands in for an NVMLError subclass missing from old bindings; matches nothing."""


def _call(lib: Any, fn_name: str, *args: Any) -> Reading[Any]:
    """Call lib.<fn_name>(*args) and return (value, None) or (None, reason); see _reason_for."""
    return _call_first(lib, (fn_name,), *args)


def _call_first(lib: Any, fn_names: tuple[str, ...], *args: Any) -> Reading[Any]:
    """Like _call, trying each name until one exists in both the bindings and the driver.

    Needed where NVML renamed a function (ClocksThrottleReasons -> ClocksEventReasons,
    GetTemperature -> GetTemperatureV): new bindings on an old driver, or old bindings.
    """
    reasons = []
    for fn_name in fn_names:
        fn = getattr(lib, fn_name, None)
        if fn is None:
            reasons.append(f"{fn_name}: not in this nvidia-ml-py version")
            continue
        try:
            return fn(*args), None
        except _error_class(lib, "NVMLError_FunctionNotFound") as err:
            reasons.append(_reason_for(lib, fn_name, err))
        except lib.NVMLError as err:
            return None, _reason_for(lib, fn_name, err)
    return None, "; ".join(reasons)


def _convert(reading: Reading[Any], fn: Callable[[Any], T]) -> Reading[T]:
    """Apply a unit conversion to a known value; pass (None, reason) through."""
    value, reason = reading
    return (None, reason) if value is None else (fn(value), None)


def _mw_to_w(value: Any) -> float:
    return float(value) / 1000.0


def _mhz_to_hz(value: Any) -> float:
    return float(value) * 1e6


def _mj_to_j(value: Any) -> float:
    return float(value) / 1000.0


def _ns_to_s(value: Any) -> float:
    return float(value) / 1e9


def _field_number(entry: Any) -> float:
    """The value of a c_nvmlFieldValue_t, read through the union member its type names."""
    member = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")[entry.valueType]
    return float(getattr(entry.value, member))


def _text(value: Any) -> str:
    """NVML strings arrive as str from new bindings and bytes from old ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _bus_id_of(pci_info: Any) -> str:
    """The normalised bus id of an nvmlPciInfo_t; NVML's raw text if it does not parse."""
    text = _text(pci_info.busId)
    try:
        return normalize_pci_bus_id(text)
    except ValueError:
        return text


def _format_cuda_version(value: Any) -> str:
    """NVML encodes the CUDA driver version as 1000*major + 10*minor (12040 -> "12.4")."""
    number = int(value)
    return f"{number // 1000}.{(number % 1000) // 10}"


class NvmlDevice:
    """One NVML device handle. Every getter returns (value, None) or (None, reason).

    Getters never raise for an unsupported query; they raise NvmlCallFailed only when the
    GPU is lost. Values are in SI units (W, Hz, degrees C) and booleans for modes.
    """

    def __init__(self, lib: Any, handle: Any) -> None:
        self._lib = lib
        self.handle = handle

    def _get(self, fn_name: str, *args: Any) -> Reading[Any]:
        return _call(self._lib, fn_name, self.handle, *args)

    # identity
    def name(self) -> Reading[str]:
        return _convert(self._get("nvmlDeviceGetName"), _text)

    def uuid(self) -> Reading[str]:
        return _convert(self._get("nvmlDeviceGetUUID"), _text)

    def serial(self) -> Reading[str]:
        return _convert(self._get("nvmlDeviceGetSerial"), _text)

    def pci_bus_id(self) -> Reading[str]:
        """The bus id in NVML's normalised form ("00000000:17:00.0")."""
        return _convert(self._get("nvmlDeviceGetPciInfo"), _bus_id_of)

    def vbios_version(self) -> Reading[str]:
        return _convert(self._get("nvmlDeviceGetVbiosVersion"), _text)

    # clocks
    def sm_clock_hz(self) -> Reading[float]:
        return _convert(self._get("nvmlDeviceGetClockInfo", self._lib.NVML_CLOCK_SM), _mhz_to_hz)

    def mem_clock_hz(self) -> Reading[float]:
        return _convert(self._get("nvmlDeviceGetClockInfo", self._lib.NVML_CLOCK_MEM), _mhz_to_hz)

    def max_sm_clock_hz(self) -> Reading[float]:
        reading = self._get("nvmlDeviceGetMaxClockInfo", self._lib.NVML_CLOCK_SM)
        return _convert(reading, _mhz_to_hz)

    def max_mem_clock_hz(self) -> Reading[float]:
        reading = self._get("nvmlDeviceGetMaxClockInfo", self._lib.NVML_CLOCK_MEM)
        return _convert(reading, _mhz_to_hz)

    def clocks_event_reasons(self) -> Reading[int]:
        """The current clock-event ("throttle") reason bitmask; decode_clock_event_reasons()."""
        reading = _call_first(
            self._lib,
            ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"),
            self.handle,
        )
        return _convert(reading, int)

    # power and thermals
    def power_limit_w(self) -> Reading[float]:
        """The enforced limit: the effective one after every limiter, not just the configured."""
        return _convert(self._get("nvmlDeviceGetEnforcedPowerLimit"), _mw_to_w)

    def default_power_limit_w(self) -> Reading[float]:
        return _convert(self._get("nvmlDeviceGetPowerManagementDefaultLimit"), _mw_to_w)

    def power_usage_w(self) -> Reading[float]:
        """Board power; a 1 s average on Ampere and newer except GA100 (NVML docs). Cheap."""
        return _convert(self._get("nvmlDeviceGetPowerUsage"), _mw_to_w)

    def temperature_c(self) -> Reading[float]:
        reading = _call_first(
            self._lib,
            ("nvmlDeviceGetTemperatureV", "nvmlDeviceGetTemperature"),
            self.handle,
            self._lib.NVML_TEMPERATURE_GPU,
        )
        return _convert(reading, float)

    # energy and the power sampler's fields
    def total_energy_j(self) -> Reading[float]:
        """Energy since the driver loaded (Volta and newer), from a hardware accumulator."""
        return _convert(self._get("nvmlDeviceGetTotalEnergyConsumption"), _mj_to_j)

    def field_values(self, field_ids: tuple[int, ...]) -> dict[int, Reading[float]]:
        """Several NVML fields in one call (cheap); each entry carries its own return code."""
        values, reason = self._get("nvmlDeviceGetFieldValues", list(field_ids))
        if values is None:
            return {fid: (None, reason) for fid in field_ids}
        out: dict[int, Reading[float]] = {}
        for fid, entry in zip(field_ids, values, strict=True):
            if entry.nvmlReturn != 0:
                err = self._lib.NVMLError(entry.nvmlReturn)
                out[fid] = (None, _reason_for(self._lib, f"field {fid}", err))
            else:
                out[fid] = (_field_number(entry), None)
        return out

    def power_instant_average_w(self) -> tuple[Reading[float], Reading[float]]:
        """(instant, 1-second average) board power, named explicitly instead of GetPowerUsage,
        whose meaning changes between GPU generations."""
        ids = (FIELD_POWER_INSTANT, FIELD_POWER_AVERAGE)
        got = self.field_values(ids)
        return _convert(got[ids[0]], _mw_to_w), _convert(got[ids[1]], _mw_to_w)

    def violation_times_s(self) -> dict[str, Reading[float]]:
        """Cumulative time spent clock-limited per reason since driver load (ns -> s).

        Read at window edges these say how long the window was throttled, which the sampled
        reason bitmask can miss between samples.
        """
        got = self.field_values(tuple(VIOLATION_FIELDS.values()))
        return {name: _convert(got[fid], _ns_to_s) for name, fid in VIOLATION_FIELDS.items()}

    def mig_reading(self) -> tuple[bool, str | None]:
        """(whether this is a MIG slice, None) or (False, why NVML could not say)."""
        value, reason = self._get("nvmlDeviceIsMigDeviceHandle")
        return bool(value), reason

    def is_mig(self) -> bool:
        """True for a MIG slice, whose power and energy can only be read on its parent GPU."""
        return self.mig_reading()[0]

    def parent(self) -> NvmlDevice:
        """The whole GPU a MIG slice lives on (itself when not a slice)."""
        if not self.is_mig():
            return self
        handle, reason = self._get("nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        if handle is None:
            raise NvmlUnavailable(f"cannot find the GPU of this MIG slice ({reason})")
        return NvmlDevice(self._lib, handle)

    # modes
    def persistence_mode(self) -> Reading[bool]:
        enabled = self._lib.NVML_FEATURE_ENABLED
        return _convert(self._get("nvmlDeviceGetPersistenceMode"), lambda v: v == enabled)

    def ecc_mode(self) -> Reading[bool]:
        """The current ECC mode (NVML also returns the pending one, applied after reboot)."""
        enabled = self._lib.NVML_FEATURE_ENABLED
        return _convert(self._get("nvmlDeviceGetEccMode"), lambda v: v[0] == enabled)

    def mig_mode(self) -> Reading[bool]:
        """The current MIG mode; power and energy are whole-GPU only when it is on."""
        enabled = self._lib.NVML_DEVICE_MIG_ENABLE
        return _convert(self._get("nvmlDeviceGetMigMode"), lambda v: v[0] == enabled)

    # health: links, memory errors and repairs (bench.commands.health reads these)
    def pcie_link(self) -> dict[str, Reading[int]]:
        """Current and maximum PCIe generation and width. The maximum is what the GPU and its
        slot allow together; an idle GPU may train its link down to save power."""
        names = {
            "gen": "nvmlDeviceGetCurrPcieLinkGeneration",
            "max_gen": "nvmlDeviceGetMaxPcieLinkGeneration",
            "width": "nvmlDeviceGetCurrPcieLinkWidth",
            "max_width": "nvmlDeviceGetMaxPcieLinkWidth",
        }
        return {key: _convert(self._get(fn), int) for key, fn in names.items()}

    def pcie_replay_count(self) -> Reading[int]:
        """PCIe replays since driver load: the link resent packets it received corrupted."""
        return _convert(self._get("nvmlDeviceGetPcieReplayCounter"), int)

    def ecc_errors(self, uncorrected: bool, aggregate: bool) -> Reading[int]:
        """Total memory ECC errors: volatile (since driver load) or aggregate (lifetime)."""
        lib = self._lib
        kind = (
            lib.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
            if uncorrected
            else lib.NVML_MEMORY_ERROR_TYPE_CORRECTED
        )
        counter = lib.NVML_AGGREGATE_ECC if aggregate else lib.NVML_VOLATILE_ECC
        return _convert(self._get("nvmlDeviceGetTotalEccErrors", kind, counter), int)

    def remapped_rows(self) -> Reading[dict[str, int]]:
        """Ampere and newer: rows remapped after correctable and uncorrectable errors, whether
        a remap waits for a GPU reset, and whether a remap failed (no spare row left)."""

        def fields(v: Any) -> dict[str, int]:
            keys = ("correctable", "uncorrectable", "pending", "failure")
            return dict(zip(keys, map(int, v), strict=True))

        return _convert(self._get("nvmlDeviceGetRemappedRows"), fields)

    def retired_pages(self, double_bit: bool) -> Reading[int]:
        """Pre-Ampere: pages retired after a double-bit error, or after repeated single-bit ones."""
        lib = self._lib
        cause = (
            lib.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
            if double_bit
            else lib.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
        )
        return _convert(self._get("nvmlDeviceGetRetiredPages", cause), len)

    def retired_pages_pending(self) -> Reading[bool]:
        enabled = self._lib.NVML_FEATURE_ENABLED
        return _convert(self._get("nvmlDeviceGetRetiredPagesPendingStatus"), lambda v: v == enabled)

    def nvlink_states(self) -> Reading[list[bool]]:
        """Whether each NVLink is up, link 0 upward. NVML has no link count: the list ends at
        the first link NVML will not answer for (past the last link it says InvalidArgument);
        (None, reason) when link 0 already has no answer (no NVLink on this GPU)."""
        states: list[bool] = []
        enabled = self._lib.NVML_FEATURE_ENABLED
        for link in range(int(getattr(self._lib, "NVML_NVLINK_MAX_LINKS", 18))):
            value, reason = self._get("nvmlDeviceGetNvLinkState", link)
            if value is None:
                return (states, None) if states else (None, reason)
            states.append(value == enabled)
        return states, None

    def nvlink_errors(self, link: int) -> dict[str, Reading[int]]:
        """One link's data-link error counters since driver load (replays, recoveries, CRC)."""
        lib = self._lib
        counters = {
            "replay": lib.NVML_NVLINK_ERROR_DL_REPLAY,
            "recovery": lib.NVML_NVLINK_ERROR_DL_RECOVERY,
            "crc_flit": lib.NVML_NVLINK_ERROR_DL_CRC_FLIT,
            "crc_data": lib.NVML_NVLINK_ERROR_DL_CRC_DATA,
        }
        fn = "nvmlDeviceGetNvLinkErrorCounter"
        return {name: _convert(self._get(fn, link, c), int) for name, c in counters.items()}

    def virtualization_mode(self) -> Reading[str]:
        """ "none" on bare metal; "passthrough" or "vgpu" in a VM, where the PCIe link and the
        NVLinks read as the hypervisor presents them (nvmlGpuVirtualizationMode_t)."""
        names = ("none", "passthrough", "vgpu", "host_vgpu", "host_vsga")

        def name(v: Any) -> str:
            return names[int(v)] if 0 <= int(v) < len(names) else f"mode {int(v)}"

        return _convert(self._get("nvmlDeviceGetVirtualizationMode"), name)

    def gpus_on_node(self) -> Reading[int]:
        """GPUs the driver sees beside this one (nvmlDeviceGetCount): with one, no NVLink peer."""
        return _convert(_call(self._lib, "nvmlDeviceGetCount"), int)

    def slowdown_temperature_c(self) -> Reading[float]:
        """The temperature at which the GPU starts to slow its clocks down."""
        threshold = self._lib.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        return _convert(self._get("nvmlDeviceGetTemperatureThreshold", threshold), float)


class Nvml:
    """An initialised NVML session. close() shuts it down; NVML counts init/shutdown pairs,
    so several sessions in one process (env capture, a power source) do not disturb each other.
    """

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self._closed = False

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lookup(self, fn_name: str, key: str, what: str) -> NvmlDevice:
        try:
            handle = getattr(self._lib, fn_name)(key)
        except self._lib.NVMLError as err:
            reason = _reason_for(self._lib, fn_name, err)
            raise NvmlUnavailable(
                f"no NVML device with {what} {key} ({reason}); {_LOOKUP_HINT}"
            ) from err
        return NvmlDevice(self._lib, handle)

    def device_by_uuid(self, uuid: str) -> NvmlDevice:
        """The device with this UUID: "GPU-…", "MIG-…", or bare hex as torch prints it."""
        candidates = normalize_uuid_candidates(uuid)
        failures: list[NvmlUnavailable] = []
        for candidate in candidates:
            try:
                return self._lookup("nvmlDeviceGetHandleByUUID", candidate, "UUID")
            except NvmlUnavailable as err:
                failures.append(err)  # a bare UUID may name a MIG instance: try the next
        if len(failures) == 1:
            raise failures[0]
        raise NvmlUnavailable(
            f"no NVML device with UUID {uuid} (tried {' and '.join(candidates)}); {_LOOKUP_HINT}"
        ) from failures[-1]

    def device_by_index(self, index: int) -> NvmlDevice:
        """NVML's index-th device, in PCI order: only a last resort, CUDA may order differently."""
        handle, reason = _call(self._lib, "nvmlDeviceGetHandleByIndex", index)
        if handle is None:
            raise NvmlUnavailable(f"no NVML device with index {index} ({reason})")
        return NvmlDevice(self._lib, handle)

    def device_by_pci_bus_id(self, bus_id: str) -> NvmlDevice:
        """The device at this PCI bus id, in any of the CUDA, NVML or lspci spellings."""
        try:
            normalized = normalize_pci_bus_id(bus_id)
        except ValueError as err:
            raise NvmlUnavailable(str(err)) from err
        return self._lookup("nvmlDeviceGetHandleByPciBusId", normalized, "PCI bus id")

    def driver_version_reading(self) -> Reading[str]:
        return _convert(_call(self._lib, "nvmlSystemGetDriverVersion"), _text)

    def cuda_driver_version_reading(self) -> Reading[str]:
        """The CUDA version the driver supports, e.g. "12.4" (not the toolkit torch uses)."""
        reading = _call(self._lib, "nvmlSystemGetCudaDriverVersion")
        return _convert(reading, _format_cuda_version)

    def device_count_reading(self) -> Reading[int]:
        """GPUs the driver sees on this node, whatever CUDA_VISIBLE_DEVICES hides from torch."""
        return _convert(_call(self._lib, "nvmlDeviceGetCount"), int)

    def driver_version(self) -> str | None:
        return self.driver_version_reading()[0]

    def cuda_driver_version(self) -> str | None:
        return self.cuda_driver_version_reading()[0]

    def close(self) -> None:
        """nvmlShutdown once; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        # An error here means NVML already lost the session; there is nothing left to release.
        with contextlib.suppress(self._lib.NVMLError):
            self._lib.nvmlShutdown()


def open_nvml() -> Nvml:
    """Import pynvml and initialise NVML, or raise NvmlUnavailable with a one-line reason."""
    try:
        import pynvml  # the only pynvml import in flopwatt; lazy so import never needs NVML
    except ImportError as err:
        raise NvmlUnavailable(f"cannot import pynvml ({err}); {_INSTALL_HINT}") from err
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        raise NvmlUnavailable(
            f"nvmlInit failed: {err} ({type(err).__name__}); {_DRIVER_HINT}"
        ) from err
    return Nvml(pynvml)
