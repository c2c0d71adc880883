"""The amdsmi boundary: the only module in flopwatt that imports amdsmi (AMD's SMI library).

It plays the part bench/hardware/nvml.py plays for NVIDIA, for the same reasons:
- amdsmi is imported lazily, inside open_amdsmi(), so flopwatt installs and runs without it
  (and without ROCm's libamd_smi.so, which the Python package needs at import time).
- amdsmi marks what a GPU cannot answer in three ways: an AmdSmiLibraryException (e.g.
  NOT_SUPPORTED), the string "N/A", or a UINT16/32/64 maximum left in a struct field. All
  three become (None, reason) here, never 0.
- Units are converted here, once: amdsmi speaks W (socket power), µW (power caps), MHz,
  degrees C and ticks of the energy accumulator (× counter_resolution µJ); the rest of the
  project speaks W, Hz, degrees C and J.
- A torch device is found by PCI address (BDF), then UUID, then HIP id, never by amdsmi's
  index alone: amdsmi enumerates every physical GPU in PCI order and ignores
  HIP_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES, which renumber devices
  for torch.
- A user outside the render and video groups gets "telemetry unavailable" and what to do
  about it; flopwatt never asks for sudo.

Tests replace the module at the seam: open_amdsmi() does a plain `import amdsmi` inside the
function, which reads sys.modules first, so `monkeypatch.setitem(sys.modules, "amdsmi", fake)`
installs a scripted fake (tests/fake_amdsmi.py). A module that carries a
`FLOPWATT_SYNTHETIC` string is a fake: every session opened on it says so
(`Amdsmi.synthetic_reason`), and the run folders it feeds are marked synthetic.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# A reading is (value, None) when known, (None, reason) when not.
Reading = tuple[T | None, str | None]

UINT16_MAX = 0xFFFF
UINT32_MAX = 0xFFFF_FFFF
UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFF
# What amdsmi leaves in a field it cannot fill, by the field's C width.
SENTINELS = frozenset({UINT16_MAX, UINT32_MAX, UINT64_MAX})
ENERGY_COUNTER_BITS = 64  # amdsmi_get_energy_count returns a uint64 accumulator

# amdsmi_status_t codes (amdsmi.h) that mean something to flopwatt.
STATUS_NOT_SUPPORTED = 2
STATUS_NOT_YET_IMPLEMENTED = 3
STATUS_NO_PERM = 10
STATUS_DRIVER_NOT_LOADED = 34
STATUS_AMDGPU_RESTART_ERR = 54

PERMISSION_HINT = (
    "telemetry unavailable: add the user to the render and video groups "
    "(`usermod -aG render,video $USER`, then log in again; in a container pass "
    "--device /dev/kfd --device /dev/dri and --group-add the render group)"
)
_INSTALL_HINT = (
    "install amdsmi from the ROCm release that matches the driver "
    "(`pip install amdsmi` needs /opt/rocm/lib/libamd_smi.so on LD_LIBRARY_PATH)"
)
_LOOKUP_HINT = (
    "check HIP_VISIBLE_DEVICES/ROCR_VISIBLE_DEVICES and that torch and amdsmi see the same GPUs"
)
VISIBILITY_VARS = ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")


class AmdsmiUnavailable(RuntimeError):
    """amdsmi cannot be used here (not installed, init failed, no such device); says why."""


class AmdsmiCallFailed(RuntimeError):
    """An amdsmi call failed in a way that must stop the caller (the driver went away)."""


def known(value: Any, what: str, sentinels: frozenset[int] = SENTINELS) -> Reading[Any]:
    """(value, None), or (None, reason) for amdsmi's "N/A" string and UINT max sentinels."""
    if value is None or (isinstance(value, str) and value.strip().upper() in ("N/A", "")):
        return None, f"{what}: N/A on this GPU"
    if isinstance(value, int) and not isinstance(value, bool) and value in sentinels:
        return None, f"{what}: not reported (sentinel {value:#x})"
    return value, None


def normalize_bdf(bdf: str) -> str:
    """A PCI address in amdsmi's spelling, "0000:23:00.0" (torch/NVML write 8 domain digits).

    Raises ValueError on anything that is not a PCI address.
    """
    match = re.match(
        r"^(?:(?P<d>[0-9a-fA-F]{1,8}):)?(?P<b>[0-9a-fA-F]{1,2}):(?P<dev>[0-9a-fA-F]{1,2})"
        r"(?:\.(?P<f>[0-7]))?$",
        bdf.strip(),
    )
    if match is None:
        raise ValueError(f"not a PCI address: {bdf!r} (expected e.g. 0000:23:00.0)")
    domain, bus, dev = int(match["d"] or "0", 16), int(match["b"], 16), int(match["dev"], 16)
    return f"{domain:04x}:{bus:02x}:{dev:02x}.{int(match['f'] or '0')}"


