"""Assemble the report of one or several loaded runs: chain first, then pivot, plots, tables.

build_report() is a pure function of the runs and the user's inputs; it returns the document
and the plots, and the CLI writes report.md, report.html and plots/*.png.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.commands.report.chain import Costs, efficiency_chain
from bench.commands.report.health import health_blocks
from bench.commands.report.plots import all_plots
from bench.commands.report.tables import cases_table, chain_table, pivot_table, runs_table
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
    """The device's memory bandwidth from the peak table, or why there is none."""
    from bench.devices.base import GpuIdentity
    from bench.peaks.lookup import row_for
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
    blocks += health_blocks(runs)
    blocks.append(Heading("Efficiency chain"))
    blocks.append(
        Para(
            "spec peak -> achieved (utilisation) -> ops per joule -> scaling -> joules at the "
            "wall and cost. Each ratio is shown with its denominator and where that came from; "
            "the last step is an estimate from the PUE and price you gave, not a measurement."
        )
    )
    for run, cases in data:
        links, note = efficiency_chain(cases, costs)
        if len(data) > 1:
            blocks.append(Heading(run_label(run), 3))
        blocks.append(chain_table(links, note) if links else Para(note))
    if len(data) > 1:
        blocks += [Heading("Devices side by side"), pivot_table(data)]
    extra: list[Plot] = []
    if projection is not None:
        section, extra = projection_section(projection, plots)
        blocks += section
    figures: list[Plot] = []
    if plots:
        roofs = {run_label(run): memory_roof(run.meta) for run in runs}
        figures = all_plots(data, roofs, trace_case)
        blocks.append(Heading("Plots"))
        blocks += [Figure(p) for p in figures]
    blocks.append(Heading("Results"))
    for run, cases in data:
        if len(data) > 1:
            blocks.append(Heading(run_label(run), 3))
        blocks.append(cases_table(cases))
    problems = [f"{run.path}: {p}" for run in runs for p in run.problems]
    if problems:
        blocks += [Heading("Problems reading the runs")] + [Para(p) for p in problems]
    return Report(title, blocks, [p for p in figures + extra if p.png is not None])


def projection_section(doc: dict[str, Any], plots: bool) -> tuple[list[Block], list[Plot]]:
    from bench.commands.project.plot import plot_png
    from bench.commands.report.projection import projection_blocks

    return projection_blocks(doc, plot_png(doc) if plots else None)
