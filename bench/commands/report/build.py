"""Assemble the report of one or several loaded runs: chain first, then pivot, plots, tables.

build_report() is a pure function of the runs and the user's inputs; it returns the document
and the plots, and the CLI writes report.md, report.html and plots/*.png.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.commands.report.axes import device_colours
from bench.commands.report.chain import Costs, efficiency_chain
from bench.commands.report.health import health_blocks
from bench.commands.report.plots import all_plots
from bench.commands.report.tables import cases_table, chain_table, pivot_table, runs_table
from bench.commands.report.vendor import devices_of, resolve_prices, synthetic_note
from bench.commands.report.vendor_section import vendor_section
from bench.results.document import (
    Block,
    Figure,
    Heading,
    Para,
    Plot,
    render_html,
    render_markdown,
)
from bench.results.frame import case_dicts, run_label
from bench.results.record import Run


@dataclass
class Report:
    """The report's blocks and figures; markdown() and html() render them."""

    title: str
    blocks: list[Block]
    plots: list[Plot] = field(default_factory=list)

    def markdown(self) -> str:
        return render_markdown(self.blocks)

    def html(self) -> str:
        return render_html(self.blocks, self.title)


def memory_roof(meta: dict[str, Any]) -> tuple[float | None, str]:
    """The device's memory roof: the peak table's bandwidth, else the bandwidth `flopwatt
    ceiling` measured (labelled measured), else why there is none."""
    spec, why = spec_memory_bandwidth(meta)
    if spec is not None:
        return spec, why
    measured = measured_memory_bandwidth(meta)
    if measured is not None:
        return measured
    return None, why


def measured_memory_bandwidth(meta: dict[str, Any]) -> tuple[float, str] | None:
    """The memory ceiling recorded in run.json: measured in this run, or the stored one read."""
    ceiling = meta.get("ceiling") or {}
    roof = ceiling.get("memory_roof_bytes_per_s")
    if roof is None and isinstance(ceiling.get("memory"), dict):
        roof = ceiling["memory"].get("roof_bytes_per_s")
    if not isinstance(roof, int | float) or roof <= 0:
        return None
    where = "this run" if ceiling.get("source") == "this run" else "flopwatt ceiling, stored"
    return float(roof), f"measured: {where}"


def spec_memory_bandwidth(meta: dict[str, Any]) -> tuple[float | None, str]:
    """The device's memory bandwidth from the peak table, or why there is none."""
    from bench.devices.base import GpuIdentity
    from bench.peaks.table import row_for
    from bench.results.blessed.runs import identity_from_meta

    try:
        ident = identity_from_meta(meta)
    except ValueError as exc:
        return None, str(exc)
    if not isinstance(ident, GpuIdentity):
        return None, "a CPU's memory bandwidth is not in the peak table"
    row, why = row_for(ident)
    if row is None:
        return None, why
    if row.mem_bytes_per_s is None:
        return None, f"{ident.name} has no memory bandwidth in the peak table"
    return row.mem_bytes_per_s, f"datasheet: {row.sku}"


def build_report(
    runs: list[Run],
    costs: Costs | None = None,
    trace_case: str | None = None,
    plots: bool = True,
    projection: dict[str, Any] | None = None,
) -> Report:
    """The report of runs (several runs: different machines side by side), with the scaling
    projection's section when a projection document is given."""
    costs = costs or Costs()
    data = [(run, case_dicts(run)) for run in runs]
    title = "flopwatt report: " + ", ".join(run_label(r) for r in runs)
    blocks: list[Block] = [Heading("flopwatt report", 1), runs_table(runs)]
    blocks += [Para(synthetic_note(run)) for run in runs if run.meta.get("synthetic")]
    blocks += health_blocks(runs)
    blocks.append(Heading("Efficiency chain"))
    blocks.append(
        Para(
            "spec peak -> achieved (utilisation) -> ops per joule -> scaling -> joules at the "
            "wall and cost. Each ratio is shown with its denominator and where that came from; "
            "the last step is an estimate from the PUE and price you gave, not a measurement."
        )
    )
    prices = resolve_prices(devices_of(runs), costs.usd_per_gpu_hour)
    for run, cases in data:
        links, note = efficiency_chain(cases, costs, prices.get(run_label(run)))
        if len(data) > 1:
            blocks.append(Heading(run_label(run), 3))
        blocks.append(chain_table(links, note) if links else Para(note))
    if len(data) > 1:
        blocks += [Heading("Devices side by side"), pivot_table(data)]
    colours = device_colours(run_label(run) for run in runs)
    vendor_blocks, figures = vendor_section(runs, costs, colours, plots)
    blocks += vendor_blocks
    if projection is not None:
        section, extra = projection_section(projection, plots)
        blocks += section
        figures += extra
    if plots:
        roofs = {run_label(run): memory_roof(run.meta) for run in runs}
        general = all_plots(data, roofs, trace_case, colours)
        blocks.append(Heading("Plots"))
        blocks += [Figure(p) for p in general]
        figures += general
    blocks.append(Heading("Results"))
    for run, cases in data:
        if len(data) > 1:
            blocks.append(Heading(run_label(run), 3))
        blocks.append(cases_table(cases))
    problems = [f"{run.path}: {p}" for run in runs for p in run.problems]
    if problems:
        blocks += [Heading("Problems reading the runs")] + [Para(p) for p in problems]
    return Report(title, blocks, [p for p in figures if p.png is not None])


def projection_section(doc: dict[str, Any], plots: bool) -> tuple[list[Block], list[Plot]]:
    from bench.commands.project.plot import plot_png
    from bench.commands.report.projection import projection_blocks

    return projection_blocks(doc, plot_png(doc) if plots else None)