def uuid_key(uuid: str) -> str:
    """The part of a GPU UUID every ROCm layer agrees on: its last 12 hex digits.

    amdsmi, HIP and torch spell AMD UUIDs differently (prefix, dashes, leading fields), so
    they are compared by their tail, lower case, without separators.
    """
    digits = re.sub(r"[^0-9a-f]", "", uuid.lower().removeprefix("gpu-"))
    return digits[-12:]


def physical_hip_id(torch_index: int, environ: Mapping[str, str]) -> Reading[int]:
    """The node-wide HIP id of torch's device `torch_index`, through the visibility variables.

    ROCR_VISIBLE_DEVICES filters first (the ROCm runtime), then HIP_VISIBLE_DEVICES (or
    CUDA_VISIBLE_DEVICES, which HIP honours) indexes what is left. HIP_ and CUDA_ lists that
    disagree are refused rather than guessed between. Entries that are UUIDs cannot be turned
    into an id here: (None, reason), and the caller matches by BDF or UUID instead.
    """
    lists = {name: _entries(environ.get(name)) for name in VISIBILITY_VARS}
    hip, cuda = lists["HIP_VISIBLE_DEVICES"], lists["CUDA_VISIBLE_DEVICES"]
    if hip is not None and cuda is not None and hip != cuda:
        return None, (
            f"HIP_VISIBLE_DEVICES={','.join(hip)} and CUDA_VISIBLE_DEVICES={','.join(cuda)} "
            "disagree; set one of them"
        )
    index = torch_index
    for name, listed in (
        ("HIP/CUDA_VISIBLE_DEVICES", hip or cuda),
        ("ROCR_VISIBLE_DEVICES", _entries(environ.get("ROCR_VISIBLE_DEVICES"))),
    ):
        if listed is None:
            continue
        if index >= len(listed):
            return None, f"device {index} is not in {name}={','.join(listed)}"
        entry = listed[index]
        if not entry.isdigit():
            return None, f"{name} names {entry!r}, not an index"
        index = int(entry)
    return index, None


def _entries(value: str | None) -> list[str] | None:
    if value is None or not value.strip():
        return None
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def device_node_problem(kfd: Path = Path("/dev/kfd"), dri: Path = Path("/dev/dri")) -> str | None:
    """Why this user cannot open the GPU device nodes (render/video groups), or None."""
    nodes = [kfd, *sorted(dri.glob("renderD*"))] if dri.is_dir() else [kfd]
    blocked = [
        str(node) for node in nodes if node.exists() and not os.access(node, os.R_OK | os.W_OK)
    ]
    return f"{', '.join(blocked)} not readable and writable by this user" if blocked else None


class EnergyTracker:
    """Energy in J from the accumulator's ticks, across a wrap of its counter width.

    A reading smaller than the previous one is a wrap when the wrapped step is small (less
    than half the counter's range); otherwise the counter was reset (a driver reload) and
    the tracker says so instead of inventing a step.
    """

    def __init__(self, bits: int = ENERGY_COUNTER_BITS) -> None:
        self.modulus = 1 << bits
        self._last: int | None = None
        self.total_ticks = 0
        self.wraps = 0

    def step(self, ticks: int) -> str | None:
        """Take one reading; None, or the reason the counter cannot be followed."""
        if self._last is not None:
            delta = ticks - self._last
            if delta < 0:
                wrapped = delta + self.modulus
                if wrapped >= self.modulus // 2:
                    self._last = ticks
                    return "energy accumulator went backwards (driver reload?)"
                delta = wrapped
                self.wraps += 1
            self.total_ticks += delta
        self._last = ticks
        return None


def _error_code(err: BaseException) -> int | None:
    code = getattr(err, "err_code", None)
    return abs(int(code)) if isinstance(code, int) else None


def _exception_classes(lib: Any) -> tuple[type[BaseException], ...]:
    base = getattr(lib, "AmdSmiException", None)
    return (base, PermissionError) if isinstance(base, type) else (PermissionError,)


