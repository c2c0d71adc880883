"""The vendor comparison's plots: rate, fractions, ops per joule and cost, device by device.

Dot plots on log axes (a bar on a log axis has no meaningful length), bars only on linear
axes from zero (the cost chart), each device in its report-wide colour (axes.py).
"""

from __future__ import annotations

from typing import Any

from bench.commands.report.axes import (
    legend_below,
    log_axis,
    new_figure,
    percent_axis,
    usd_formatter,
)
from bench.commands.report.plots import Drawn, as_plot, busbw_figure, unit_of
from bench.commands.report.vendor import Comparison, Entry
from bench.results.document import Plot
from bench.results.frame import column

Rows = list[tuple[str, list[Entry]]]


def _offsets(n: int) -> list[float]:
    """Vertical offsets of n devices within one case's row, so points never sit on each other."""
    if n == 1:
        return [0.0]
    step = 0.5 / (n - 1)
    return [-0.25 + i * step for i in range(n)]


def _cases(rows: Rows) -> list[dict[str, Any]]:
    return [e.case for _, entries in rows for e in entries]


def _rows(ax: Any, rows: Rows) -> None:
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)


def _legend(ax: Any, comparison: Comparison, colours: dict[str, str], extra: list[Any]) -> None:
    handles = [
        ax.scatter([], [], color=colours.get(d.label, "black"), s=30, label=d.label)
        for d in comparison.devices
    ]
    legend_below(ax.figure, handles + extra)


def _dots(
    ax: Any, rows: Rows, comparison: Comparison, colours: dict[str, str], value: Any, **style: Any
) -> list[float]:
    """One marker per (case, device) at value(entry); returns the values drawn."""
    order = [d.label for d in comparison.devices]
    drawn = []
    for y, (_, entries) in enumerate(rows):
        offsets = _offsets(len(order))
        for e in entries:
            v = value(e)
            if v is None:
                continue
            dy = offsets[order.index(e.device.label)]
            face = style.get("mfc", colours.get(e.device.label, "black"))
            ax.plot(
                [v],
                [y + dy],
                ls="none",
                marker=style.get("marker", "o"),
                ms=style.get("ms", 7),
                color=colours.get(e.device.label, "black"),
                mfc=face,
            )
            drawn.append(v)
    return drawn


