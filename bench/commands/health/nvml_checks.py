"""NVML checks of one GPU: read it idle, under load and after the load; judge the readings.

Why three reads:
- idle, before anything runs: the static facts (link capability, modes, limits, VBIOS) and
  the error counters' starting values; temperature and clock-event reasons at idle;
- under load, while the health matmul runs: the PCIe link. An idle GPU trains its link
  down to a lower generation to save power, so a link read at idle below its maximum is
  normal; the same link below its maximum under load is the classic silent fault (an
  unseated card, a bad riser). Clock-event reasons under load say whether it throttled;
- after the load: the error counters again. A count that rose during the check (ECC,
  NVLink, PCIe replays) is worse news than an old count.

Readings come from bench.hardware.nvml.NvmlDevice as (value, None) or (None, reason); a reading
that NVML cannot give is N/A with that reason, never a FAIL. So is a reading the environment
cannot vouch for: in a VM the PCIe link is the one the hypervisor presents, and with one GPU
on the node there is no NVLink peer, so a link below its maximum or down there is N/A.
A GPU lost mid-read (NvmlCallFailed) stops its reads: the "gpu responds" row FAILs and the
others say why they were not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.commands.health.model import FAIL, NA, PASS, WARN, Check, Thresholds, na
from bench.hardware.nvml import NvmlCallFailed, NvmlDevice, Reading, decode_clock_event_reasons

Readings = dict[str, Reading[Any]]

# Clock-event reason bits (bench.hardware.nvml.CLOCK_EVENT_REASON_BITS) that mean hardware
# protection: at idle they mean a fault; SwThermalSlowdown means the GPU runs too hot.
HW_SLOWDOWN_BITS = 0x8 | 0x40 | 0x80  # HwSlowdown, HwThermalSlowdown, HwPowerBrakeSlowdown
SW_THERMAL_BIT = 0x20
RETIRED_PAGES_LIMIT = 60  # NVIDIA's page-retirement guidance: service the board at 60 pages
NVLINK_COUNTERS = ("replay", "recovery", "crc_flit", "crc_data")
POWER_LIMIT_SLACK_W = 1.0

# The rows judge() writes for every GPU, in order; unavailable() gives each of them N/A.
CHECK_NAMES = (
    "gpu responds",
    "pcie link generation",
    "pcie link width",
    "pcie replays",
    "ecc mode",
    "ecc uncorrected (volatile)",
    "ecc corrected (volatile)",
    "ecc uncorrected (aggregate)",
    "ecc corrected (aggregate)",
    "remapped rows",
    "retired pages",
    "nvlink links up",
    "nvlink errors",
    "power limit",
    "persistence mode",
    "temperature (idle)",
    "clock events (idle)",
    "clock events (load)",
)


def _read_ecc(device: NvmlDevice) -> Readings:
    return {
        f"ecc_{kind}_{counter}": device.ecc_errors(kind == "uncorrected", counter == "aggregate")
        for kind in ("corrected", "uncorrected")
        for counter in ("volatile", "aggregate")
    }


def _read_retired(device: NvmlDevice) -> Readings:
    return {
        "retired_sbe": device.retired_pages(double_bit=False),
        "retired_dbe": device.retired_pages(double_bit=True),
        "retired_pending": device.retired_pages_pending(),
    }


def _read_nvlink_errors(device: NvmlDevice, n_links: int) -> Readings:
    """Each counter summed over the links that answered; (None, reason) when none did."""
    totals: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for link in range(n_links):
        for name, (value, reason) in device.nvlink_errors(link).items():
            if value is None:
                reasons.setdefault(name, str(reason))
            else:
                totals[name] = totals.get(name, 0) + value
    return {
        f"nvlink_{name}": (totals[name], None)
        if name in totals
        else (None, reasons.get(name, "no NVLink"))
        for name in NVLINK_COUNTERS
    }


def _counters(device: NvmlDevice, n_links: int) -> Readings:
    """The counters read both before and after the load."""
    out = {"pcie_replays": device.pcie_replay_count(), "remapped_rows": device.remapped_rows()}
    out.update(_read_ecc(device))
    out.update(_read_retired(device))
    out.update(_read_nvlink_errors(device, n_links))
    return out


def _links(readings: Readings) -> int:
    states, _ = readings.get("nvlink_states", (None, None))
    return len(states) if states else 0


def read_idle(device: NvmlDevice) -> tuple[Readings, str | None]:
    """Everything, before the load; (readings, None) or (what was read, why the GPU is lost)."""
    out: Readings = {}
    try:
        out.update({f"pcie_{k}": v for k, v in device.pcie_link().items()})
        out["nvlink_states"] = device.nvlink_states()
        out.update(_counters(device, _links(out)))
        for key, getter in (
            ("ecc_mode", NvmlDevice.ecc_mode),
            ("power_limit_w", NvmlDevice.power_limit_w),
            ("default_power_limit_w", NvmlDevice.default_power_limit_w),
            ("persistence", NvmlDevice.persistence_mode),
            ("temperature_c", NvmlDevice.temperature_c),
            ("slowdown_temperature_c", NvmlDevice.slowdown_temperature_c),
            ("clock_events", NvmlDevice.clocks_event_reasons),
            ("vbios", NvmlDevice.vbios_version),
            ("virtualization", NvmlDevice.virtualization_mode),
            ("gpu_count", NvmlDevice.gpus_on_node),
        ):
            out[key] = getter(device)
    except NvmlCallFailed as exc:
        return out, f"lost at idle: {exc}"
    return out, None


def read_load(device: NvmlDevice) -> tuple[Readings, str | None]:
    """The link, clocks and temperature while the GPU works (cheap calls only)."""
    out: Readings = {}
    try:
        link = device.pcie_link()
        out["pcie_gen"], out["pcie_width"] = link["gen"], link["width"]
        out["clock_events"] = device.clocks_event_reasons()
        out["temperature_c"] = device.temperature_c()
        out["sm_clock_hz"] = device.sm_clock_hz()
    except NvmlCallFailed as exc:
        return out, f"lost under load: {exc}"
    return out, None


def read_after(device: NvmlDevice, idle: Readings) -> tuple[Readings, str | None]:
    """The counters again, after the load."""
    try:
        return _counters(device, _links(idle)), None
    except NvmlCallFailed as exc:
        return {}, f"lost after the load: {exc}"


# --------------------------------------------------------------------------- judging


@dataclass
class _Judge:
    """The readings of one GPU and the helpers every check uses."""

    device: str
    idle: Readings
    load: Readings
    after: Readings
    lost: str | None
    t: Thresholds

    def get(self, readings: Readings, key: str) -> Reading[Any]:
        if key in readings:
            return readings[key]
        return None, f"not read: the GPU was {self.lost}" if self.lost else "not read"

    def row(
        self, name: str, value: Any, expected: str, verdict: str, reason: str, unit: str = ""
    ) -> Check:
        return Check(self.device, name, value, expected, verdict, reason, unit)

    def na(self, name: str, reason: str | None) -> Check:
        return na(self.device, name, str(reason or "unknown"))

    def in_vm(self) -> str | None:
        """The virtualisation mode when NVML says the GPU sits in a VM; None on bare metal or
        when NVML cannot say."""
        mode, _ = self.get(self.idle, "virtualization")
        return None if mode in (None, "none") else str(mode)

    def counter(self, key: str) -> tuple[Any, Any, str | None]:
        """(before, after, reason): after is None when only the first read worked."""
        before, why = self.get(self.idle, key)
        after, _ = self.get(self.after, key)
        return before, after, why


def _link_label(which: str, value: Any) -> str:
    return f"Gen{value}" if which == "gen" else f"x{value}"


def _pcie(j: _Judge, which: str) -> Check:
    name = "pcie link generation" if which == "gen" else "pcie link width"
    cap, why = j.get(j.idle, f"pcie_max_{which}")
    if cap is None:
        return j.na(name, why)
    now, why_load = j.get(j.load, f"pcie_{which}")
    where = "under load"
    if now is None:
        now, why = j.get(j.idle, f"pcie_{which}")
        where = "at idle"
        if now is None:
            return j.na(name, why)
    expected = f"{_link_label(which, cap)} (the most GPU and slot allow)"
    value = _link_label(which, now)
    if now >= cap:
        return j.row(name, value, expected, PASS, f"at its maximum, read {where}")
    vm = j.in_vm()
    if vm is not None:
        reason = (
            f"{value} {where} where {_link_label(which, cap)} is possible, but the GPU is in a "
            f"VM ({vm}): the link reads as the hypervisor presents it and cannot be judged here"
        )
        return j.row(name, value, expected, NA, reason)
    if where == "under load":
        reason = (
            f"{value} under load where {_link_label(which, cap)} is possible: a downgraded link "
            "(reseat the card, check the riser or retimer)"
        )
        return j.row(name, value, expected, FAIL, reason)
    reason = (
        f"{value} at idle; idle GPUs train their link down to save power, and no reading "
        f"under load was taken ({why_load})"
    )
    return j.row(name, value, expected, WARN, reason)


def _rose(before: Any, after: Any) -> bool:
    return before is not None and after is not None and after > before


def _replays(j: _Judge) -> Check:
    before, after, why = j.counter("pcie_replays")
    if before is None:
        return j.na("pcie replays", why)
    value = after if after is not None else before
    if _rose(before, after):
        reason = f"{after - before} replays during the check: the link resends corrupted packets"
        return j.row("pcie replays", value, "no rise during the check", WARN, reason)
    return j.row("pcie replays", value, "no rise during the check", PASS, "steady")


def _ecc_mode(j: _Judge) -> Check:
    on, why = j.get(j.idle, "ecc_mode")
    if on is None:
        return j.na("ecc mode", why)
    if on:
        return j.row("ecc mode", "on", "on", PASS, "memory errors are detected and counted")
    return j.row("ecc mode", "off", "on", WARN, "off: memory errors go undetected")


def _ecc_counts(j: _Judge) -> list[Check]:
    rows = []
    for kind, counter in (
        ("uncorrected", "volatile"),
        ("corrected", "volatile"),
        ("uncorrected", "aggregate"),
        ("corrected", "aggregate"),
    ):
        name = f"ecc {kind} ({counter})"
        before, after, why = j.counter(f"ecc_{kind}_{counter}")
        if before is None:
            rows.append(j.na(name, why))
            continue
        value = after if after is not None else before
        rose = _rose(before, after)
        if kind == "uncorrected" and counter == "volatile":
            expected = "0"
            if rose:
                verdict, reason = FAIL, f"rose from {before} to {after} during the check"
            elif value:
                verdict, reason = FAIL, f"{value} uncorrectable errors since the driver loaded"
            else:
                verdict, reason = PASS, "none since the driver loaded"
        elif kind == "uncorrected":
            expected = "0"
            verdict, reason = (
                (WARN, f"{value} in the GPU's lifetime: see remapped rows or retired pages")
                if value
                else (PASS, "none in the GPU's lifetime")
            )
        else:
            expected = "no rise during the check"
            verdict, reason = (
                (WARN, f"rose from {before} to {after} during the check")
                if rose
                else (PASS, "corrected by ECC; steady during the check")
            )
        rows.append(j.row(name, value, expected, verdict, reason))
    return rows


def _remapped(j: _Judge) -> Check:
    name = "remapped rows"
    rows, why = j.get(j.after, "remapped_rows")
    if rows is None:
        rows, why = j.get(j.idle, "remapped_rows")
    if rows is None:
        return j.na(name, why)
    pending, failure = ("yes" if rows[k] else "no" for k in ("pending", "failure"))
    value = (
        f"{rows['correctable']} correctable, {rows['uncorrectable']} uncorrectable, "
        f"pending {pending}, failure {failure}"
    )
    expected = "no pending remap, no failure"
    if rows["failure"]:
        return j.row(name, value, expected, FAIL, "a row remap failed: the GPU needs service")
    if rows["pending"]:
        reason = "a remap waits for a GPU reset: the faulty row stays in use until then"
        return j.row(name, value, expected, FAIL, reason)
    if rows["uncorrectable"]:
        reason = "rows were remapped after uncorrectable errors: repaired, watch the trend"
        return j.row(name, value, expected, WARN, reason)
    return j.row(name, value, expected, PASS, "no remap pending or failed")


def _retired(j: _Judge) -> Check:
    name = "retired pages"
    source = j.after if "retired_sbe" in j.after else j.idle
    sbe, why = j.get(source, "retired_sbe")
    dbe, why_dbe = j.get(source, "retired_dbe")
    pending, _ = j.get(source, "retired_pending")
    if sbe is None or dbe is None:
        return j.na(name, why or why_dbe)
    value = f"{sbe} single-bit, {dbe} double-bit, pending {'yes' if pending else 'no'}"
    expected = f"none pending, under {RETIRED_PAGES_LIMIT} in all"
    if pending:
        return j.row(name, value, expected, FAIL, "a retirement waits for a GPU reset")
    if sbe + dbe >= RETIRED_PAGES_LIMIT:
        reason = f"{sbe + dbe} pages retired: NVIDIA advises service at {RETIRED_PAGES_LIMIT}"
        return j.row(name, value, expected, FAIL, reason)
    if dbe:
        return j.row(name, value, expected, WARN, "pages retired after double-bit errors")
    return j.row(name, value, expected, PASS, "no double-bit retirement, none pending")


def _nvlink_up(j: _Judge) -> Check:
    name = "nvlink links up"
    states, why = j.get(j.idle, "nvlink_states")
    if states is None:
        return j.na(name, why)
    up = sum(states)
    value, expected = f"{up}/{len(states)}", f"{len(states)}/{len(states)}"
    if up == len(states):
        return j.row(name, value, expected, PASS, "every link is up")
    count, _ = j.get(j.idle, "gpu_count")
    if count == 1:
        reason = f"{value} up, but this node has one GPU: no NVLink peer to judge the links by"
        return j.row(name, value, expected, NA, reason)
    vm = j.in_vm()
    if vm is not None:
        reason = f"{value} up in a VM ({vm}): NVLinks read as the hypervisor presents them"
        return j.row(name, value, expected, NA, reason)
    if up == 0:
        reason = "no link is up: no NVLink bridge or switch here, or every link is down"
        return j.row(name, value, expected, WARN, reason)
    down = [i for i, s in enumerate(states) if not s]
    return j.row(name, value, expected, FAIL, f"links {down} are down while the others are up")


def _nvlink_errors_row(j: _Judge) -> Check:
    name = "nvlink errors"
    before = {c: j.get(j.idle, f"nvlink_{c}") for c in NVLINK_COUNTERS}
    known = {c: v for c, (v, _) in before.items() if v is not None}
    if not known:
        return j.na(name, before["replay"][1])
    after = {c: j.get(j.after, f"nvlink_{c}")[0] for c in known}
    now = {c: after[c] if after[c] is not None else known[c] for c in known}
    value = ", ".join(f"{c} {v}" for c, v in now.items())
    expected = "0, and no rise during the check"
    rose = [c for c in known if _rose(known[c], after[c])]
    if "recovery" in rose:
        reason = "link recoveries during the check: a link retrained under load"
        return j.row(name, value, expected, FAIL, reason)
    if rose:
        return j.row(name, value, expected, WARN, f"{', '.join(rose)} rose during the check")
    if any(now.values()):
        return j.row(name, value, expected, WARN, "errors since the driver loaded; steady now")
    return j.row(name, value, expected, PASS, "no errors on links that report them")


def _power_limit(j: _Judge) -> Check:
    name = "power limit"
    limit, why = j.get(j.idle, "power_limit_w")
    default, why_default = j.get(j.idle, "default_power_limit_w")
    if limit is None or default is None:
        return j.na(name, why or why_default)
    expected = f"{default:.0f} W (the default)"
    if abs(limit - default) <= POWER_LIMIT_SLACK_W:
        return j.row(name, limit, expected, PASS, "at the default", "W")
    how = "capped below" if limit < default else "raised above"
    reason = f"{how} the default: rates will not match the SKU's baseline"
    return j.row(name, limit, expected, WARN, reason, "W")


def _persistence(j: _Judge) -> Check:
    on, why = j.get(j.idle, "persistence")
    if on is None:
        return j.na("persistence mode", why)
    if on:
        return j.row("persistence mode", "on", "on", PASS, "the driver stays loaded")
    reason = "off: the driver unloads between jobs and clock and power settings reset"
    return j.row("persistence mode", "off", "on", WARN, reason)


def _temperature(j: _Judge) -> Check:
    name = "temperature (idle)"
    temp, why = j.get(j.idle, "temperature_c")
    if temp is None:
        return j.na(name, why)
    slowdown, _ = j.get(j.idle, "slowdown_temperature_c")
    expected = f"< {j.t.temp_warn_c:.0f} C"
    if slowdown is not None:
        expected += f" (slowdown at {slowdown:.0f} C)"
    if slowdown is not None and temp >= slowdown:
        return j.row(name, temp, expected, FAIL, "at the slowdown threshold while idle", "C")
    if temp >= j.t.temp_warn_c:
        return j.row(name, temp, expected, WARN, "hot while idle: check cooling and airflow", "C")
    return j.row(name, temp, expected, PASS, "cool while idle", "C")


def _clock_events(j: _Judge, phase: str) -> Check:
    name = f"clock events ({phase})"
    mask, why = j.get(j.idle if phase == "idle" else j.load, "clock_events")
    if mask is None:
        return j.na(name, why)
    names = decode_clock_event_reasons(mask)
    value = ", ".join(names) or "none"
    expected = "no hardware slowdown, no thermal slowdown"
    hardware = decode_clock_event_reasons(mask & HW_SLOWDOWN_BITS)
    if hardware and phase == "idle":
        reason = f"{', '.join(hardware)} while idle: power brake or overheating hardware"
        return j.row(name, value, expected, FAIL, reason)
    if hardware or mask & SW_THERMAL_BIT:
        slow = ", ".join(decode_clock_event_reasons(mask & (HW_SLOWDOWN_BITS | SW_THERMAL_BIT)))
        return j.row(name, value, expected, WARN, f"clocks held down by {slow}")
    note = "power capping under load is normal" if phase == "load" and mask & 0x4 else "normal"
    return j.row(name, value, expected, PASS, note)


def _responds(j: _Judge) -> Check:
    if j.lost:
        return j.row("gpu responds", j.lost, "answers every NVML read", FAIL, f"GPU {j.lost}")
    return j.row("gpu responds", "yes", "answers every NVML read", PASS, "answered every read")


def judge(
    device: str,
    idle: Readings,
    load: Readings,
    after: Readings,
    lost: str | None,
    thresholds: Thresholds,
) -> list[Check]:
    """The CHECK_NAMES rows of one GPU from its three reads."""
    j = _Judge(device, idle, load, after, lost, thresholds)
    rows = [_responds(j), _pcie(j, "gen"), _pcie(j, "width"), _replays(j), _ecc_mode(j)]
    rows += _ecc_counts(j)
    rows += [_remapped(j), _retired(j), _nvlink_up(j), _nvlink_errors_row(j)]
    rows += [_power_limit(j), _persistence(j), _temperature(j)]
    rows += [_clock_events(j, "idle"), _clock_events(j, "load")]
    return rows


def unavailable(device: str, reason: str) -> list[Check]:
    """Every NVML check N/A with the one reason (no NVML, no NVIDIA GPU, a CPU)."""
    return [na(device, name, reason) for name in CHECK_NAMES]
