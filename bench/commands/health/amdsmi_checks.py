"""amdsmi checks of one AMD GPU: the same three reads as the NVML checks, the AMD rows.

Read idle (link capability, ECC counts, XGMI links, power cap, temperatures), under load
(the PCIe link, the lowest XCD clock, throttling) and after the load (the counters again).
MI300-class parts report throttling through the violation API (the share of time each cause
held the clocks down: PVIOL power, TVIOL socket thermal, PROCHOT, VR and HBM thermal) where
older parts had a throttle_status flag; both are read, whichever answers is judged.

Every reading is (value, None) or (None, reason) from bench.hardware.amdsmi; one that amdsmi
cannot give ("N/A", a sentinel, not supported, no permission) is an N/A row with its reason,
never a FAIL. A driver that goes away mid-read (AmdsmiCallFailed) stops the reads: the
"gpu responds" row FAILs and the others say why they were not read.
"""

from __future__ import annotations

from typing import Any

from bench.commands.health.model import FAIL, NA, PASS, WARN, Check, Thresholds, na
from bench.hardware.amdsmi import AmdsmiCallFailed, AmdsmiDevice, Reading

Readings = dict[str, Reading[Any]]

POWER_CAP_SLACK_W = 1.0
VIOLATION_WARN_PERCENT = 5.0  # more than this share of the time clock-limited under load
# GT/s per lane of each PCIe generation: amdsmi reports the link speed, not the generation.
PCIE_GEN_OF_GTS = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}

CHECK_NAMES = (
    "gpu responds",
    "pcie link generation",
    "pcie link width",
    "pcie replays",
    "ecc uncorrectable",
    "ecc correctable",
    "ecc deferred",
    "xgmi links up",
    "power limit",
    "temperature hotspot (idle)",
    "temperature hbm (idle)",
    "gfx clock min over xcds (load)",
    "throttling (load)",
)


def _counters(device: AmdsmiDevice) -> Readings:
    return {"pcie_replays": device.pcie()["replays"], "ecc": device.ecc_counts()}


def read_idle(device: AmdsmiDevice) -> tuple[Readings, str | None]:
    out: Readings = {}
    try:
        out.update({f"pcie_{k}": v for k, v in device.pcie().items()})
        out.update(_counters(device))
        cap, default = device.power_cap_w()
        out["power_cap_w"], out["default_power_cap_w"] = cap, default
        out["hotspot_c"] = device.temperature_c("HOTSPOT")
        out["hbm_c"] = device.temperature_c("VRAM")
        out["xgmi"] = device.xgmi_links()
        out["vbios"] = device.vbios_version()
        out["driver"] = device.driver_version()
        out["name"] = device.name()
    except AmdsmiCallFailed as exc:
        return out, f"lost at idle: {exc}"
    return out, None


def read_load(device: AmdsmiDevice) -> tuple[Readings, str | None]:
    out: Readings = {}
    try:
        pcie = device.pcie()
        out["pcie_speed_gts"], out["pcie_width"] = pcie["speed_gts"], pcie["width"]
        out["gfx_clocks_hz"] = device.gfx_clocks_hz()
        out["max_gfx_clock_hz"] = device.clock_hz("GFX", "max_clk")
        out["violations"] = device.violations()
        out["throttle_status"] = device.throttle_status()
    except AmdsmiCallFailed as exc:
        return out, f"lost under load: {exc}"
    return out, None


def read_after(device: AmdsmiDevice, idle: Readings) -> tuple[Readings, str | None]:
    try:
        return _counters(device), None
    except AmdsmiCallFailed as exc:
        return {}, f"lost after the load: {exc}"


class _Judge:
    def __init__(
        self,
        device: str,
        idle: Readings,
        load: Readings,
        after: Readings,
        lost: str | None,
        t: Thresholds,
    ) -> None:
        self.device, self.idle, self.load, self.after, self.lost, self.t = (
            device,
            idle,
            load,
            after,
            lost,
            t,
        )

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

    def vf(self) -> bool:
        name, _ = self.get(self.idle, "name")
        return bool(name) and str(name).rstrip().endswith("VF")


