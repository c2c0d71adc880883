"""The report's plots as PNG bytes; a plot whose data no run has is a one-line note instead.

Each function takes the loaded runs (and their cleaned case dicts) and returns a Plot. Plots
are coordinated with the rest of flopwatt by column names only: frac_of_clock_peak and
frac_of_measured_peak add markers to the peak plot, busbw_bytes_per_s and
link_peak_bytes_per_s draw the allreduce plot, scaling_efficiency and world_size the scaling
plot. Nothing is faked: no trace, no plot.

matplotlib is imported here only, inside the functions, with the Agg backend (no display).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from bench.results.record import Run
from bench.results.frame import case_label, column, known, run_label

MAX_BARS = 40


@dataclass(frozen=True)
class Plot:
    """A rendered figure (png) or the reason it is absent (note)."""

    name: str
    title: str
    png: bytes | None = None
    note: str = ""


RunCases = list[tuple[Run, list[dict[str, Any]]]]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _ok(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cases if c.get("status") == "ok"]


def _denominator(case: dict[str, Any], field: str, fraction: str) -> float | None:
    """A peak stored by name, or recovered from achieved / its fraction."""
    value = column(case, field)
    frac = column(case, fraction)
    if value is None and frac:
        value = case["achieved_ops_per_s"] / frac
    return value


def peak_plot(data: RunCases) -> Plot:
    """Achieved rate per case against its spec peak, clock-adjusted peak and measured ceiling."""
    name, title = "peak", "Achieved vs spec peak"
    rows = []
    for run, cases in data:
        for c in _ok(cases):
            if known(c.get("achieved_ops_per_s")) and not known(c.get("busbw_bytes_per_s")):
                rows.append((run_label(run) if len(data) > 1 else "", c))
    if not rows:
        return Plot(name, title, note="no compute case finished")
    rows = rows[:MAX_BARS]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.4))
    ys = list(range(len(rows)))
    ax.barh(ys, [c["achieved_ops_per_s"] for _, c in rows], color="#4c78a8", label="achieved")
    for y, (_, c) in zip(ys, rows, strict=True):
        peak = column(c, "peak_ops_per_s")
        if peak:
            ax.plot([peak], [y], "|", color="black", markersize=14)
        clock_peak = _denominator(c, "clock_peak_ops_per_s", "frac_of_clock_peak")
        if clock_peak:
            ax.plot([clock_peak], [y], "x", color="#e45756")
        ceiling = _denominator(c, "measured_peak_ops_per_s", "frac_of_measured_peak")
        if ceiling:
            ax.plot([ceiling], [y], "D", color="#54a24b", ms=5)
    ax.plot([], [], "|", color="black", markersize=14, label="spec peak")
    if any(column(c, "frac_of_clock_peak") for _, c in rows):
        ax.plot([], [], "x", color="#e45756", label="clock-adjusted peak")
    if any(column(c, "frac_of_measured_peak") for _, c in rows):
        ax.plot([], [], "D", color="#54a24b", ms=5, label="measured ceiling")
    ax.set_yticks(ys, [f"{r} {case_label(c)}".strip() for r, c in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("operations per second (FLOP/s or OP/s)")
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return Plot(name, title, _png(fig))


def roofline_plot(data: RunCases, mem_bw: dict[str, tuple[float | None, str]]) -> Plot:
    """Ops per byte against ops per second, with each dtype's compute roof and the memory roof.

    mem_bw maps run labels to (bytes/s, source) or (None, why unknown)."""
    name, title = "roofline", "Roofline"
    panels = [
        (run, [c for c in _ok(cs) if known(c.get("arithmetic_intensity"))]) for run, cs in data
    ]
    panels = [(run, cs) for run, cs in panels if cs][:4]
    if not panels:
        return Plot(name, title, note="no case recorded its arithmetic intensity")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    notes = []
    for ax, (run, cases) in zip(axes[0], panels, strict=True):
        xs = [c["arithmetic_intensity"] for c in cases]
        lo, hi = min(xs) / 4, max(xs) * 4
        for dtype in sorted({c.get("dtype") for c in cases}):
            sel = [c for c in cases if c.get("dtype") == dtype]
            pts = ax.scatter(
                [c["arithmetic_intensity"] for c in sel],
                [c["achieved_ops_per_s"] for c in sel],
                label=dtype,
                s=18,
            )
            peak = max((c.get("peak_ops_per_s") or 0) for c in sel)
            if peak:
                ax.hlines(peak, lo, hi, colors=pts.get_facecolor(), linestyles="--", lw=1)
        bw, why = mem_bw.get(run_label(run), (None, "unknown"))
        if bw:
            ax.plot([lo, hi], [bw * lo, bw * hi], color="gray", lw=1, label="memory roof")
        else:
            notes.append(f"{run_label(run)}: memory-bandwidth roof not drawn ({why})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ops per byte")
        ax.set_ylabel("ops per second")
        ax.set_title(run_label(run), fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return Plot(name, title, _png(fig), note="; ".join(notes))


def per_watt_plot(data: RunCases) -> Plot:
    """Rate per watt (ops per joule) per case, grouped by dtype."""
    name, title = "per_watt", "Rate per watt"
    rows = [
        (run, c)
        for run, cases in data
        for c in _ok(cases)
        if known(c.get("ops_per_j")) and not known(c.get("busbw_bytes_per_s"))
    ][:MAX_BARS]
    if not rows:
        return Plot(name, title, note="no run measured energy (no power source on its device)")
    rows.sort(key=lambda rc: (rc[1].get("dtype") or "", -rc[1]["ops_per_j"]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.4))
    ys = list(range(len(rows)))
    colors = ["#f58518" if c.get("energy_source") == "estimate" else "#4c78a8" for _, c in rows]
    ax.barh(ys, [c["ops_per_j"] for _, c in rows], color=colors)
    prefix = len(data) > 1
    labels = [(run_label(r) + " " if prefix else "") + case_label(c) for r, c in rows]
    ax.set_yticks(ys, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("operations per joule (= ops/s per W); orange: estimate")
    ax.grid(axis="x", alpha=0.3)
    return Plot(name, title, _png(fig))


def trace_plot(data: RunCases, case_id: str | None = None) -> Plot:
    """Power, SM clock and temperature over one case's energy window."""
    name, title = "trace", "Power, clock and temperature"
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
        return Plot(name, title, note=why)
    run, case = chosen
    try:
        trace = run.trace(case["case_id"])
    except (OSError, ValueError) as exc:
        return Plot(name, title, note=f"trace of {case['case_id']} unreadable ({exc})")
    series = [
        ("power_w", "W", 1.0),
        ("sm_clock_hz", "SM MHz", 1e-6),
        ("temp_c", "°C", 1.0),
    ]
    series = [s for s in series if s[0] in trace and trace[s[0]].notna().any()]
    plt = _pyplot()
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 1.8 * len(series) + 0.6), sharex=True)
    axes = axes if len(series) > 1 else [axes]
    for ax, (col, unit, scale) in zip(axes, series, strict=True):
        ax.plot(trace["t_s"], trace[col] * scale, lw=1)
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{case_label(case)} ({run_label(run)})", fontsize=8)
    axes[-1].set_xlabel("seconds into the energy window")
    return Plot(name, f"{title}: {case_label(case)}", _png(fig))


