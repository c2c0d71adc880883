"""The report's plots as PNG bytes; a plot whose data no run has is a one-line note instead.

Each `*_figure` function takes the loaded runs (and their cleaned case dicts) and the device
colours, and returns a matplotlib Figure (or None and why not); `all_plots` renders them.
Plots are coordinated with the rest of flopwatt by column names only: frac_of_clock_peak and
frac_of_measured_peak add markers to the peak plot, busbw_bytes_per_s and
link_peak_bytes_per_s draw the allreduce plot, scaling_efficiency and world_size the scaling
plot. Nothing is faked: no trace, no plot. Axis conventions (units, decades, colours) are
in axes.py.
"""

from __future__ import annotations

import io
from typing import Any

from bench.commands.report.axes import (
    DPI,
    binary_size_formatter,
    decades,
    device_colours,
    eng_formatter,
    legend_below,
    linear_axis,
    log_axis,
    new_figure,
    percent_axis,
)
from bench.results.document import Plot
from bench.results.frame import case_label, column, known, run_label
from bench.results.record import Run
from bench.results.render import si

MAX_ROWS = 40
RunCases = list[tuple[Run, list[dict[str, Any]]]]
Colours = dict[str, str]
MemRoofs = dict[str, tuple[float | None, str]]
Drawn = tuple[Any, str]  # (Figure or None, note)


