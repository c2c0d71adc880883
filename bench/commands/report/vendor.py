"""The vendor comparison: the same cases on different devices, side by side.

It appears whenever the runs of a report come from more than one device (vendor or SKU).
Per common case (same kernel, dtype, shape, world size) and device: the achieved rate, its
fraction of the spec peak and of the device's own measured ceiling (the like-for-like
denominator), each beside its denominator and source; ops per joule gross and net of idle;
busbw for collectives; and the cost of 10^18 operations in two labelled parts, energy (PUE x
price per kWh) and hardware time (price per GPU-hour), and their sum. Published achievable
rates are reference notes only. The software stack (stack.py) and the caveats drawn from the
data (caveats.py) stand next to the tables, so nobody compares unlike things silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.commands.report.chain import EXA, J_PER_KWH, Costs
from bench.results.frame import (
    case_dicts,
    case_key,
    case_label,
    column,
    device_name,
    known,
    run_label,
)
from bench.results.record import Run

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Device:
    """One run seen as a device: who made it, which SKU, and its ok cases by case key."""

    run: Run
    label: str
    vendor: str
    name: str
    sku: str  # the peak table's SKU (or the device name when the table has none)
    sku_key: str  # its folder-name form, what --usd-per-gpu-hour matches
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def environment(self) -> dict[str, Any]:
        return self.run.meta.get("environment") or {}


def _vendor(meta: dict[str, Any]) -> str:
    gpu = (meta.get("environment") or {}).get("gpu") or {}
    identity = (meta.get("device_facts") or {}).get("identity") or {}
    vendor = gpu.get("vendor") or identity.get("vendor")
    if vendor:
        return str(vendor).lower()
    return "cpu" if "model" in identity else "unknown"


def _sku(meta: dict[str, Any]) -> tuple[str, str]:
    """(peak-table SKU or device name, its folder key)."""
    from bench.devices.base import GpuIdentity
    from bench.peaks.table import row_for
    from bench.results.blessed.paths import sku_key, slug
    from bench.results.blessed.runs import identity_from_meta

    name = device_name(meta)
    try:
        identity = identity_from_meta(meta)
    except ValueError:
        return name, slug(name)
    row = row_for(identity)[0] if isinstance(identity, GpuIdentity) else None
    return (row.sku if row is not None else name), sku_key(identity)


def synthetic_note(run: Run) -> str:
    """What a run produced through a fake hardware library is, said wherever it appears."""
    why = run.meta.get("synthetic_reason") or "no reason recorded"
    return (
        f"{run_label(run)} is synthetic ({why}): its figures came through a fake hardware "
        "library, not from a device"
    )


def devices_of(runs: list[Run]) -> list[Device]:
    out = []
    for run in runs:
        sku, key = _sku(run.meta)
        cases = {case_key(c): c for c in case_dicts(run) if c.get("status") == "ok"}
        out.append(
            Device(run, run_label(run), _vendor(run.meta), device_name(run.meta), sku, key, cases)
        )
    return out


def applies(devices: list[Device]) -> bool:
    """Runs from more than one vendor or SKU."""
    return len({(d.vendor, d.sku) for d in devices}) > 1


def common_keys(devices: list[Device]) -> list[str]:
    """Case keys measured on at least two different devices, in the order first seen."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for d in devices:
        for key in d.cases:
            seen.setdefault(key, set()).add((d.vendor, d.sku))
    return [key for key, skus in seen.items() if len(skus) > 1]