def _reason_for(fn_name: str, err: BaseException) -> str:
    """The one place that maps an amdsmi exception to a recorded reason, or raises."""
    code = _error_code(err)
    if code in (STATUS_DRIVER_NOT_LOADED, STATUS_AMDGPU_RESTART_ERR):
        raise AmdsmiCallFailed(f"{fn_name} failed: {err}") from err
    if isinstance(err, PermissionError) or code == STATUS_NO_PERM:
        return f"{fn_name}: {PERMISSION_HINT}"
    if code in (STATUS_NOT_SUPPORTED, STATUS_NOT_YET_IMPLEMENTED):
        return f"{fn_name}: not supported on this GPU"
    text = " ".join(str(err).split())
    return f"{fn_name}: {text or type(err).__name__}"


def _call(lib: Any, fn_name: str, *args: Any) -> Reading[Any]:
    fn = getattr(lib, fn_name, None)
    if fn is None:
        return None, f"{fn_name}: not in this amdsmi version"
    try:
        return fn(*args), None
    except _exception_classes(lib) as err:
        return None, _reason_for(fn_name, err)


def _field(reading: Reading[Mapping[str, Any]], key: str, what: str) -> Reading[Any]:
    """One key of a dict an amdsmi call returned, through the sentinel check."""
    data, reason = reading
    if data is None:
        return None, reason
    if key not in data:
        return None, f"{what}: no {key!r} in this amdsmi version"
    return known(data[key], what)


def _scaled(reading: Reading[Any], factor: float) -> Reading[float]:
    value, reason = reading
    if value is None:
        return None, reason
    try:
        return float(value) * factor, None
    except (TypeError, ValueError):
        return None, f"unexpected value {value!r}"


MIN_CAP_W, MAX_CAP_W = 1.0, 10_000.0  # a GPU power cap in W, whatever the part
MAX_TEMPERATURE_C = 200.0  # hotter is not degrees C: older amdsmi releases reported m°C


def _celsius(value: Any, reason: str | None) -> Reading[float]:
    """A temperature in °C, or None with the raw value when it cannot be degrees C (older
    releases' millidegrees are not silently rescaled)."""
    if value is None:
        return None, reason
    if not -50.0 <= float(value) <= MAX_TEMPERATURE_C:
        return None, f"temperature {value} is not in degrees C (an amdsmi in m°C?)"
    return float(value), None


def _enum(lib: Any, enum_name: str, member: str) -> Any:
    return getattr(getattr(lib, enum_name), member)


