"""Caveats of a vendor comparison, generated from the runs, never typed by hand.

Each one names a way the side-by-side numbers are not like for like (different fp8
encodings, clocks below spec, throttling, estimated energy, shapes that differ, synthetic
runs, another METHOD_VERSION, a busy CPU), with the devices and cases it concerns, so that
the reader decides what a difference means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.commands.report.vendor import Comparison, Entry, synthetic_note
from bench.results.eligibility import MAX_CPU_PRESSURE  # the line compare and health use
from bench.results.frame import case_label, column, known

CLOCK_BELOW = 0.90  # a median clock under 90% of the spec clock the peak assumes


def _entries(comparison: Comparison) -> list[Entry]:
    return [e for _, entries in comparison.rows for e in entries]


def _per_device(
    comparison: Comparison, test: Callable[[Entry], str | None]
) -> dict[str, list[str]]:
    """label -> what test says about each of its entries (None: nothing to say)."""
    out: dict[str, list[str]] = {}
    for e in _entries(comparison):
        said = test(e)
        if said:
            out.setdefault(e.device.label, []).append(said)
    return out


def _list(items: list[str], limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more


def synthetic(comparison: Comparison) -> list[str]:
    return [synthetic_note(d.run) for d in comparison.devices if d.run.meta.get("synthetic")]


def fp8_formats(comparison: Comparison) -> list[str]:
    if not any("fp8" in str(es[0].case.get("dtype")) for _, es in comparison.rows):
        return []
    formats = {
        d.label: ((d.environment.get("gpu") or {}).get("fp8_format")) for d in comparison.devices
    }
    out = []
    known_formats = {f for f in formats.values() if f}
    if len(known_formats) > 1:
        listed = ", ".join(f"{label}: {f}" for label, f in formats.items() if f)
        out.append(
            f"fp8 formats differ ({listed}): the same 'fp8' is different arithmetic (FNUZ "
            "encodings have no infinity and another exponent bias), so the rates are of "
            "different number formats"
        )
    unrecorded = [label for label, f in formats.items() if not f]
    if unrecorded:
        out.append(f"fp8 format not recorded for {', '.join(unrecorded)}")
    return out


def _clock_ratio(case: dict[str, Any]) -> float | None:
    clock, spec = column(case, "sm_clock_hz_median"), column(case, "peak_clock_hz")
    if clock and spec:
        return clock / spec
    clock_peak, peak = column(case, "clock_peak_ops_per_s"), column(case, "peak_ops_per_s")
    if clock_peak and peak:
        return clock_peak / peak
    return None


def clocks_below_spec(comparison: Comparison) -> list[str]:
    def test(e: Entry) -> str | None:
        ratio = _clock_ratio(e.case)
        if ratio is None or ratio >= CLOCK_BELOW:
            return None
        return f"{case_label(e.case)} at {ratio:.0%}"

    return [
        f"{label}: clock below the spec clock its peak assumes ({_list(items)})"
        for label, items in _per_device(comparison, test).items()
    ]


def throttling(comparison: Comparison) -> list[str]:
    def test(e: Entry) -> str | None:
        reasons = e.case.get("throttle") or []
        return f"{case_label(e.case)}: {', '.join(map(str, reasons))}" if reasons else None

    return [
        f"{label}: throttling seen during the energy window ({_list(items)})"
        for label, items in _per_device(comparison, test).items()
    ]


def estimated_energy(comparison: Comparison) -> list[str]:
    def test(e: Entry) -> str | None:
        estimate = e.case.get("energy_source") == "estimate" and known(e.case.get("ops_per_j"))
        return case_label(e.case) if estimate else None

    return [
        f"{label}: energy is an estimate (TDP x utilisation), not a measurement, for "
        f"{len(items)} case(s): its ops/J and energy cost are not comparable with a measured one"
        for label, items in _per_device(comparison, test).items()
    ]


def energy_scopes(comparison: Comparison) -> list[str]:
    scopes = {
        e.device.label: e.case.get("energy_scope")
        for e in _entries(comparison)
        if known(e.case.get("ops_per_j")) and e.case.get("energy_scope")
    }
    if len(set(scopes.values())) < 2:
        return []
    listed = "; ".join(f"{label}: {scope}" for label, scope in scopes.items())
    return [f"energy sensors cover different things ({listed})"]


def unequal_shapes(comparison: Comparison) -> list[str]:
    """Cases with no counterpart: the same kernel and dtype run at other shapes elsewhere."""
    common = set(comparison.keys)
    groups: dict[tuple[Any, Any], dict[str, list[str]]] = {}
    alone = {}
    for d in comparison.devices:
        left = [c for k, c in d.cases.items() if k not in common]
        alone[d.label] = len(left)
        for c in left:
            kind = (c.get("kernel"), c.get("dtype"))
            groups.setdefault(kind, {}).setdefault(d.label, []).append(case_label(c))
    out = []
    for (kernel, dtype), by_device in groups.items():
        if len(by_device) > 1:
            out.append(
                f"{kernel} {dtype} ran at different shapes on "
                f"{' and '.join(by_device)}: only identical cases are compared"
            )
    for label, n in alone.items():
        if n:
            out.append(f"{label}: {n} case(s) have no counterpart and are left out of this section")
    return out


def method_versions(comparison: Comparison) -> list[str]:
    versions = {d.label: d.run.meta.get("method_version") for d in comparison.devices}
    if len(set(versions.values())) < 2:
        return []
    listed = ", ".join(f"{label}: {v}" for label, v in versions.items())
    return [f"measured with different METHOD_VERSIONs ({listed}): the protocol differs"]


def busy_cpu(comparison: Comparison) -> list[str]:
    def test(e: Entry) -> str | None:
        pressure = column(e.case, "cpu_pressure")
        if pressure is None or pressure <= MAX_CPU_PRESSURE:
            return None
        return f"{case_label(e.case)} {pressure:.0%}"

    return [
        f"{label}: the CPU was busy while timing (some task waited for a CPU: {_list(items)})"
        for label, items in _per_device(comparison, test).items()
    ]


def missing_ceilings(comparison: Comparison) -> list[str]:
    lacking: dict[str, dict[str, None]] = {}
    for _, entries in comparison.compute:
        for e in entries:
            if e.ceiling()[0] is None:
                lacking.setdefault(e.device.label, {})[str(e.case.get("dtype"))] = None
    return [
        f"{label}: no measured {'/'.join(dtypes)} ceiling, so its fraction of measured ceiling "
        "is unknown there (`flopwatt ceiling` on that device measures one)"
        for label, dtypes in lacking.items()
    ]


def user_peaks(comparison: Comparison) -> list[str]:
    def test(e: Entry) -> str | None:
        return case_label(e.case) if e.case.get("peak_source") == "user" else None

    return [
        f"{label}: spec peak given by hand (--peak), not from the datasheet ({_list(items)})"
        for label, items in _per_device(comparison, test).items()
    ]


def tunableop(comparison: Comparison) -> list[str]:
    states = {
        d.label: (d.environment.get("software") or {}).get("tunableop_enabled")
        for d in comparison.devices
    }
    if True not in states.values():
        return []
    on = [label for label, s in states.items() if s is True]
    return [f"TunableOp was on for {', '.join(on)}: its GEMMs ran the tuned kernel per shape"]


CHECKS = (
    synthetic,
    fp8_formats,
    method_versions,
    clocks_below_spec,
    throttling,
    estimated_energy,
    energy_scopes,
    unequal_shapes,
    busy_cpu,
    missing_ceilings,
    user_peaks,
    tunableop,
)


def caveats(comparison: Comparison) -> list[str]:
    """Every caveat the data gives, in the order of CHECKS."""
    return [line for check in CHECKS for line in check(comparison)]