def rate_figure(comparison: Comparison, colours: dict[str, str]) -> Drawn:
    """Achieved rate (filled) and spec peak (hollow) per case and device, log axis."""
    rows = comparison.compute
    if not rows:
        return None, "no compute case in common"
    fig, ax = new_figure(len(rows) * len(comparison.devices) // 2 + len(rows))
    values = _dots(ax, rows, comparison, colours, lambda e: column(e.case, "achieved_ops_per_s"))
    values += _dots(
        ax, rows, comparison, colours, lambda e: column(e.case, "peak_ops_per_s"), mfc="none"
    )
    _rows(ax, rows)
    log_axis(ax, "x", min(values), max(values), unit_of(_cases(rows)))
    ax.set_xlabel("achieved rate (filled) and spec peak (hollow)")
    ax.grid(axis="x", alpha=0.3)
    _legend(ax, comparison, colours, [])
    return fig, ""


def fractions_figure(comparison: Comparison, colours: dict[str, str]) -> Drawn:
    """% of spec peak and % of each device's own measured ceiling, side by side."""
    rows = comparison.compute
    if not rows:
        return None, "no compute case in common"
    fig, axes = new_figure(ncols=2, height=max(2.6, 0.35 * len(rows) + 1.6))
    fig.get_layout_engine().set(wspace=0.06)  # keep "100%" and the next panel's "0%" apart
    spec = _dots(axes[0], rows, comparison, colours, lambda e: column(e.case, "frac_of_peak"))
    ceiling = _dots(axes[1], rows, comparison, colours, lambda e: e.ceiling()[1])
    for ax, values, label in (
        (axes[0], spec, "% of spec peak"),
        (axes[1], ceiling, "% of own measured ceiling"),
    ):
        _rows(ax, rows)
        percent_axis(ax, "x", max(values, default=1.0))
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[1].set_yticklabels([])
    _legend(axes[1], comparison, colours, [])
    note = "" if ceiling else "no device has a measured ceiling: right panel empty"
    return fig, note


def energy_figure(comparison: Comparison, colours: dict[str, str]) -> Drawn:
    """Ops per joule per case and device (hollow: estimated energy), log axis."""
    rows = [
        (label, es)
        for label, es in comparison.compute
        if any(column(e.case, "ops_per_j") for e in es)
    ]
    if not rows:
        return None, "no device measured energy for a common case"

    def measured(e: Entry) -> float | None:
        return None if e.case.get("energy_source") == "estimate" else column(e.case, "ops_per_j")

    def estimated(e: Entry) -> float | None:
        return column(e.case, "ops_per_j") if e.case.get("energy_source") == "estimate" else None

    fig, ax = new_figure(len(rows) * len(comparison.devices) // 2 + len(rows))
    values = _dots(ax, rows, comparison, colours, measured)
    values += _dots(ax, rows, comparison, colours, estimated, mfc="none")
    _rows(ax, rows)
    log_axis(ax, "x", min(values), max(values), unit_of(_cases(rows), "/J"))
    ax.set_xlabel("operations per joule (hollow: estimate, not measured)")
    ax.grid(axis="x", alpha=0.3)
    _legend(ax, comparison, colours, [])
    return fig, ""


def cost_figure(comparison: Comparison, colours: dict[str, str]) -> Drawn:
    """USD per 10^18 operations: energy (hatched) and hardware time (solid), stacked."""
    bars = [
        (f"{label}\n{e.device.label}", e)
        for label, es in comparison.compute
        for e in es
        if e.cost.energy_usd is not None or e.cost.hardware_usd is not None
    ]
    if not bars:
        return None, "no cost: give --usd-per-kwh and/or --usd-per-gpu-hour SKU=PRICE"
    fig, ax = new_figure(len(bars))
    ys = list(range(len(bars)))
    energy = [e.cost.energy_usd or 0.0 for _, e in bars]
    hardware = [e.cost.hardware_usd or 0.0 for _, e in bars]
    face = [colours.get(e.device.label, "black") for _, e in bars]
    ax.barh(ys, energy, color=face, hatch="///", edgecolor="white", alpha=0.6, label="energy")
    ax.barh(ys, hardware, left=energy, color=face, edgecolor="white", label="hardware time")
    ax.set_yticks(ys, [label for label, _ in bars], fontsize=7)
    ax.set_ylim(len(bars) - 0.5, -0.5)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(usd_formatter())
    ax.set_xlabel("USD per 10^18 operations (estimate from your prices)")
    from matplotlib.patches import Patch

    legend_below(
        fig,
        [
            Patch(facecolor="#999999", hatch="///", alpha=0.6, label="energy"),
            Patch(facecolor="#999999", label="hardware time"),
        ],
    )
    ax.grid(axis="x", alpha=0.3)
    return fig, ""


def vendor_plots(comparison: Comparison, colours: dict[str, str]) -> list[Plot]:
    common = comparison.collectives
    plots = [
        as_plot(
            "vendor_rate", "Vendor comparison: achieved rate", rate_figure(comparison, colours)
        ),
        as_plot(
            "vendor_fractions",
            "Vendor comparison: fraction of spec and of measured ceiling",
            fractions_figure(comparison, colours),
        ),
        as_plot(
            "vendor_per_joule",
            "Vendor comparison: operations per joule",
            energy_figure(comparison, colours),
        ),
        as_plot(
            "vendor_cost",
            "Vendor comparison: cost per 10^18 operations",
            cost_figure(comparison, colours),
        ),
    ]
    if common:
        data = [
            (d.run, [e.case for _, es in common for e in es if e.device is d])
            for d in comparison.devices
        ]
        plots.append(
            as_plot("vendor_busbw", "Vendor comparison: bus bandwidth", busbw_figure(data, colours))
        )
    return plots