class AmdsmiDevice:
    """One amdsmi processor handle. Every getter returns (value, None) or (None, reason)."""

    def __init__(self, lib: Any, handle: Any) -> None:
        self._lib = lib
        self.handle = handle

    def _get(self, fn_name: str, *args: Any) -> Reading[Any]:
        return _call(self._lib, fn_name, self.handle, *args)

    def _metrics(self) -> Reading[Mapping[str, Any]]:
        return self._get("amdsmi_get_gpu_metrics_info")

    # identity
    def bdf(self) -> Reading[str]:
        value, reason = self._get("amdsmi_get_gpu_device_bdf")
        return (None, reason) if value is None else (normalize_bdf(str(value)), None)

    def uuid(self) -> Reading[str]:
        value, reason = self._get("amdsmi_get_gpu_device_uuid")
        return (None, reason) if value is None else known(str(value), "uuid")

    def hip_id(self) -> Reading[int]:
        """HIP's node-wide id of this GPU (amdsmi ≥ ROCm 6.4 enumeration info)."""
        return _field(self._get("amdsmi_get_gpu_enumeration_info"), "hip_id", "hip id")

    def asic(self, key: str) -> Reading[Any]:
        """A field of amdsmi_get_gpu_asic_info: market_name, num_compute_units, ..."""
        return _field(self._get("amdsmi_get_gpu_asic_info"), key, key)

    def name(self) -> Reading[str]:
        return self.asic("market_name")

    def compute_units(self) -> Reading[int]:
        value, reason = self.asic("num_compute_units")
        return (None, reason) if value is None else (int(value), None)

    def vbios_version(self) -> Reading[str]:
        return _field(self._get("amdsmi_get_gpu_vbios_info"), "version", "vbios version")

    def driver_version(self) -> Reading[str]:
        return _field(self._get("amdsmi_get_gpu_driver_info"), "driver_version", "driver")

    def compute_partition(self) -> Reading[str]:
        """ "SPX", "CPX", ...: how many logical GPUs this device is split into."""
        value, reason = self._get("amdsmi_get_gpu_compute_partition")
        return (None, reason) if value is None else known(str(value), "compute partition")

    # power and energy
    def power_w(self) -> tuple[Reading[float], Reading[float]]:
        """(current, average) socket power in W. MI300-class parts report only the current
        one ("average_socket_power" reads N/A; newer releases also call it "socket_power");
        older parts only the average."""
        info = self._get("amdsmi_get_power_info")
        current = _scaled(_field(info, "current_socket_power", "current socket power"), 1.0)
        if current[0] is None and "socket_power" in (info[0] or {}):  # newer releases' key
            current = _scaled(_field(info, "socket_power", "socket power"), 1.0)
        average = _scaled(_field(info, "average_socket_power", "average socket power"), 1.0)
        return current, average

    def energy_ticks(self) -> Reading[tuple[int, float]]:
        """(accumulator ticks, µJ per tick). Not supported in VM guests (SR-IOV VFs)."""
        data, reason = self._get("amdsmi_get_energy_count")
        if data is None:
            return None, reason
        key = "energy_accumulator" if "energy_accumulator" in data else "power"  # < 6.2.1
        ticks, why = known(data.get(key), "energy accumulator", frozenset({UINT64_MAX}))
        resolution, why_res = known(data.get("counter_resolution"), "counter resolution")
        if ticks is None or resolution is None:
            return None, why or why_res
        if float(resolution) <= 0:
            return None, f"counter resolution {resolution} is not positive"
        return (int(ticks), float(resolution)), None

    def power_cap_w(self) -> tuple[Reading[float], Reading[float]]:
        """(current, default) power cap in W (amdsmi reports µW). amdsmi has changed the
        units of its power fields between releases: a cap that is not a plausible number of
        µW (under 1 W) is None with the raw value, not a guess at the unit."""
        info = self._get("amdsmi_get_power_cap_info")
        out = []
        for key in ("power_cap", "default_power_cap"):
            value, reason = _scaled(_field(info, key, key.replace("_", " ")), 1e-6)
            if value is not None and not MIN_CAP_W <= value <= MAX_CAP_W:
                value, reason = None, f"{key} {value * 1e6:g} is not a power cap in µW"
            out.append((value, reason))
        return out[0], out[1]

    # clocks
    def gfx_clocks_hz(self) -> Reading[list[float]]:
        """The current graphics clock of each XCD (MI300X has 8), from gpu_metrics; unused
        slots (N/A) dropped. Falls back to the one GFX clock of amdsmi_get_clock_info."""
        clocks, reason = _field(self._metrics(), "current_gfxclks", "per-XCD gfx clocks")
        if isinstance(clocks, Sequence) and not isinstance(clocks, str):
            values = [float(c) * 1e6 for c in clocks if known(c, "xcd clock")[0] is not None]
            if values:
                return values, None
            reason = "per-XCD gfx clocks: all N/A"
        single, why = self.clock_hz("GFX")
        return ([single], None) if single is not None else (None, f"{reason}; {why}")

    def min_gfx_clock_hz(self) -> Reading[float]:
        """The lowest XCD clock: the one that bounds a kernel spread over all XCDs."""
        clocks, reason = self.gfx_clocks_hz()
        return (min(clocks), None) if clocks else (None, reason)

    def clock_hz(self, kind: str, key: str = "clk") -> Reading[float]:
        """One clock of amdsmi_get_clock_info (kind GFX, MEM, SOC; key clk, max_clk, min_clk)."""
        info = self._get("amdsmi_get_clock_info", _enum(self._lib, "AmdSmiClkType", kind))
        return _scaled(_field(info, key, f"{kind} {key}"), 1e6)

    # thermals and throttling
    def temperature_c(self, sensor: str) -> Reading[float]:
        """HOTSPOT (junction) or VRAM (HBM) temperature; EDGE is not read on Instinct parts.
        Falls back to gpu_metrics' temperature_hotspot / temperature_mem."""
        lib = self._lib
        metric = _enum(lib, "AmdSmiTemperatureMetric", "CURRENT")
        value, reason = self._get(
            "amdsmi_get_temp_metric", _enum(lib, "AmdSmiTemperatureType", sensor), metric
        )
        value, why = known(value, f"{sensor} temperature") if value is not None else (None, reason)
        value, why = _celsius(value, why)
        if value is not None:
            return value, None
        key = {"HOTSPOT": "temperature_hotspot", "VRAM": "temperature_mem"}.get(sensor)
        if key is None:
            return None, why
        fallback, why_metrics = _celsius(*_scaled(_field(self._metrics(), key, key), 1.0))
        return (fallback, None) if fallback is not None else (None, f"{why}; {why_metrics}")

    def violations(self) -> Reading[dict[str, Any]]:
        """Throttling on MI300 and newer: the share of time (%) and whether it is active now,
        per cause: ppt_pwr (PVIOL, power), socket_thrm (TVIOL), prochot_thrm, vr_thrm,
        hbm_thrm. Missing causes (N/A) are left out; None with a reason if none is known."""
        data, reason = self._get("amdsmi_get_violation_status")
        if data is None:
            return None, reason
        out: dict[str, Any] = {}
        for cause in ("ppt_pwr", "socket_thrm", "prochot_thrm", "vr_thrm", "hbm_thrm"):
            percent = known(data.get(f"per_{cause}"), cause)[0]
            active = known(data.get(f"active_{cause}"), cause, frozenset({0xFF}))[0]
            if percent is not None:
                out[f"{cause}_percent"] = float(percent)
            if active is not None:
                out[f"{cause}_active"] = bool(active)
        return (out, None) if out else (None, "violation status: every cause N/A")

    def throttle_status(self) -> Reading[bool]:
        """gpu_metrics' throttle_status (Navi, MI1xx, MI2xx; N/A on MI300 and newer)."""
        value, reason = _field(self._metrics(), "throttle_status", "throttle status")
        return (None, reason) if value is None else (bool(value), None)

    # health
    def ecc_counts(self) -> Reading[dict[str, int]]:
        """Memory errors since the driver loaded: correctable, uncorrectable, deferred."""
        data, reason = self._get("amdsmi_get_gpu_total_ecc_count")
        if data is None:
            return None, reason
        out = {}
        for key in ("correctable_count", "uncorrectable_count", "deferred_count"):
            value = known(data.get(key), key)[0]
            if value is not None:
                out[key.removesuffix("_count")] = int(value)
        return (out, None) if out else (None, "ECC counts: every count N/A")

    def pcie(self) -> dict[str, Reading[float]]:
        """Current and maximum PCIe width and speed (GT/s; amdsmi reports MT/s), the
        interface generation and the replay count."""
        info = self._get("amdsmi_get_pcie_info")
        data, reason = info
        static = (data or {}).get("pcie_static", {}), reason
        metric = (data or {}).get("pcie_metric", {}), reason
        return {
            "width": _scaled(_field(metric, "pcie_width", "PCIe width"), 1.0),
            "max_width": _scaled(_field(static, "max_pcie_width", "max PCIe width"), 1.0),
            "speed_gts": _scaled(_field(metric, "pcie_speed", "PCIe speed"), 1e-3),
            "max_speed_gts": _scaled(_field(static, "max_pcie_speed", "max PCIe speed"), 1e-3),
            "gen": _scaled(_field(static, "pcie_interface_version", "PCIe generation"), 1.0),
            "replays": _scaled(_field(metric, "pcie_replay_count", "PCIe replays"), 1.0),
        }

    def xgmi_links(self) -> Reading[list[str]]:
        """Each XGMI link's state, "U" up, "D" down, "X" disabled (amdsmi's letters)."""
        data, reason = self._get("amdsmi_get_gpu_xgmi_link_status")
        if data is None:
            return None, reason
        status = data.get("status")
        return (list(status), None) if status else (None, "no XGMI links reported")