def resolve_prices(devices: list[Device], prices: Mapping[str, float]) -> dict[str, float]:
    """--usd-per-gpu-hour SKU=PRICE as a price per device label.

    A SKU matches the peak-table SKU, its folder key or the device name (case and punctuation
    ignored), or failing that a unique part of one ("mi300x", "h200"). ValueError, listing
    the runs' SKUs, for a SKU that matches none or several.
    """
    from bench.results.blessed.paths import slug

    names = {d.label: {slug(d.sku), d.sku_key, slug(d.name)} for d in devices}
    listed = ", ".join(sorted({d.sku for d in devices}))
    out: dict[str, float] = {}
    for given, price in prices.items():
        want = slug(given)
        hits = [label for label, keys in names.items() if want in keys]
        if not hits:
            hits = [label for label, keys in names.items() if any(want in k for k in keys)]
        skus = {d.sku for d in devices if d.label in hits}
        if not hits:
            raise ValueError(
                f"--usd-per-gpu-hour {given}: no run is of that SKU; the runs' SKUs are {listed}"
            )
        if len(skus) > 1:
            raise ValueError(
                f"--usd-per-gpu-hour {given}: matches several SKUs ({', '.join(sorted(skus))}); "
                "give one of them in full"
            )
        out.update(dict.fromkeys(hits, price))
    return out


@dataclass(frozen=True)
class Cost:
    """Cost of 10^18 operations: energy part, hardware-time part, and why one is missing."""

    energy_usd: float | None
    hardware_usd: float | None
    energy_why: str = ""
    hardware_why: str = ""

    @property
    def total_usd(self) -> float | None:
        if self.energy_usd is None or self.hardware_usd is None:
            return None
        return self.energy_usd + self.hardware_usd


def cost_of(case: dict[str, Any], costs: Costs, gpu_hour_usd: float | None) -> Cost:
    """Energy: 10^18 / ops-per-joule x PUE, in kWh, x price; hardware: 10^18 / rate, in
    hours, x devices held x price per device-hour."""
    opj = column(case, "ops_per_j")
    energy = hardware = None
    energy_why = hardware_why = ""
    if costs.usd_per_kwh is None:
        energy_why = "no --usd-per-kwh"
    elif opj is None:
        energy_why = "energy not measured"
    else:
        pue = costs.pue if costs.pue is not None else 1.0
        energy = EXA / opj * pue / J_PER_KWH * costs.usd_per_kwh
    rate = column(case, "achieved_ops_per_s")
    if gpu_hour_usd is None:
        hardware_why = "no --usd-per-gpu-hour for this SKU"
    elif rate is None:
        hardware_why = "no achieved rate"
    else:
        devices = case.get("world_size") or 1
        hardware = EXA / rate / SECONDS_PER_HOUR * devices * gpu_hour_usd
    return Cost(energy, hardware, energy_why, hardware_why)


@dataclass(frozen=True)
class Entry:
    """One device's figures for one common case."""

    device: Device
    case: dict[str, Any]
    cost: Cost

    @property
    def collective(self) -> bool:
        return known(self.case.get("busbw_bytes_per_s"))

    def ceiling(self) -> tuple[float | None, float | None, str]:
        """(measured ceiling, fraction of it, where it came from or why there is none)."""
        frac = column(self.case, "frac_of_measured_peak")
        value = column(self.case, "measured_peak_ops_per_s")
        if value is None and frac:
            value = self.case["achieved_ops_per_s"] / frac
        if value is None:
            why = self.case.get("measured_peak_detail") or "no measured ceiling for this run"
            return None, None, str(why)
        source = column(self.case, "measured_peak_source") or "measured"
        return value, frac, str(source)


@dataclass(frozen=True)
class Comparison:
    devices: list[Device]
    keys: list[str]
    rows: list[tuple[str, list[Entry]]]  # (case label, one entry per device that ran it)

    @property
    def compute(self) -> list[tuple[str, list[Entry]]]:
        return [(label, es) for label, es in self.rows if not es[0].collective]

    @property
    def collectives(self) -> list[tuple[str, list[Entry]]]:
        return [(label, es) for label, es in self.rows if es[0].collective]


def compare(devices: list[Device], costs: Costs) -> Comparison:
    """The common cases of the devices, each with every device's entry."""
    prices = resolve_prices(devices, costs.usd_per_gpu_hour)
    keys = common_keys(devices)
    rows = []
    for key in keys:
        entries = [
            Entry(d, d.cases[key], cost_of(d.cases[key], costs, prices.get(d.label)))
            for d in devices
            if key in d.cases
        ]
        rows.append((case_label(entries[0].case), entries))
    return Comparison(devices, keys, rows)
