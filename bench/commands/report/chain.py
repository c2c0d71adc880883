"""The efficiency chain at the top of every report, one link per step, each ratio next to its
denominator and where that came from, so that no fraction is ever shown without the number
it divides by.

spec peak -> achieved (utilisation) -> ops per joule -> scaling -> joules at the wall and
cost per 10^18 operations. The last step uses numbers the user typed (PUE, price per kWh),
so it is labelled an estimate from those inputs; a step whose data the run does not have
says so instead of showing a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.results.frame import case_label, column, known
from bench.results.render import percent, rate_unit, si

EXA = 1e18
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Costs:
    """The user's facility inputs; None where not given. usd_per_gpu_hour maps the SKU the
    user typed to a price per device-hour (the vendor comparison resolves it to runs)."""

    pue: float | None = None
    usd_per_kwh: float | None = None
    usd_per_gpu_hour: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    """One step of the chain: the figure, the ratio and what it is a ratio of."""

    step: str
    value: str
    ratio: str = ""
    denominator: str = ""
    source: str = ""


def headline_case(cases: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The case the chain follows: the fastest ok compute case with a known peak (else the
    fastest ok compute case); collectives are rated by bandwidth and join at 'scaling'."""
    ok = [c for c in cases if c.get("status") == "ok" and known(c.get("achieved_ops_per_s"))]
    ok = [c for c in ok if not known(c.get("busbw_bytes_per_s"))]
    rated = [c for c in ok if known(c.get("peak_ops_per_s"))] or ok
    return max(rated, key=lambda c: c["achieved_ops_per_s"], default=None)


def _peak_links(case: dict[str, Any], unit: str) -> list[Link]:
    peak = column(case, "peak_ops_per_s")
    achieved = case["achieved_ops_per_s"]
    source = case.get("peak_source") or ""
    detail = case.get("peak_detail") or ""
    links = [
        Link(
            "spec peak",
            si(peak, unit) if peak else "unknown",
            source=detail if detail.startswith(source) else f"{source}: {detail}",
        )
    ]
    denominator = f"{si(peak, unit)} dense {case.get('math_mode') or case.get('dtype')} peak"
    links.append(
        Link(
            "achieved",
            si(achieved, unit),
            ratio=f"{percent(case.get('frac_of_peak'))} of spec peak" if peak else "",
            denominator=denominator if peak else "no peak to divide by",
            source=f"median of {case.get('n_samples')} samples, {case_label(case)}",
        )
    )
    clock_frac = column(case, "frac_of_clock_peak")
    if clock_frac is not None:
        clock_peak = column(case, "clock_peak_ops_per_s") or achieved / clock_frac
        links.append(
            Link(
                "achieved vs clock-adjusted peak",
                percent(clock_frac),
                ratio=f"{percent(clock_frac)} of the peak at the clock it ran at",
                denominator=f"{si(clock_peak, unit)} = peak x measured clock / spec clock",
                source=str(column(case, "clock_peak_detail", "clock_source") or ""),
            )
        )
    measured = column(case, "frac_of_measured_peak")
    if measured is not None:
        ceiling = column(case, "measured_peak_ops_per_s") or achieved / measured
        where = column(case, "measured_peak_source") or "measured"
        links.append(
            Link(
                "achieved vs measured ceiling",
                percent(measured),
                ratio=f"{percent(measured)} of the best matmul rate measured on this device",
                denominator=f"{si(ceiling, unit)} ({where})",
                source=str(column(case, "measured_peak_detail") or ""),
            )
        )
    return links


def _energy_link(case: dict[str, Any], unit: str) -> Link:
    opj = column(case, "ops_per_j")
    if opj is None:
        return Link("ops per joule", "not measured", source=str(case.get("energy_reason") or ""))
    est = case.get("energy_source") == "estimate"
    net = column(case, "net_ops_per_j")
    ratio = f"net of idle: {si(net, unit + '/W')}" if net else ""
    return Link(
        "ops per joule" + (" (estimate)" if est else ""),
        si(opj, unit + "/W") + f" = {si(opj, unit.split('/')[0] + '/J')}",
        ratio=ratio,
        denominator=f"{si(case.get('avg_power_w'), 'W')} average over {case.get('window_s'):.3g} s"
        if known(case.get("window_s"))
        else "",
        source=f"{case.get('energy_source')} ({case.get('energy_scope') or 'scope unknown'})",
    )


