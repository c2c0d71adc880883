"""One case's trend: the achieved rate (busbw for a collective) above, ops/J below, over
time; one colour per testbed (axes.device_colours), its baseline band (baseline x (1 +-
threshold), the band a run must leave to violate), change points as dotted lines at the
first bad run and GPU swaps as dashed black lines. The y axes do not start at zero: the
band is what matters, and a zero-based axis would flatten a 5% step into a line's width.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.commands.report.axes import FIG_WIDTH_IN, device_colours, eng_formatter, legend_below
from bench.history.verdicts import MIN_BASELINE_RUNS

PANELS = (("rate", "achieved rate"), ("ops_per_j", "ops per joule"))


def units(trend: Any) -> dict[str, str]:
    ops = "OP" if str(trend.rows["dtype"].iloc[0]).startswith("int") else "FLOP"
    rate = "B/s" if trend.family == "collective" else f"{ops}/s"
    return {"rate": rate, "ops_per_j": f"{ops}/J"}


def trend_figure(trend: Any) -> tuple[Any, str]:
    """The figure (or None and why not) of one Trend (bench.commands.report.trends)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    panels = [(m, t) for m, t in PANELS if trend.rows[f"{m}.value"].notna().any()]
    if not panels:
        return None, "no value recorded"
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(FIG_WIDTH_IN, 2.4 * len(panels) + 1.0),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    colours = device_colours(trend.rows["testbed"].unique())
    unit = units(trend)
    for ax, (metric, title) in zip(axes[:, 0], panels, strict=True):
        for testbed, rows in trend.rows.groupby("testbed", sort=False):
            _series(ax, rows.sort_values("started_at"), metric, colours[testbed])
        for cp in trend.change_points:
            if cp.metric == metric:
                when = np.datetime64(cp.first_bad_at[:19])
                ax.axvline(when, color=colours.get(cp.testbed, "black"), ls=":", lw=1.5)
        for _, _, when in trend.swaps:
            ax.axvline(when, color="black", ls="--", lw=1)
        ax.yaxis.set_major_formatter(eng_formatter(unit[metric]))
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    ax = axes[-1, 0]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set_xlabel("run started (UTC)")
    for _, new, when in trend.swaps:
        axes[0, 0].annotate(
            f"GPU swap → {new[:24]}",
            (when, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            ha="left",
            va="top",
            rotation=90,
        )
    axes[0, 0].set_title(trend.label, fontsize=10)
    legend_below(fig, _legend(axes[0, 0], colours, trend))
    return fig, ""


def _series(ax: Any, rows: Any, metric: str, colour: str) -> None:
    """One testbed: its eligible runs as a line, the others as crosses, and its band."""
    when = rows["started_at"].dt.tz_localize(None).to_numpy()
    value = rows[f"{metric}.value"].to_numpy(dtype=float)
    ok = rows[f"{metric}.eligible"].to_numpy(dtype=bool)
    judged = rows[f"{metric}.n"].to_numpy() >= MIN_BASELINE_RUNS  # no band before that
    base = np.where(judged, rows[f"{metric}.baseline"].to_numpy(dtype=float), np.nan)
    band = base * rows[f"{metric}.threshold"].to_numpy(dtype=float)
    ax.fill_between(when, base - band, base + band, color=colour, alpha=0.15, lw=0)
    ax.plot(when[ok], value[ok], "o-", color=colour, ms=3, lw=1)
    ax.plot(when[~ok], value[~ok], "x", color=colour, ms=5, ls="none")


def _legend(ax: Any, colours: dict[str, str], trend: Any) -> list[Any]:
    from matplotlib.patches import Patch

    handles = [ax.plot([], [], "o-", color=c, ms=3, label=t)[0] for t, c in colours.items()]
    handles.append(Patch(color="#888888", alpha=0.3, label="baseline ± threshold"))
    handles += ax.plot([], [], "x", color="#444444", ls="none", label="not eligible")
    if trend.change_points:
        handles += ax.plot([], [], ":", color="#444444", label="change point (first bad run)")
    if trend.swaps:
        handles += ax.plot([], [], "--", color="black", label="GPU swap (new testbed)")
    return handles
