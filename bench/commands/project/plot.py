"""The projection's figure: E(N) and MFU(N) with the pessimistic-optimistic band (model mode),
or measured and projected E(N) on one plot (DP mode). Log N axis, whole decades, SI labels.
matplotlib is imported here only, with the Agg backend."""

from __future__ import annotations

import io
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _log_n(ax: Any) -> None:
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("GPUs (N)")
    ax.grid(True, which="both", alpha=0.3)


def _curve(rows: list[dict[str, Any]], band: str, key: str) -> tuple[list[int], list[float]]:
    pts = sorted((r["n_gpus"], r[key]) for r in rows if r["band"] == band)
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_png(doc: dict[str, Any]) -> bytes:
    plt = _pyplot()
    if doc["mode"] == "dp":
        fig, ax = plt.subplots(figsize=(7, 4))
        for c in doc["curves"]:
            proj = c["projected"]
            ax.plot(
                [p["n"] for p in proj],
                [p["efficiency"] for p in proj],
                "-",
                label=f"projected {c['case_id']}",
            )
            meas = [m for m in c["measured"] if m["efficiency"] is not None]
            ax.plot([m["n"] for m in meas], [m["efficiency"] for m in meas], "o", label="measured")
        ax.set_ylabel("E(N) = T_c / (T_c + T_allreduce)")
        axes = [ax]
    else:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, key, label in (
            (axes[0], "efficiency", "E(N), relative to the smallest N"),
            (axes[1], "mfu", "MFU"),
        ):
            n, lo = _curve(doc["rows"], "pessimistic", key)
            _, hi = _curve(doc["rows"], "optimistic", key)
            _, mid = _curve(doc["rows"], "nominal", key)
            ax.fill_between(n, lo, hi, alpha=0.25, label="pessimistic-optimistic")
            ax.plot(n, mid, "o-", label="nominal")
            ax.set_ylabel(label)
        fig.suptitle(f"{doc['model']['name']}: projected from measured {doc['dtype']} efficiency")
    for ax in axes:
        _log_n(ax)
        ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