def _scaling_links(cases: list[dict[str, Any]]) -> list[Link]:
    links = []
    coll = [c for c in cases if c.get("status") == "ok" and known(c.get("link_utilisation"))]
    if coll:
        best = max(coll, key=lambda c: c["busbw_bytes_per_s"])
        links.append(
            Link(
                "link utilisation",
                si(best["busbw_bytes_per_s"], "B/s") + " busbw",
                ratio=f"{percent(best['link_utilisation'])} of link peak",
                denominator=f"{si(best.get('link_peak_bytes_per_s'), 'B/s')} unidirectional",
                source=f"{best.get('link_peak_source')}: {best.get('link_peak_detail') or ''}",
            )
        )
    scaled = [c for c in cases if c.get("status") == "ok" and known(c.get("scaling_efficiency"))]
    if scaled:
        widest = max(scaled, key=lambda c: (c.get("world_size") or 1, c["scaling_efficiency"]))
        n = widest.get("world_size") or 1
        links.append(
            Link(
                "scaling efficiency",
                percent(widest["scaling_efficiency"]),
                ratio=f"E({n}) = T(1) / ({n} T({n}))"
                if (widest.get("params") or {}).get("scaling") == "strong"
                else f"E({n}) = X({n}) / ({n} X(1))",
                denominator=f"{n} x the one-device rate",
                source=f"{(widest.get('params') or {}).get('scaling', '')} scaling, "
                f"{case_label({**widest, 'world_size': 1})}",
            )
        )
    if not links:
        links.append(
            Link("scaling", "not measured in this run", source="one device, no collectives")
        )
    return links


def _cost_links(case: dict[str, Any], costs: Costs, unit: str) -> list[Link]:
    opj = column(case, "ops_per_j")
    base = unit.split("/")[0]
    if costs.pue is None and costs.usd_per_kwh is None:
        return [
            Link("at the wall and cost", "not estimated", source="pass --pue and --usd-per-kwh")
        ]
    if opj is None:
        return [Link("at the wall and cost", "unknown", source="needs ops per joule")]
    pue = costs.pue if costs.pue is not None else 1.0
    wall_j = EXA * pue / opj
    inputs = f"estimate from your inputs: PUE {pue:g}" + (
        "" if costs.pue is not None else " (not given; 1 assumed)"
    )
    links = [
        Link(
            f"joules at the wall per 10^18 {base}",
            si(wall_j, "J") + f" = {wall_j / J_PER_KWH:.4g} kWh",
            ratio="PUE x 10^18 / ops per joule",
            denominator=f"device energy only ({case.get('energy_scope') or 'scope unknown'})",
            source=inputs,
        )
    ]
    if costs.usd_per_kwh is not None:
        usd = wall_j / J_PER_KWH * costs.usd_per_kwh
        links.append(
            Link(
                f"cost per 10^18 {base}",
                f"${usd:.4g}",
                ratio="kWh at the wall x price",
                denominator=f"${costs.usd_per_kwh:g} per kWh",
                source=inputs + f", ${costs.usd_per_kwh:g}/kWh",
            )
        )
    return links


def _hardware_link(case: dict[str, Any], usd_per_hour: float, unit: str) -> Link:
    """Device-hours per 10^18 operations at the achieved rate, times the price per hour."""
    devices = case.get("world_size") or 1
    usd = EXA / case["achieved_ops_per_s"] / 3600.0 * devices * usd_per_hour
    return Link(
        f"hardware time per 10^18 {unit.split('/')[0]}",
        f"${usd:.4g}",
        ratio="10^18 / achieved rate, in hours, x devices x price",
        denominator=f"${usd_per_hour:g} per device-hour",
        source=f"estimate from your input: --usd-per-gpu-hour, {devices} device(s)",
    )


def efficiency_chain(
    cases: list[dict[str, Any]], costs: Costs, usd_per_gpu_hour: float | None = None
) -> tuple[list[Link], str]:
    """The chain of one run and the note that says which case it follows; usd_per_gpu_hour
    is the price the user gave for this run's SKU, if any."""
    case = headline_case(cases)
    if case is None:
        return [], "no case finished: nothing to chain"
    unit = rate_unit(case.get("dtype") or "")
    links = _peak_links(case, unit)
    links.append(_energy_link(case, unit))
    links += _scaling_links(cases)
    links += _cost_links(case, costs, unit)
    if usd_per_gpu_hour is not None:
        links.append(_hardware_link(case, usd_per_gpu_hour, unit))
    return links, f"following {case_label(case)}, the fastest case with a known peak"