class Amdsmi:
    """An initialised amdsmi session; close() shuts it down (amdsmi counts init/shut_down)."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self._closed = False
        self.synthetic_reason: str | None = getattr(lib, "FLOPWATT_SYNTHETIC", None)

    def __enter__(self) -> Amdsmi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def devices(self) -> list[AmdsmiDevice]:
        handles, reason = _call(self._lib, "amdsmi_get_processor_handles")
        if handles is None:
            raise AmdsmiUnavailable(f"cannot list AMD GPUs ({reason})")
        return [AmdsmiDevice(self._lib, h) for h in handles]

    def device_by_bdf(self, bdf: str) -> AmdsmiDevice:
        try:
            wanted = normalize_bdf(bdf)
        except ValueError as err:
            raise AmdsmiUnavailable(str(err)) from err
        handle, reason = _call(self._lib, "amdsmi_get_processor_handle_from_bdf", wanted)
        if handle is None:
            raise AmdsmiUnavailable(f"no amdsmi device at {wanted} ({reason}); {_LOOKUP_HINT}")
        return AmdsmiDevice(self._lib, handle)

    def device_by_uuid(self, uuid: str) -> AmdsmiDevice:
        wanted = uuid_key(uuid)
        for device in self.devices():
            value = device.uuid()[0]
            if value and uuid_key(value) == wanted:
                return device
        raise AmdsmiUnavailable(f"no amdsmi device with UUID ending {wanted}; {_LOOKUP_HINT}")

    def device_by_hip_id(self, hip_id: int) -> AmdsmiDevice:
        reasons = []
        for device in self.devices():
            value, reason = device.hip_id()
            if value is not None and int(value) == hip_id:
                return device
            if reason:
                reasons.append(reason)
        why = f" ({reasons[0]})" if reasons else ""
        raise AmdsmiUnavailable(f"no amdsmi device with HIP id {hip_id}{why}")

    def match(
        self, index: int, uuid: str | None, bdf: str | None, environ: Mapping[str, str]
    ) -> tuple[AmdsmiDevice, str, list[str]]:
        """The amdsmi device of torch's device `index`: by BDF, UUID, HIP id, then (last
        resort, said so) amdsmi's index of the physical id; with why earlier ways failed."""
        notes: list[str] = []
        for key, value, lookup in (
            ("bdf", bdf, self.device_by_bdf),
            ("uuid", uuid, self.device_by_uuid),
        ):
            if value:
                try:
                    return lookup(value), key, notes
                except AmdsmiUnavailable as err:
                    notes.append(str(err))
        hip_id, reason = physical_hip_id(index, environ)
        if hip_id is None:
            raise AmdsmiUnavailable("; ".join([*notes, str(reason)]))
        try:
            return self.device_by_hip_id(hip_id), "hip_id", notes
        except AmdsmiUnavailable as err:
            notes.append(str(err))
        devices = self.devices()
        if hip_id < len(devices):
            return devices[hip_id], "index (amdsmi's PCI order; may differ from HIP's)", notes
        raise AmdsmiUnavailable("; ".join([*notes, f"amdsmi sees {len(devices)} GPU(s)"]))

    def lib_version(self) -> Reading[str]:
        data, reason = _call(self._lib, "amdsmi_get_lib_version")
        if data is None:
            return None, reason
        if isinstance(data, Mapping):
            parts = [str(data[k]) for k in ("major", "minor", "release") if k in data]
            return ".".join(parts) or str(data), None
        return str(data), None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(*_exception_classes(self._lib)):
            self._lib.amdsmi_shut_down()


