"""A scripted stand-in for the amdsmi Python module (ROCm's amdsmi_interface), for tests
without an AMD GPU.

Install it at the one seam: bench.hardware.amdsmi.open_amdsmi() does `import amdsmi` inside
the function, so `install(monkeypatch, FakeAmdsmi([FakeAmdGpu()]))` makes it use the fake.

It mirrors the real module's names and shapes, quirks included, so that the code it tests
works on an MI300X the first time:
- functions take a processor handle and raise AmdSmiParameterException for anything else,
  and enum arguments must be the IntEnum members (AmdSmiClkType.GFX, not 0);
- failures raise AmdSmiLibraryException(err_code) with amdsmi_status_t codes;
- unsupported fields come back as the string "N/A" or as a UINT max left in the struct
  (amdsmi_get_power_info checks only 0xFFFF; other fields leak UINT32/UINT64 max);
- MI300X: average_socket_power is "N/A", EDGE temperature is NOT_SUPPORTED,
  throttle_status is "N/A" (the violation API replaces it), gpu_metrics carries one
  current_gfxclks entry per XCD (8);
- the energy accumulator is a uint64 of ticks of counter_resolution µJ (15.259 µJ), old key
  'power' kept beside 'energy_accumulator'; it wraps at 2**64;
- an SR-IOV VF ("AMD Instinct MI300X VF") has no energy accumulator (NOT_SUPPORTED).

Values are in amdsmi's units (W, µW, MHz, degrees C, MT/s); a field may be a zero-argument
callable called on every read, and `errors` maps a function name to the status it raises.
`FLOPWATT_SYNTHETIC` tells flopwatt that a fake answered, so run folders say so.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

FLOPWATT_SYNTHETIC = "amdsmi answered by the test fake (tests/fake_amdsmi.py), not by a GPU"

# amdsmi_status_t
AMDSMI_STATUS_SUCCESS = 0
AMDSMI_STATUS_INVAL = 1
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_INIT_ERROR = 18
AMDSMI_STATUS_NOT_FOUND = 31
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34

_TEXT = {
    AMDSMI_STATUS_INVAL: "AMDSMI_STATUS_INVAL - Invalid parameters",
    AMDSMI_STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    AMDSMI_STATUS_NO_PERM: "AMDSMI_STATUS_NO_PERM - Permission Denied",
    AMDSMI_STATUS_INIT_ERROR: "AMDSMI_STATUS_INIT_ERROR - Initialization error",
    AMDSMI_STATUS_NOT_FOUND: "AMDSMI_STATUS_NOT_FOUND - Device Not found",
    AMDSMI_STATUS_DRIVER_NOT_LOADED: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
}

NA = "N/A"
UINT16_MAX = 0xFFFF
UINT32_MAX = 0xFFFF_FFFF
UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFF
RESOLUTION_UJ = 15.259  # µJ per accumulator tick, as amdsmi reports on MI300X


class AmdSmiException(Exception):
    """Base smi exception class (the real name)."""


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _TEXT.get(
            err_code, "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred"
        )

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_code(self) -> int:
        return self.err_code


class AmdSmiRetryException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(9)


class AmdSmiTimeoutException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(8)


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, received: Any, expected: Any) -> None:
        super().__init__(f"Invalid parameter: expected {expected}, got {type(received)}")
        self.err_code = None


class AmdSmiBdfFormatException(AmdSmiException):
    def __init__(self, bdf: Any) -> None:
        super().__init__(f"Wrong BDF format: {bdf}")


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1
    INIT_AMD_GPUS = 2


class AmdSmiClkType(IntEnum):
    SYS = 0
    GFX = 0
    DF = 1
    DCEF = 2
    SOC = 3
    MEM = 4


class AmdSmiTemperatureType(IntEnum):
    EDGE = 0
    HOTSPOT = 1
    JUNCTION = 1
    VRAM = 2


class AmdSmiTemperatureMetric(IntEnum):
    CURRENT = 0
    MAX = 1


@dataclass
class FakeAmdGpu:
    """One scripted AMD GPU (an MI300X by default), in amdsmi's raw units."""

    bdf: str = "0000:0c:00.0"
    uuid: str = "8dff74a1-0000-1000-80a4-3dfd6a1f3b7c"
    hip_id: Any = 0
    market_name: str = "AMD Instinct MI300X"
    num_compute_units: Any = 304
    target_graphics_version: str = "gfx942"
    current_socket_power: Any = 165  # W
    average_socket_power: Any = NA  # N/A on MI300X
    socket_power: Any = None  # the key newer releases add; None: left out, as older ones do
    power_cap_uw: Any = 750_000_000
    default_power_cap_uw: Any = 750_000_000
    energy_accumulator: Any = 1_000_000  # ticks; a callable scripts a counter
    counter_resolution: Any = RESOLUTION_UJ
    gfxclks_mhz: Any = field(
        default_factory=lambda: [2100, 2095, 2100, 2080, 2100, 2100, 2090, 2100]
    )
    gfx_clk: Any = 2100
    gfx_max_clk: Any = 2100
    mem_clk: Any = 1300
    hotspot_c: Any = 41
    vram_c: Any = 35
    throttle_status: Any = NA  # MI3x+: use the violation API
    violation: dict[str, Any] = field(
        default_factory=lambda: {
            "per_ppt_pwr": 0,
            "per_socket_thrm": 0,
            "per_prochot_thrm": 0,
            "per_vr_thrm": 0,
            "per_hbm_thrm": UINT64_MAX,  # quirk: a cause this firmware does not count
            "active_ppt_pwr": False,
            "active_socket_thrm": False,
            "active_prochot_thrm": False,
            "active_vr_thrm": False,
            "active_hbm_thrm": NA,
        }
    )
    ecc: dict[str, Any] = field(
        default_factory=lambda: {
            "correctable_count": 0,
            "uncorrectable_count": 0,
            "deferred_count": 0,
        }
    )
    pcie_width: Any = 16
    pcie_max_width: Any = 16
    pcie_speed_mts: Any = 32_000
    pcie_max_speed_mts: Any = 32_000
    pcie_gen: Any = 5
    pcie_replays: Any = 0
    xgmi_status: Any = field(default_factory=lambda: ["U"] * 7)
    compute_partition: str = "SPX"
    vbios_version: str = "113-M3000100-102"
    driver_version: str = "6.8.5"
    errors: dict[str, int] = field(default_factory=dict)  # function name -> status code

    def read(self, attr: str) -> Any:
        value = getattr(self, attr)
        return value() if callable(value) else value