def render(fig: Any) -> bytes:
    """PNG bytes of a figure, which is closed afterwards."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def as_plot(name: str, title: str, drawn: Drawn) -> Plot:
    fig, note = drawn
    return Plot(name, title, note=note) if fig is None else Plot(name, title, render(fig), note)


def _ok(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cases if c.get("status") == "ok"]


def unit_of(cases: list[dict[str, Any]], per: str = "/s") -> str:
    """FLOP for floating point, OP for integer math, "op" when the plot mixes both."""
    kinds = {str(c.get("dtype") or "").startswith("int") for c in cases}
    return ("op" if len(kinds) > 1 else "OP" if kinds == {True} else "FLOP") + per


def _denominator(case: dict[str, Any], field: str, fraction: str) -> float | None:
    """A peak stored by name, or recovered from achieved / its fraction."""
    value = column(case, field)
    frac = column(case, fraction)
    if value is None and frac:
        value = case["achieved_ops_per_s"] / frac
    return value


def _colour(colours: Colours, run: Run) -> str:
    return colours.get(run_label(run)) or next(iter(device_colours([run_label(run)]).values()))


def _device_legend(ax: Any, data: RunCases, colours: Colours) -> list[Any]:
    """Legend handles, one per device (when there are several)."""
    if len(data) < 2:
        return []
    return [
        ax.scatter([], [], color=_colour(colours, run), s=30, label=run_label(run))
        for run, _ in data
    ]


def peak_figure(data: RunCases, colours: Colours) -> Drawn:
    """Achieved rate per case (a point: this is a log axis) against its spec peak, the
    clock-adjusted peak and the measured ceiling."""
    rows = [
        (run, c)
        for run, cases in data
        for c in _ok(cases)
        if known(c.get("achieved_ops_per_s")) and not known(c.get("busbw_bytes_per_s"))
    ][:MAX_ROWS]
    if not rows:
        return None, "no compute case finished"
    fig, ax = new_figure(len(rows))
    values = []
    marks = {"spec": False, "clock": False, "ceiling": False}
    for y, (run, c) in enumerate(rows):
        ax.plot([c["achieved_ops_per_s"]], [y], "o", color=_colour(colours, run), ms=7, zorder=3)
        values.append(c["achieved_ops_per_s"])
        for kind, value, style in (
            ("spec", column(c, "peak_ops_per_s"), dict(marker="|", ms=16, color="black")),
            (
                "clock",
                _denominator(c, "clock_peak_ops_per_s", "frac_of_clock_peak"),
                dict(marker="x", ms=7, color="#444444"),
            ),
            (
                "ceiling",
                _denominator(c, "measured_peak_ops_per_s", "frac_of_measured_peak"),
                dict(marker="D", ms=6, mfc="none", color="black"),
            ),
        ):
            if value:
                ax.plot([value], [y], ls="none", **style)
                values.append(value)
                marks[kind] = True
    handles = _device_legend(ax, data, colours)
    if len(data) < 2:
        handles.append(ax.scatter([], [], color=_colour(colours, rows[0][0]), label="achieved"))
    for kind, label, style in (
        ("spec", "spec peak", dict(marker="|", ms=16, color="black")),
        ("clock", "clock-adjusted peak", dict(marker="x", ms=7, color="#444444")),
        ("ceiling", "measured ceiling", dict(marker="D", ms=6, mfc="none", color="black")),
    ):
        if marks[kind]:
            handles += ax.plot([], [], ls="none", label=label, **style)
    prefix = len(data) > 1
    labels = [(run_label(r) + "\n" if prefix else "") + case_label(c) for r, c in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    log_axis(ax, "x", min(values), max(values), unit_of([c for _, c in rows]))
    ax.set_xlabel("achieved rate (median per call)")
    legend_below(fig, handles)
    ax.grid(axis="x", which="major", alpha=0.3)
    return fig, ""


def _roof_limits(cases: list[dict[str, Any]], peak: float, bw: float | None) -> tuple:
    """x from a decade below the ridge point (or the data) to a decade above it; y from the
    lowest point (or the memory roof at the left edge) to the decade above the peak."""
    xs = [c["arithmetic_intensity"] for c in cases]
    ys = [c["achieved_ops_per_s"] for c in cases]
    x_lo, x_hi = min(xs), max(xs)
    if bw:
        ridge = peak / bw
        x_lo, x_hi = min(x_lo, ridge / 10), max(x_hi, ridge * 10)
    x_lo, x_hi = decades(x_lo, x_hi)
    y_lo = min(ys)
    if bw:
        y_lo = min(y_lo, bw * x_lo)
    return (x_lo, x_hi), (y_lo, peak * 1.001)


def roofline_figure(data: RunCases, mem_bw: MemRoofs, colours: Colours) -> Drawn:
    """Ops per byte against ops per second: each dtype's compute roof and the memory roof.

    mem_bw maps run labels to (bytes/s, source) or (None, why unknown)."""
    panels = [
        (run, [c for c in _ok(cs) if known(c.get("arithmetic_intensity"))]) for run, cs in data
    ]
    panels = [(run, cs) for run, cs in panels if cs][:3]
    if not panels:
        return None, "no case recorded its arithmetic intensity"
    fig, axes = new_figure(height=4.2, ncols=len(panels))
    axes = axes if len(panels) > 1 else [axes]
    notes = []
    markers = "osD^v<>"
    for ax, (run, cases) in zip(axes, panels, strict=True):
        colour = _colour(colours, run)
        bw, why = mem_bw.get(run_label(run), (None, "unknown"))
        peaks = {
            d: max((c.get("peak_ops_per_s") or 0) for c in cases if c.get("dtype") == d)
            for d in {c.get("dtype") for c in cases}
        }
        top = max([*peaks.values(), *(c["achieved_ops_per_s"] for c in cases)])
        (x_lo, x_hi), (y_lo, y_hi) = _roof_limits(cases, top, bw)
        for i, dtype in enumerate(sorted(peaks, key=str)):
            sel = [c for c in cases if c.get("dtype") == dtype]
            ax.scatter(
                [c["arithmetic_intensity"] for c in sel],
                [c["achieved_ops_per_s"] for c in sel],
                color=colour,
                marker=markers[i % len(markers)],
                s=24,
                zorder=3,
                label=f"{dtype} achieved",
            )
        _compute_roofs(ax, peaks, bw, (x_lo, x_hi), unit_of(cases))
        if bw:
            x_ridge = min(top / bw, x_hi)
            ax.plot(
                [x_lo, x_ridge],
                [bw * x_lo, bw * x_ridge],
                color="#555555",
                lw=1.2,
                label=f"memory roof {si(bw, 'B/s')} ({why.split(':')[0]})",
            )
        else:
            notes.append(f"{run_label(run)}: memory-bandwidth roof not drawn ({why})")
        ax.set_xscale("log")
        log_axis(ax, "x", x_lo, x_hi, "op/B")
        log_axis(ax, "y", y_lo, y_hi, unit_of(cases))
        ax.set_xlabel("arithmetic intensity")
        ax.set_ylabel("achieved rate")
        ax.set_title(run_label(run), fontsize=8)
        ax.legend(fontsize=7, loc="upper left")  # above the memory roof: never data there
        ax.grid(which="major", alpha=0.3)
    return fig, "; ".join(notes)


def _compute_roofs(
    ax: Any, peaks: dict[Any, float], bw: float | None, xs: tuple[float, float], unit: str
) -> None:
    """One dashed roof per distinct peak, labelled with every dtype that has it (bf16 and
    fp16 share one on most GPUs: two labels would print over each other)."""
    x_lo, x_hi = xs
    by_peak: dict[float, list[str]] = {}
    for dtype, peak in sorted(peaks.items(), key=lambda kv: str(kv[0])):
        if peak:
            by_peak.setdefault(peak, []).append(str(dtype))
    for peak, dtypes in by_peak.items():
        knee = peak / bw if bw else x_lo
        ax.hlines(peak, max(knee, x_lo), x_hi, colors="black", linestyles="--", lw=1)
        ax.annotate(
            f"{', '.join(dtypes)} peak {si(peak, unit)}",
            (x_hi, peak),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7,
        )


def per_watt_figure(data: RunCases, colours: Colours) -> Drawn:
    """Ops per joule per case; a linear axis from zero, so the bars' lengths compare."""
    rows = [
        (run, c)
        for run, cases in data
        for c in _ok(cases)
        if known(c.get("ops_per_j")) and not known(c.get("busbw_bytes_per_s"))
    ][:MAX_ROWS]
    if not rows:
        return None, "no run measured energy (no power source on its device)"
    rows.sort(key=lambda rc: (rc[1].get("dtype") or "", -rc[1]["ops_per_j"]))
    fig, ax = new_figure(len(rows))
    ys = list(range(len(rows)))
    estimate = [c.get("energy_source") == "estimate" for _, c in rows]
    ax.barh(
        ys,
        [c["ops_per_j"] for _, c in rows],
        color=[_colour(colours, r) for r, _ in rows],
        hatch=["///" if e else "" for e in estimate],
        edgecolor="white",
    )
    prefix = len(data) > 1
    labels = [(run_label(r) + "\n" if prefix else "") + case_label(c) for r, c in rows]
    ax.set_yticks(ys, labels, fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    linear_axis(ax, "x", unit_of([c for _, c in rows], "/J"))
    ax.set_xlabel("operations per joule (= rate per watt)")
    handles = _device_legend(ax, data, colours)
    if any(estimate):
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="#bbbbbb", hatch="///", label="estimate (TDP x load)"))
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return fig, ""