def open_amdsmi(importer: Callable[[], Any] | None = None) -> Amdsmi:
    """Import amdsmi and initialise it for AMD GPUs, or raise AmdsmiUnavailable (one line).

    AMDSMI_GPU_METRICS_CACHE_MS is set to 0 unless the user set it: the library caches
    gpu_metrics (up to 100 ms), and a 20 Hz sampler wants every read fresh.
    """
    os.environ.setdefault("AMDSMI_GPU_METRICS_CACHE_MS", "0")
    try:
        lib = importer() if importer is not None else _import()
    except ImportError as err:
        raise AmdsmiUnavailable(f"cannot import amdsmi ({err}); {_INSTALL_HINT}") from err
    except (OSError, KeyError, AttributeError) as err:  # the package without libamd_smi.so
        raise AmdsmiUnavailable(f"amdsmi failed to load ({err}); {_INSTALL_HINT}") from err
    try:
        lib.amdsmi_init(_enum(lib, "AmdSmiInitFlags", "INIT_AMD_GPUS"))
    except _exception_classes(lib) as err:
        code = _error_code(err)
        nodes = device_node_problem()
        if isinstance(err, PermissionError) or code == STATUS_NO_PERM or nodes:
            raise AmdsmiUnavailable(
                f"amdsmi_init: {PERMISSION_HINT}" + (f" ({nodes})" if nodes else "")
            ) from err
        raise AmdsmiUnavailable(f"amdsmi_init failed: {' '.join(str(err).split())}") from err
    return Amdsmi(lib)


def _import() -> Any:
    import amdsmi  # the only amdsmi import in flopwatt; lazy so import never needs ROCm

    return amdsmi