def mi300x_vf(**overrides: Any) -> FakeAmdGpu:
    """An MI300X as an SR-IOV guest sees it: "VF" name and no energy accumulator."""
    errors = {"amdsmi_get_energy_count": AMDSMI_STATUS_NOT_SUPPORTED, **overrides.pop("errors", {})}
    return FakeAmdGpu(market_name="AMD Instinct MI300X VF", errors=errors, **overrides)


class FakeAmdsmi:
    """An object that looks like the amdsmi module to bench.hardware.amdsmi."""

    FLOPWATT_SYNTHETIC = FLOPWATT_SYNTHETIC
    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiRetryException = AmdSmiRetryException
    AmdSmiTimeoutException = AmdSmiTimeoutException
    AmdSmiParameterException = AmdSmiParameterException
    AmdSmiBdfFormatException = AmdSmiBdfFormatException
    AmdSmiInitFlags = AmdSmiInitFlags
    AmdSmiClkType = AmdSmiClkType
    AmdSmiTemperatureType = AmdSmiTemperatureType
    AmdSmiTemperatureMetric = AmdSmiTemperatureMetric

    def __init__(
        self,
        gpus: Iterable[FakeAmdGpu] = (),
        *,
        init_error: int | None = None,
        missing: Iterable[str] = (),
        lib_version: tuple[int, int, int] = (24, 7, 1),
    ) -> None:
        self.gpus = list(gpus)
        self.init_error = init_error
        self.missing = frozenset(missing)
        self.lib_version = lib_version
        self.calls: list[str] = []
        self.initialized = 0
        self.shutdowns = 0

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("amdsmi_") and name in object.__getattribute__(self, "missing"):
            raise AttributeError(f"module 'amdsmi' has no attribute {name!r}")
        return object.__getattribute__(self, name)

    def _enter(self, fn_name: str, gpu: Any = None, check_handle: bool = True) -> FakeAmdGpu:
        self.calls.append(fn_name)
        if check_handle and not isinstance(gpu, FakeAmdGpu):
            raise AmdSmiParameterException(gpu, "amdsmi_processor_handle")
        if not self.initialized:
            raise AmdSmiLibraryException(32)  # AMDSMI_STATUS_NOT_INIT
        code = gpu.errors.get(fn_name) if isinstance(gpu, FakeAmdGpu) else None
        if code is not None:
            raise AmdSmiLibraryException(code)
        return gpu

    # lifecycle
    def amdsmi_init(self, flag: Any = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
        self.calls.append("amdsmi_init")
        if not isinstance(flag, AmdSmiInitFlags):
            raise AmdSmiParameterException(flag, AmdSmiInitFlags)
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        self.initialized += 1

    def amdsmi_shut_down(self) -> None:
        self.calls.append("amdsmi_shut_down")
        self.initialized -= 1
        self.shutdowns += 1

    def amdsmi_get_lib_version(self) -> dict[str, Any]:
        self._enter("amdsmi_get_lib_version", check_handle=False)
        major, minor, release = self.lib_version
        return {"major": major, "minor": minor, "release": release, "build": ""}

    # enumeration and identity
    def amdsmi_get_processor_handles(self) -> list[FakeAmdGpu]:
        self._enter("amdsmi_get_processor_handles", check_handle=False)
        return list(self.gpus)

    def amdsmi_get_processor_handle_from_bdf(self, bdf: Any) -> FakeAmdGpu:
        self._enter("amdsmi_get_processor_handle_from_bdf", check_handle=False)
        parsed = _parse_bdf(bdf)
        if parsed is None:
            raise AmdSmiBdfFormatException(bdf)
        for gpu in self.gpus:
            if _parse_bdf(gpu.bdf) == parsed:
                return gpu
        raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_FOUND)

    def amdsmi_get_gpu_device_bdf(self, h: Any) -> str:
        return self._enter("amdsmi_get_gpu_device_bdf", h).read("bdf")

    def amdsmi_get_gpu_device_uuid(self, h: Any) -> str:
        return self._enter("amdsmi_get_gpu_device_uuid", h).read("uuid")

    def amdsmi_get_gpu_enumeration_info(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_gpu_enumeration_info", h)
        hip_id = gpu.read("hip_id")
        return {
            "drm_render": 128 + self.gpus.index(gpu),
            "drm_card": self.gpus.index(gpu),
            "hsa_id": 2 + self.gpus.index(gpu),
            "hip_id": NA if hip_id == UINT32_MAX else hip_id,
            "hip_uuid": f"GPU-{gpu.uuid.replace('-', '')[-16:]}",
        }

    def amdsmi_get_gpu_asic_info(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_gpu_asic_info", h)
        cus = gpu.read("num_compute_units")
        return {
            "market_name": gpu.read("market_name") or NA,
            "vendor_id": "0x1002",
            "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "subvendor_id": "0x1002",
            "device_id": "0x74b5" if gpu.market_name.endswith("VF") else "0x74a1",
            "rev_id": "0x00",
            "asic_serial": "0x0000000000000000",
            "oam_id": 0,
            "num_compute_units": NA if cus == UINT32_MAX else cus,
            "target_graphics_version": gpu.read("target_graphics_version"),
        }

    def amdsmi_get_gpu_vbios_info(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_gpu_vbios_info", h)
        return {
            "name": "",
            "build_date": "",
            "part_number": "",
            "version": gpu.read("vbios_version"),
        }

    def amdsmi_get_gpu_driver_info(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_gpu_driver_info", h)
        return {
            "driver_name": "amdgpu",
            "driver_version": gpu.read("driver_version"),
            "driver_date": NA,
        }

    def amdsmi_get_gpu_compute_partition(self, h: Any) -> str:
        return self._enter("amdsmi_get_gpu_compute_partition", h).read("compute_partition")

    # power and energy
    def amdsmi_get_power_info(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_power_info", h)
        info = {
            "current_socket_power": gpu.read("current_socket_power"),
            "average_socket_power": gpu.read("average_socket_power"),
            "gfx_voltage": UINT16_MAX,
            "soc_voltage": UINT16_MAX,
            "mem_voltage": UINT16_MAX,
            "power_limit": gpu.read("power_cap_uw") // 1_000_000,
        }
        if gpu.socket_power is not None:
            info["socket_power"] = gpu.read("socket_power")
        return {k: NA if v == UINT16_MAX else v for k, v in info.items()}  # only 0xFFFF

    def amdsmi_get_power_cap_info(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_power_cap_info", h)
        return {
            "power_cap": gpu.read("power_cap_uw"),
            "default_power_cap": gpu.read("default_power_cap_uw"),
            "dpm_cap": 0,
            "min_power_cap": 0,
            "max_power_cap": gpu.read("default_power_cap_uw"),
        }

    def amdsmi_get_energy_count(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_energy_count", h)
        ticks = int(gpu.read("energy_accumulator")) % (1 << 64)
        return {
            "power": ticks,  # deprecated in 6.4
            "energy_accumulator": ticks,
            "counter_resolution": gpu.read("counter_resolution"),
            "timestamp": time.time_ns(),
        }

    # clocks, thermals, throttling
    def amdsmi_get_clock_info(self, h: Any, clock_type: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_clock_info", h)
        if not isinstance(clock_type, AmdSmiClkType):
            raise AmdSmiParameterException(clock_type, AmdSmiClkType)
        if clock_type == AmdSmiClkType.MEM:
            clk, max_clk = gpu.read("mem_clk"), gpu.read("mem_clk")
        elif clock_type == AmdSmiClkType.GFX:
            clk, max_clk = gpu.read("gfx_clk"), gpu.read("gfx_max_clk")
        else:
            clk, max_clk = NA, NA
        return {
            "clk": clk,
            "min_clk": 500,
            "max_clk": max_clk,
            "clk_locked": False,
            "clk_deep_sleep": False,
        }

    def amdsmi_get_temp_metric(self, h: Any, sensor: Any, metric: Any) -> int:
        gpu = self._enter("amdsmi_get_temp_metric", h)
        if not isinstance(sensor, AmdSmiTemperatureType):
            raise AmdSmiParameterException(sensor, AmdSmiTemperatureType)
        if not isinstance(metric, AmdSmiTemperatureMetric):
            raise AmdSmiParameterException(metric, AmdSmiTemperatureMetric)
        if sensor == AmdSmiTemperatureType.EDGE:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)  # not on Instinct
        value = gpu.read("hotspot_c" if sensor == AmdSmiTemperatureType.HOTSPOT else "vram_c")
        if value == NA:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        return value

    def amdsmi_get_gpu_metrics_info(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_gpu_metrics_info", h)
        clocks = list(gpu.read("gfxclks_mhz"))
        ticks = (
            gpu.read("energy_accumulator") if "amdsmi_get_energy_count" not in gpu.errors else NA
        )
        return {
            "temperature_edge": NA,
            "temperature_hotspot": gpu.read("hotspot_c"),
            "temperature_mem": gpu.read("vram_c"),
            "average_socket_power": gpu.read("average_socket_power"),
            "current_socket_power": gpu.read("current_socket_power"),
            "energy_accumulator": ticks,
            "current_gfxclk": NA,
            "current_gfxclks": clocks + [NA] * (8 - len(clocks)),
            "throttle_status": gpu.read("throttle_status"),
            "indep_throttle_status": NA,
            "temperature_hbm": [NA] * 4,
            "pcie_link_width": gpu.read("pcie_width"),
            "pcie_link_speed": gpu.read("pcie_speed_mts") // 100,
            "xgmi_link_width": 16,
            "xgmi_link_speed": 32,
        }

    def amdsmi_get_violation_status(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_violation_status", h)
        return {
            "reference_timestamp": time.time_ns() // 1000,
            "acc_counter": 1,
            **gpu.read("violation"),
        }

    # health
    def amdsmi_get_gpu_total_ecc_count(self, h: Any) -> dict[str, Any]:
        return dict(self._enter("amdsmi_get_gpu_total_ecc_count", h).read("ecc"))

    def amdsmi_get_pcie_info(self, h: Any) -> dict[str, Any]:
        gpu = self._enter("amdsmi_get_pcie_info", h)
        return {
            "pcie_static": {
                "max_pcie_width": gpu.read("pcie_max_width"),
                "max_pcie_speed": gpu.read("pcie_max_speed_mts"),
                "pcie_interface_version": gpu.read("pcie_gen"),
                "slot_type": "OAM",
            },
            "pcie_metric": {
                "pcie_width": gpu.read("pcie_width"),
                "pcie_speed": gpu.read("pcie_speed_mts"),
                "pcie_bandwidth": NA,
                "pcie_replay_count": gpu.read("pcie_replays"),
                "pcie_l0_to_recovery_count": 0,
            },
        }

    def amdsmi_get_gpu_xgmi_link_status(self, h: Any) -> dict[str, Any]:
        status = list(self._enter("amdsmi_get_gpu_xgmi_link_status", h).read("xgmi_status"))
        return {"status": status, "total_links": len(status)}


def _parse_bdf(bdf: Any) -> tuple[int, int, int, int] | None:
    """amdsmi's _parse_bdf: "dddd:bb:dd.f" or "bb:dd.f", hex; None when malformed."""
    if not isinstance(bdf, str):
        return None
    parts = bdf.strip().lower().replace(".", ":").split(":")
    if len(parts) == 3:
        parts = ["0", *parts]
    if len(parts) != 4:
        return None
    try:
        return tuple(int(p, 16) for p in parts)  # type: ignore[return-value]
    except ValueError:
        return None


def install(monkeypatch: Any, fake: FakeAmdsmi) -> FakeAmdsmi:
    """Make `import amdsmi` (inside bench.hardware.amdsmi.open_amdsmi) return the fake."""
    monkeypatch.setitem(sys.modules, "amdsmi", fake)
    return fake


class Accumulator:
    """A scripted energy accumulator in ticks: constant power, updated every `period_s`,
    starting at `start_ticks` (put it near 2**64 to see a wrap). Time is real unless a
    `clock` is injected."""

    def __init__(
        self,
        power_w: float,
        period_s: float = 0.001,
        start_ticks: int = 10**9,
        resolution_uj: float = RESOLUTION_UJ,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock or time.perf_counter
        self._t0 = self._clock()
        self.power_w, self.period_s = power_w, period_s
        self.start_ticks, self.resolution_uj = start_ticks, resolution_uj

    def __call__(self) -> int:
        updates = int((self._clock() - self._t0) / self.period_s)
        joules = self.power_w * updates * self.period_s
        return (self.start_ticks + int(joules * 1e6 / self.resolution_uj)) % (1 << 64)
