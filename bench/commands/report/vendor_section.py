"""The vendor comparison section as document blocks: tables, reference notes, caveats, plots.

vendor.py decides what is compared and computes it; this module only lays it out. Every
fraction stands beside its denominator and where that came from; costs say which inputs
they were computed from; published achievable rates are notes, never denominators.
"""

from __future__ import annotations

from bench.commands.report.caveats import caveats
from bench.commands.report.chain import Costs
from bench.commands.report.published import published_for
from bench.commands.report.stack import stack_table
from bench.commands.report.vendor import Comparison, Entry, compare, devices_of
from bench.results.document import Block, Figure, Heading, Para, Plot, Table
from bench.results.frame import column
from bench.results.record import Run
from bench.results.render import percent, rate_unit, si

INTRO = (
    "The same cases (kernel, dtype, shape, devices) on each device, side by side. % of spec "
    "divides by the datasheet peak; % of measured ceiling divides by the best matmul rate "
    "measured on that same device (`flopwatt ceiling`), the like-for-like denominator. "
    "Published achievable rates are reference notes only."
)


def _unit(entry: Entry) -> str:
    return rate_unit(str(entry.case.get("dtype") or ""))


def _energy(entry: Entry) -> str:
    source = entry.case.get("energy_source")
    if source is None:
        return "not measured"
    return "estimate" if source == "estimate" else str(source)


def compute_table(comparison: Comparison) -> Table:
    rows = []
    details: dict[str, str] = {}
    for label, entries in comparison.compute:
        for e in entries:
            unit, c = _unit(e), e.case
            peak = column(c, "peak_ops_per_s")
            ceiling, frac, where = e.ceiling()
            details.setdefault(e.device.label, str(c.get("peak_detail") or ""))
            rows.append(
                [
                    label,
                    e.device.label,
                    si(column(c, "achieved_ops_per_s"), unit),
                    percent(column(c, "frac_of_peak")),
                    f"{si(peak, unit)} ({c.get('peak_source')})" if peak else "unknown",
                    percent(frac),
                    f"{si(ceiling, unit)} ({where})" if ceiling else "none",
                    si(column(c, "ops_per_j"), unit.split("/")[0] + "/J"),
                    si(column(c, "net_ops_per_j"), unit.split("/")[0] + "/J"),
                    _energy(e),
                ]
            )
    caption = "spec peaks: " + "; ".join(f"{k}: {v}" for k, v in details.items() if v)
    headers = [
        "case",
        "device",
        "achieved",
        "% of spec",
        "spec peak (source)",
        "% of measured ceiling",
        "measured ceiling (source)",
        "ops/J",
        "net ops/J",
        "energy",
    ]
    return Table(headers, rows, caption)


def collective_table(comparison: Comparison) -> Table:
    rows = []
    for label, entries in comparison.collectives:
        for e in entries:
            c = e.case
            link = column(c, "link_peak_bytes_per_s")
            rows.append(
                [
                    label,
                    e.device.label,
                    si(column(c, "busbw_bytes_per_s"), "B/s"),
                    percent(column(c, "link_utilisation")),
                    f"{si(link, 'B/s')} ({c.get('link_peak_source')})" if link else "unknown",
                    si(column(c, "algbw_bytes_per_s"), "B/s"),
                ]
            )
    headers = ["case", "device", "busbw", "% of link peak", "link peak (source)", "algbw"]
    return Table(headers, rows, "busbw = algbw x the collective's bus factor (nccl-tests)")


def _usd(value: float | None, why: str) -> str:
    return f"${value:.4g}" if value is not None else f"— ({why})"


def cost_table(comparison: Comparison, costs: Costs, prices: dict[str, float]) -> Table:
    rows = []
    for label, entries in comparison.compute:
        for e in entries:
            cost = e.cost
            total = cost.total_usd
            rows.append(
                [
                    label,
                    e.device.label,
                    _usd(cost.energy_usd, cost.energy_why)
                    + (" (estimated energy)" if e.case.get("energy_source") == "estimate" else ""),
                    _usd(cost.hardware_usd, cost.hardware_why),
                    f"${total:.4g}" if total is not None else "— (needs both parts)",
                ]
            )
    pue = f"PUE {costs.pue:g}" if costs.pue is not None else "PUE 1 (not given; assumed)"
    kwh = f"${costs.usd_per_kwh:g}/kWh" if costs.usd_per_kwh is not None else "no price per kWh"
    hours = (
        ", ".join(f"{label}: ${p:g}/h" for label, p in prices.items()) or "no price per GPU-hour"
    )
    caption = (
        "estimate from your inputs, per 10^18 operations: energy = 10^18 / (ops/J) x PUE / "
        f"3.6e6 J per kWh x price per kWh ({pue}, {kwh}; device energy only); hardware time = "
        f"10^18 / achieved rate / 3600 s x devices x price per device-hour ({hours})"
    )
    return Table(
        ["case", "device", "energy", "hardware time", "total (USD per 10^18 ops)"], rows, caption
    )


def reference_notes(comparison: Comparison) -> list[Para]:
    dtypes = {str(es[0].case.get("dtype")) for _, es in comparison.compute}
    out = []
    for d in comparison.devices:
        for p in published_for(d.sku, dtypes):
            out.append(
                Para(
                    f"Reference (not a denominator): {d.sku} {p.dtype} {si(p.ops_per_s, 'FLOP/s')} "
                    f"published as achievable ({p.what}; {p.source})."
                )
            )
    return out


def devices_table(comparison: Comparison) -> Table:
    rows = [[d.label, d.vendor, d.sku, d.sku_key] for d in comparison.devices]
    return Table(["run", "vendor", "SKU", "SKU key (--usd-per-gpu-hour)"], rows)


def vendor_section(
    runs: list[Run], costs: Costs, colours: dict[str, str], plots: bool
) -> tuple[list[Block], list[Plot]]:
    """The section's blocks and figures; nothing when the runs are of one device."""
    from bench.commands.report.vendor import applies, resolve_prices

    devices = devices_of(runs)
    if not applies(devices):
        return [], []
    comparison = compare(devices, costs)
    blocks: list[Block] = [Heading("Vendor comparison"), Para(INTRO), devices_table(comparison)]
    if not comparison.rows:
        blocks.append(Para("These runs have no case in common: nothing to compare side by side."))
        return blocks, []
    labels = [d.label for d in devices]
    blocks.append(stack_table(labels, [d.run.meta for d in devices]))
    if comparison.compute:
        blocks += [Heading("Compute", 3), compute_table(comparison)]
        prices = resolve_prices(devices, costs.usd_per_gpu_hour)
        blocks += [Heading("Cost per 10^18 operations", 3), cost_table(comparison, costs, prices)]
        blocks += reference_notes(comparison)
    if comparison.collectives:
        blocks += [Heading("Collectives", 3), collective_table(comparison)]
    lines = caveats(comparison)
    blocks.append(Heading("Caveats", 3))
    blocks += [Para(f"- {line}") for line in lines] or [Para("none found in the data")]
    figures: list[Plot] = []
    if plots:
        from bench.commands.report.vendor_plots import vendor_plots

        figures = vendor_plots(comparison, colours)
        blocks += [Figure(p) for p in figures]
    return blocks, figures