def _pcie(j: _Judge, which: str) -> Check:
    name = "pcie link generation" if which == "gen" else "pcie link width"
    key = "speed_gts" if which == "gen" else "width"
    cap, why = j.get(j.idle, f"pcie_max_{key}")
    if cap is None:
        return j.na(name, why)
    now, _why_load = j.get(j.load, f"pcie_{key}")
    where = "under load"
    if now is None:
        now, why = j.get(j.idle, f"pcie_{key}")
        where = "at idle"
        if now is None:
            return j.na(name, why)

    def label(v: float) -> str:
        return f"Gen{PCIE_GEN_OF_GTS.get(v, '?')} ({v:g} GT/s)" if which == "gen" else f"x{v:g}"

    expected = f"{label(cap)} (the most GPU and slot allow)"
    if now >= cap:
        return j.row(name, label(now), expected, PASS, f"at its maximum, read {where}")
    if j.vf():
        reason = (
            f"{label(now)} in a VM guest (SR-IOV VF): the link reads as the hypervisor presents it"
        )
        return j.row(name, label(now), expected, NA, reason)
    if where == "under load":
        reason = f"{label(now)} under load where {label(cap)} is possible: a downgraded link"
        return j.row(name, label(now), expected, FAIL, reason)
    reason = f"{label(now)} at idle; idle GPUs train their link down, and no load reading was taken"
    return j.row(name, label(now), expected, WARN, reason)


def _replays(j: _Judge) -> Check:
    before, why = j.get(j.idle, "pcie_replays")
    if before is None:
        return j.na("pcie replays", why)
    after, _ = j.get(j.after, "pcie_replays")
    value = after if after is not None else before
    if after is not None and after > before:
        reason = f"{after - before:g} replays during the check: the link resends corrupted packets"
        return j.row("pcie replays", value, "no rise during the check", WARN, reason)
    return j.row("pcie replays", value, "no rise during the check", PASS, "steady")


def _ecc(j: _Judge) -> list[Check]:
    before, why = j.get(j.idle, "ecc")
    names = ("uncorrectable", "correctable", "deferred")
    if before is None:
        return [j.na(f"ecc {n}", why) for n in names]
    after = j.get(j.after, "ecc")[0] or {}
    rows = []
    for kind in names:
        name = f"ecc {kind}"
        if kind not in before:
            rows.append(j.na(name, f"{kind} count N/A on this GPU"))
            continue
        was, now = before[kind], after.get(kind, before[kind])
        if kind == "correctable":
            verdict, reason = (
                (WARN, f"rose from {was} to {now} during the check")
                if now > was
                else (PASS, "corrected by ECC; steady during the check")
            )
            rows.append(j.row(name, now, "no rise during the check", verdict, reason))
        elif now > was:
            rows.append(j.row(name, now, "0", FAIL, f"rose from {was} to {now} during the check"))
        elif now:
            rows.append(
                j.row(
                    name,
                    now,
                    "0",
                    FAIL if kind == "uncorrectable" else WARN,
                    f"{now} since the driver loaded",
                )
            )
        else:
            rows.append(j.row(name, now, "0", PASS, "none since the driver loaded"))
    return rows


def _xgmi(j: _Judge) -> Check:
    name = "xgmi links up"
    links, why = j.get(j.idle, "xgmi")
    if links is None:
        return j.na(name, why)
    active = [s for s in links if s != "X"]  # "X": disabled, not a fault
    up = sum(s == "U" for s in active)
    value, expected = f"{up}/{len(active)}", f"{len(active)}/{len(active)}"
    if not active:
        return j.row(name, value, expected, NA, "every XGMI link is disabled (no XGMI peers)")
    if up == len(active):
        return j.row(name, value, expected, PASS, "every enabled link is up")
    down = [i for i, s in enumerate(links) if s == "D"]
    return j.row(name, value, expected, FAIL, f"links {down} are down while the others are up")


