"""Axis conventions every report plot shares, so that a plot can go into a slide as it is.

Engineering units with SI prefixes ("140 GFLOP/s", never "1.4x10^11"); log axes that span
whole decades with a label on each decade only (so labels never crowd into one row); one
colour per device, keyed by run label and built once per report, so a device is the same
colour on every plot. matplotlib is imported inside the functions only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

# Colour-blind-safe palette (Okabe-Ito, without black and yellow, which vanish on white).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#7F7F7F")
FIG_WIDTH_IN = 9.0  # the report's width: 9 in at 90 dpi is 810 px, the HTML column
DPI = 90


def device_colours(labels: Iterable[str]) -> dict[str, str]:
    """One colour per run label, in the order given (the report's run order)."""
    out: dict[str, str] = {}
    for label in labels:
        if label not in out:
            out[label] = PALETTE[len(out) % len(PALETTE)]
    return out


def decades(lo: float, hi: float) -> tuple[float, float]:
    """The whole decades around [lo, hi]: (10^floor(log lo), 10^ceil(log hi)), at least one."""
    if not (lo > 0 and hi > 0):
        raise ValueError(f"a log axis needs positive limits, got {lo!r}, {hi!r}")
    lo_exp = math.floor(math.log10(min(lo, hi)) + 1e-9)
    hi_exp = math.ceil(math.log10(max(lo, hi)) - 1e-9)
    if hi_exp <= lo_exp:
        hi_exp = lo_exp + 1
    return 10.0**lo_exp, 10.0**hi_exp


def eng_formatter(unit: str) -> Any:
    """'140 GFLOP/s' style tick labels (three significant digits at most)."""
    from matplotlib.ticker import EngFormatter

    return EngFormatter(unit=unit, places=None, sep=" ")


def log_axis(ax: Any, which: str, lo: float, hi: float, unit: str) -> tuple[float, float]:
    """Make ax's x or y axis logarithmic over whole decades, labelled at each decade in unit."""
    from matplotlib.ticker import LogLocator, NullFormatter

    limits = decades(lo, hi)
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    (ax.set_xlim if which == "x" else ax.set_ylim)(*limits)
    axis.set_major_locator(LogLocator(base=10, numticks=12))
    axis.set_major_formatter(eng_formatter(unit))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10)), numticks=12))
    axis.set_minor_formatter(NullFormatter())
    return limits


def linear_axis(ax: Any, which: str, unit: str, lo: float = 0.0) -> None:
    """A linear axis from lo (bars start at zero, so their length means something)."""
    from matplotlib.ticker import MaxNLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(eng_formatter(unit))
    # at most 6 labels: "1.25 TFLOP/J" is wide, and seven of them run together at 810 px
    axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    if which == "x":
        ax.set_xlim(left=lo)
    else:
        ax.set_ylim(bottom=lo)


def percent_axis(ax: Any, which: str, top: float) -> None:
    """0% to at least 100% (a fraction above 1 stays visible)."""
    from matplotlib.ticker import MaxNLocator, MultipleLocator, PercentFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    limit = max(1.05, top * 1.08)
    # quarters up to 150%: 0%, 25%, ... never crowd a half-width panel
    steps = MultipleLocator(0.25) if limit <= 1.6 else MaxNLocator(nbins=5)
    axis.set_major_locator(steps)
    (ax.set_xlim if which == "x" else ax.set_ylim)(0.0, limit)


def usd_formatter() -> Any:
    """Dollars as people write them: $0.25, $1.2, $1,200 (never "200 m$")."""
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos: int) -> str:
        if value == 0:
            return "$0"
        return f"${value:,.3g}" if abs(value) < 1000 else f"${value:,.0f}"

    return FuncFormatter(fmt)


def legend_below(fig: Any, handles: list[Any]) -> None:
    """The legend under the axes, in up to three columns: a legend beside the axes takes
    the width the labels need at the report's width."""
    if handles:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(3, len(handles)),
            fontsize=7,
            frameon=False,
        )


def binary_size_formatter() -> Any:
    """Message sizes as 1 KiB, 64 MiB, 1 GiB (the way nccl-tests users think of them)."""
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos: int) -> str:
        for scale, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if value >= scale:
                return f"{value / scale:g} {unit}"
        return f"{value:g} B"

    return FuncFormatter(fmt)


def new_figure(rows: int = 0, height: float | None = None, ncols: int = 1) -> tuple[Any, Any]:
    """A figure at the report's width; height grows with the number of labelled rows."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if height is None:
        height = max(2.6, 0.3 * rows + 1.6)
    fig, axes = plt.subplots(
        1, ncols, figsize=(FIG_WIDTH_IN, height), squeeze=False, layout="constrained"
    )
    return fig, axes[0] if ncols > 1 else axes[0][0]