def busbw_plot(data: RunCases) -> Plot:
    """Allreduce bus bandwidth against message size, with the link peak drawn."""
    name, title = "busbw", "Allreduce bus bandwidth"
    rows = [
        (run, c)
        for run, cases in data
        for c in _ok(cases)
        if known(c.get("busbw_bytes_per_s"))
        and known(c.get("bytes"))
        and (c.get("params") or {}).get("collective")
    ]
    if not rows:
        return Plot(name, title, note="no allreduce in these runs")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    groups: dict[str, list[dict[str, Any]]] = {}
    for run, c in rows:
        collective = (c.get("params") or {}).get("collective") or c.get("kernel")
        label = f"{collective} {c.get('dtype')} n={c.get('world_size')}"
        groups.setdefault((run_label(run) + " " if len(data) > 1 else "") + label, []).append(c)
    for label, cs in groups.items():
        cs.sort(key=lambda c: c["bytes"])
        busbw = [c["busbw_bytes_per_s"] / 1e9 for c in cs]
        ax.plot([c["bytes"] for c in cs], busbw, "o-", label=label)
    peaks = {(c.get("link_peak_bytes_per_s"), c.get("link_peak_source")) for _, c in rows}
    for peak, source in sorted(p for p in peaks if known(p[0])):
        ax.axhline(peak / 1e9, color="black", ls="--", lw=1, label=f"link peak ({source})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("message size (bytes)")
    ax.set_ylabel("busbw (GB/s)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    note = "" if any(known(p[0]) for p in peaks) else "link peak unknown: not drawn"
    return Plot(name, title, _png(fig), note=note)


def _scaling_series(data: RunCases) -> dict[str, list[tuple[int, float]]]:
    """(N, E(N)) per series: from a case's `scaling` rows (one case per study), or from
    cases that each carry scaling_efficiency at their world_size."""
    series: dict[str, list[tuple[int, float]]] = {}
    for run, cases in data:
        prefix = run_label(run) + " " if len(data) > 1 else ""
        for c in _ok(cases):
            rows = c.get("scaling")
            if isinstance(rows, list) and rows:
                points = [(r.get("n"), r.get("efficiency")) for r in rows if isinstance(r, dict)]
                label = prefix + case_label({**c, "world_size": 1})
                series[label] = [(n, e) for n, e in points if known(n) and known(e)]
            elif known(c.get("scaling_efficiency")):
                label = prefix + case_label({**c, "world_size": 1})
                point = (c.get("world_size") or 1, c["scaling_efficiency"])
                series.setdefault(label, []).append(point)
    return {k: sorted(v) for k, v in series.items() if v}


def scaling_plot(data: RunCases) -> Plot:
    """Scaling efficiency E(N) against the number of devices N."""
    name, title = "scaling", "Scaling efficiency"
    series = _scaling_series(data)
    if not series:
        return Plot(name, title, note="no scaling measurement in these runs")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, points in series.items():
        ax.plot([n for n, _ in points], [e for _, e in points], "o-", label=label)
    ax.axhline(1.0, color="black", lw=1, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("devices N")
    ax.set_ylabel("E(N)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return Plot(name, title, _png(fig))


def all_plots(
    data: RunCases,
    mem_bw: dict[str, tuple[float | None, str]],
    trace_case: str | None = None,
) -> list[Plot]:
    """Every plot of the report, in order; absent ones carry their note."""
    return [
        peak_plot(data),
        roofline_plot(data, mem_bw),
        per_watt_plot(data),
        trace_plot(data, trace_case),
        busbw_plot(data),
        scaling_plot(data),
    ]