def _power(j: _Judge) -> Check:
    cap, why = j.get(j.idle, "power_cap_w")
    default, why_default = j.get(j.idle, "default_power_cap_w")
    if cap is None or default is None:
        return j.na("power limit", why or why_default)
    expected = f"{default:.0f} W (the default)"
    if abs(cap - default) <= POWER_CAP_SLACK_W:
        return j.row("power limit", cap, expected, PASS, "at the default", "W")
    how = "capped below" if cap < default else "raised above"
    return j.row(
        "power limit",
        cap,
        expected,
        WARN,
        f"{how} the default: rates will not match the SKU's baseline",
        "W",
    )


def _temperature(j: _Judge, key: str, name: str) -> Check:
    temp, why = j.get(j.idle, key)
    if temp is None:
        return j.na(name, why)
    expected = f"< {j.t.temp_warn_c:.0f} C"
    if temp >= j.t.temp_warn_c:
        return j.row(name, temp, expected, WARN, "hot while idle: check cooling and airflow", "C")
    return j.row(name, temp, expected, PASS, "cool while idle", "C")


def _clock(j: _Judge) -> Check:
    name = "gfx clock min over xcds (load)"
    clocks, why = j.get(j.load, "gfx_clocks_hz")
    if not clocks:
        return j.na(name, why)
    low = min(clocks)
    peak, _ = j.get(j.load, "max_gfx_clock_hz")
    value = f"{low / 1e6:.0f} MHz over {len(clocks)} XCD(s)"
    expected = f"up to {peak / 1e6:.0f} MHz" if peak else "reported"
    spread = (max(clocks) - low) / max(clocks) if max(clocks) else 0.0
    if spread > 0.1:
        return j.row(
            name,
            value,
            expected,
            WARN,
            f"XCD clocks differ by {spread:.0%}: the slowest bounds a GEMM",
        )
    return j.row(
        name, value, expected, PASS, "recorded (dense MFMA runs below the peak clock by design)"
    )


def _throttling(j: _Judge) -> Check:
    name = "throttling (load)"
    violations, why = j.get(j.load, "violations")
    if violations:
        shares = {
            k.removesuffix("_percent"): v for k, v in violations.items() if k.endswith("_percent")
        }
        value = ", ".join(f"{k} {v:g}%" for k, v in shares.items()) or "no shares"
        high = [k for k, v in shares.items() if v > VIOLATION_WARN_PERCENT]
        expected = f"each cause <= {VIOLATION_WARN_PERCENT:g}% of the time"
        thermal = [k for k in high if k.endswith("thrm")]
        if thermal:
            return j.row(name, value, expected, WARN, f"clocks held down by {', '.join(thermal)}")
        if high:
            return j.row(name, value, expected, PASS, "power capping under load is normal")
        return j.row(name, value, expected, PASS, "no cause above the threshold")
    status, why_status = j.get(j.load, "throttle_status")
    if status is None:
        return j.na(name, f"{why}; {why_status}")
    if status:
        return j.row(name, "throttled", "not throttled", WARN, "throttle_status set under load")
    return j.row(name, "not throttled", "not throttled", PASS, "throttle_status clear under load")


def _responds(j: _Judge) -> Check:
    if j.lost:
        return j.row("gpu responds", j.lost, "answers every amdsmi read", FAIL, f"GPU {j.lost}")
    return j.row("gpu responds", "yes", "answers every amdsmi read", PASS, "answered every read")


def judge(
    device: str,
    idle: Readings,
    load: Readings,
    after: Readings,
    lost: str | None,
    thresholds: Thresholds,
) -> list[Check]:
    """The CHECK_NAMES rows of one AMD GPU from its three reads."""
    j = _Judge(device, idle, load, after, lost, thresholds)
    rows = [_responds(j), _pcie(j, "gen"), _pcie(j, "width"), _replays(j)]
    rows += _ecc(j)
    rows += [_xgmi(j), _power(j)]
    rows += [
        _temperature(j, "hotspot_c", "temperature hotspot (idle)"),
        _temperature(j, "hbm_c", "temperature hbm (idle)"),
    ]
    rows += [_clock(j), _throttling(j)]
    return rows


def unavailable(device: str, reason: str) -> list[Check]:
    return [na(device, name, reason) for name in CHECK_NAMES]