def trace_figure(data: RunCases, colours: Colours, case_id: str | None = None) -> Drawn:
    """Power, SM clock and temperature over one case's energy window."""
    chosen = None
    for run, cases in data:
        for c in cases:
            if c.get("trace_file") and (case_id is None or c.get("case_id") == case_id):
                chosen = (run, c)
                break
        if chosen:
            break
    if chosen is None:
        why = f"case {case_id!r} has no power trace" if case_id else "no case has a power trace"
        return None, why
    run, case = chosen
    try:
        trace = run.trace(case["case_id"])
    except (OSError, ValueError) as exc:
        return None, f"trace of {case['case_id']} unreadable ({exc})"
    series = [
        ("power_w", "power", "W"),
        ("sm_clock_hz", "SM clock", "Hz"),
        ("temp_c", "temp", "°C"),
    ]
    series = [s for s in series if s[0] in trace and trace[s[0]].notna().any()]
    if not series:
        return None, f"the trace of {case['case_id']} has no power, clock or temperature"
    fig, axes = new_figure(height=1.7 * len(series) + 0.8)
    fig.clear()
    axes = fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (col, what, unit) in zip(axes, series, strict=True):
        ax.plot(trace["t_s"], trace[col], lw=1, color=_colour(colours, run))
        ax.yaxis.set_major_formatter(eng_formatter(unit))
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{case_label(case)} ({run_label(run)})", fontsize=8)
    axes[-1].xaxis.set_major_formatter(eng_formatter("s"))
    axes[-1].set_xlabel("time into the energy window")
    return fig, ""


def _size_ticks(ax: Any, sizes: list[int]) -> None:
    """Message sizes as ticks, thinned to at most 8 so the labels never run together."""
    ticks = sorted(set(sizes))
    step = max(1, -(-len(ticks) // 8))
    ax.set_xticks(ticks[::step])
    ax.xaxis.set_major_formatter(binary_size_formatter())
    ax.xaxis.set_minor_locator(_null_locator())


def busbw_figure(data: RunCases, colours: Colours) -> Drawn:
    """Collective bus bandwidth against message size, with the link peak drawn."""
    rows = [
        (run, c)
        for run, cases in data
        for c in _ok(cases)
        if known(c.get("busbw_bytes_per_s"))
        and known(c.get("bytes"))
        and (c.get("params") or {}).get("collective")
    ]
    if not rows:
        return None, "no allreduce in these runs"
    fig, ax = new_figure(height=4.0)
    groups: dict[tuple[str, str], tuple[Run, list[dict[str, Any]]]] = {}
    for run, c in rows:
        collective = (c.get("params") or {}).get("collective") or c.get("kernel")
        label = f"{collective} {c.get('dtype')} n={c.get('world_size')}"
        groups.setdefault((run_label(run), label), (run, []))[1].append(c)
    styles = ["o-", "s--", "^:", "D-."]
    kinds = sorted({label for _, label in groups})
    for (rlabel, label), (run, cs) in groups.items():
        cs.sort(key=lambda c: c["bytes"])
        name = (rlabel + " " if len(data) > 1 else "") + label
        ax.plot(
            [c["bytes"] for c in cs],
            [c["busbw_bytes_per_s"] for c in cs],
            styles[kinds.index(label) % len(styles)],
            color=_colour(colours, run),
            label=name,
            ms=4,
        )
    peaks = {
        (run_label(run), c.get("link_peak_bytes_per_s"), c.get("link_peak_source"))
        for run, c in rows
    }
    by_label = {run_label(run): run for run, _ in rows}
    for rlabel, peak, source in sorted(p for p in peaks if known(p[1])):
        who = f"{rlabel} " if len(data) > 1 else ""
        ax.axhline(
            peak,
            color=_colour(colours, by_label[rlabel]),
            ls="--",
            lw=1,
            label=f"{who}link peak {si(peak, 'B/s')} ({source})",
        )
    ax.set_xscale("log", base=2)
    _size_ticks(ax, [c["bytes"] for _, c in rows])
    ax.yaxis.set_major_formatter(eng_formatter("B/s"))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("message size")
    ax.set_ylabel("bus bandwidth")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    note = "" if any(known(p[1]) for p in peaks) else "link peak unknown: not drawn"
    return fig, note


def _scaling_series(data: RunCases) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(N, E(N)) per (run label, series): from a case's `scaling` rows (one case per study),
    or from cases that each carry scaling_efficiency at their world_size."""
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for run, cases in data:
        for c in _ok(cases):
            rows = c.get("scaling")
            key = (run_label(run), case_label({**c, "world_size": 1}))
            if isinstance(rows, list) and rows:
                points = [(r.get("n"), r.get("efficiency")) for r in rows if isinstance(r, dict)]
                series[key] = [(n, e) for n, e in points if known(n) and known(e)]
            elif known(c.get("scaling_efficiency")):
                point = (c.get("world_size") or 1, c["scaling_efficiency"])
                series.setdefault(key, []).append(point)
    return {k: sorted(v) for k, v in series.items() if v}


def scaling_figure(data: RunCases, colours: Colours) -> Drawn:
    """Scaling efficiency E(N) against the number of devices N."""
    series = _scaling_series(data)
    if not series:
        return None, "no scaling measurement in these runs"
    fig, ax = new_figure(height=4.0)
    by_label = {run_label(run): run for run, _ in data}
    for (rlabel, label), points in series.items():
        name = (rlabel + " " if len(data) > 1 else "") + label
        ax.plot(
            [n for n, _ in points],
            [e for _, e in points],
            "o-",
            color=_colour(colours, by_label[rlabel]),
            label=name,
        )
    ax.axhline(1.0, color="black", lw=1, ls=":")
    ns = sorted({n for pts in series.values() for n, _ in pts})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.xaxis.set_minor_locator(_null_locator())
    percent_axis(ax, "y", max(e for pts in series.values() for _, e in pts))
    ax.set_xlabel("devices N")
    ax.set_ylabel("scaling efficiency E(N)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig, ""


def all_plots(
    data: RunCases,
    mem_bw: MemRoofs,
    trace_case: str | None = None,
    colours: Colours | None = None,
) -> list[Plot]:
    """Every plot of the report, in order; absent ones carry their note."""
    colours = colours or device_colours(run_label(run) for run, _ in data)
    return [
        as_plot("peak", "Achieved vs spec peak", peak_figure(data, colours)),
        as_plot("roofline", "Roofline", roofline_figure(data, mem_bw, colours)),
        as_plot("per_watt", "Rate per watt", per_watt_figure(data, colours)),
        _trace_plot(data, colours, trace_case),
        as_plot("busbw", "Allreduce bus bandwidth", busbw_figure(data, colours)),
        as_plot("scaling", "Scaling efficiency", scaling_figure(data, colours)),
    ]


def _trace_plot(data: RunCases, colours: Colours, case_id: str | None) -> Plot:
    fig, note = trace_figure(data, colours, case_id)
    title = "Power, clock and temperature"
    if fig is not None:
        title += ": " + fig.axes[0].get_title().split(" (")[0]
    return as_plot("trace", title, (fig, note))


def _null_locator() -> Any:
    from matplotlib.ticker import NullLocator

    return NullLocator()
