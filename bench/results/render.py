"""Rendering for the terminal: SI-scaled numbers and the summary table. Pure functions.

Stored data is in SI base units; scaling to TFLOP/s, ms or GB happens only here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.results.record import CaseResult, Energy

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """795.3e12, "FLOP/s" -> "795 TFLOP/s"; None -> "—"."""
    if value is None:
        return "—"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def seconds(value: float | None) -> str:
    """A duration with a readable unit: 1.23 ms, 45.6 us, 2.31 s."""
    if value is None:
        return "—"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def rate_unit(dtype: str) -> str:
    """Integer math is counted in operations, floating point in FLOPs."""
    return "OP/s" if dtype.startswith("int") else "FLOP/s"


def _estimated(energy: Energy) -> str:
    return " est." if energy.energy_source == "estimate" else ""


def _watts(r: CaseResult) -> str:
    if r.energy.avg_power_w is None:
        return "—"
    return f"{r.energy.avg_power_w:.0f} W" + _estimated(r.energy)


def _per_watt(r: CaseResult, unit: str) -> str:
    """ops per joule shown as rate per watt (TFLOP/s/W), the unit people compare."""
    if r.energy.ops_per_j is None:
        return "—"
    return si(r.energy.ops_per_j, f"{unit}/W") + _estimated(r.energy)


def _rate_cells(r: CaseResult, unit: str) -> tuple[str, str, str, str]:
    """rate, peak, peak source, fraction: compute against the compute peak, collectives'
    bus bandwidth against the unidirectional link peak."""
    coll, rates = r.collective, r.rates
    if coll.busbw_bytes_per_s is not None:
        peak = si(coll.link_peak_bytes_per_s, "B/s") if coll.link_peak_bytes_per_s else "unknown"
        return (
            f"{si(coll.busbw_bytes_per_s, 'B/s')} bus",
            peak,
            coll.link_peak_source or "",
            percent(coll.link_utilisation),
        )
    peak = si(rates.peak_ops_per_s, unit) if rates.peak_ops_per_s else "unknown"
    frac = percent(rates.frac_of_peak) + (" wrong peak" if rates.peak_exceeded else "")
    return si(rates.achieved_ops_per_s, unit), peak, rates.peak_source or "", frac


def summary_rows(results: Iterable[CaseResult]) -> tuple[list[list[str]], list[str]]:
    """Rows of the summary table (ratios next to their denominators) and numbered notes."""
    rows, notes = [], []
    for r in results:
        ident = r.identity
        unit = rate_unit(ident.dtype)
        ok = ident.status == "ok"
        lines = [ident.reason] if not ok and ident.reason else list(ident.warnings)
        if ok and r.rates.peak_ops_per_s is None and r.rates.peak_detail:
            lines.append(f"peak unknown: {r.rates.peak_detail}")
        if ok and r.energy.window_s is not None and r.energy.energy_j is None:
            lines.append(f"energy unknown: {r.energy.energy_reason}")
        marks = []
        for line in lines:
            if line not in notes:
                notes.append(line)
            marks.append(f"[{notes.index(line) + 1}]")
        shape = ident.params.get("shape_label", "")
        if ident.rank is not None:
            shape += f" rank {ident.rank}"
        ran = r.work.kernel_details.get("sdpa_backend")
        if ran and not shape.endswith(ran):
            shape += f" (ran {ran})"  # what `auto` picked
        if not ok:
            blanks = [""] * (len(SUMMARY_HEADERS) - 5)
            rows.append([ident.kernel, shape, ident.dtype, ident.status, *blanks, " ".join(marks)])
            continue
        rate, peak, source, frac = _rate_cells(r, unit)
        rows.append(
            [
                ident.kernel,
                shape,
                ident.dtype,
                seconds(r.timing.time_median_s),
                rate,
                peak,
                source,
                frac,
                percent(r.rates.frac_of_measured_peak),
                percent(r.rates.frac_of_clock_peak),
                percent(r.timing.rel_noise, 2),
                _watts(r),
                _per_watt(r, unit),
                " ".join(marks),
            ]
        )
    return rows, notes


SUMMARY_HEADERS = (
    "kernel",
    "shape",
    "dtype",
    "time",
    "rate",
    "peak",
    "peak source",
    "% of peak",
    "% of ceiling",
    "% at clock",
    "noise",
    "power",
    "rate/W",
    "notes",
)
_LEFT = {"kernel", "shape", "dtype", "peak source", "notes"}


def summary_table(results: Iterable[CaseResult], title: str):  # -> rich Group
    """The table `flopwatt run` prints, with each case's notes listed under it."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    results = list(results)
    rows, notes = summary_rows(results)
    headers = list(SUMMARY_HEADERS)
    caption = "time = median per call; noise = stdev/mean of the samples"
    empty = []  # columns no result has a value for: the lines under the table say why
    if any(r.energy.avg_power_w is not None for r in results):
        caption += "; power and rate/W over the energy window"
    else:
        empty += ["power", "rate/W"]
    if any(r.rates.frac_of_measured_peak is not None for r in results):
        caption += "; % of ceiling = of the best matmul rate measured on this device"
    else:
        empty.append("% of ceiling")
    if any(r.rates.frac_of_clock_peak is not None for r in results):
        caption += "; % at clock = of the peak scaled to the measured clock"
    else:
        empty.append("% at clock")
    if empty:
        drop = [headers.index(h) for h in empty]
        headers = [h for i, h in enumerate(headers) if i not in drop]
        rows = [[cell for i, cell in enumerate(row) if i not in drop] for row in rows]
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for header in headers:
        table.add_column(header, justify="left" if header in _LEFT else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    footnotes = [Text(f"[{i}] {note}") for i, note in enumerate(notes, 1)]
    return Group(table, *footnotes)


def power_line(power: Any, idle: dict[str, Any] | None) -> str:
    """One line under the table: which power source measured, and the idle baseline."""
    if not power.available:
        return f"energy: not measured ({power.reason})"
    scope = power.describe().get("scope", "")
    line = f"energy: {power.name} ({scope})"
    if idle and idle.get("power_w") is not None:
        line += f", idle {idle['power_w']:.1f} W over {idle['seconds']:.1f} s"
    elif idle:
        line += f", idle unknown ({idle.get('reason')})"
    return line


def ceiling_line(meta: dict[str, Any] | None) -> str:
    """One line under a run's table: which ceilings the run divided by, or why none."""
    if not meta:
        return "ceiling: none looked up"
    rates = meta.get("matmul") or {}
    if not rates:
        return f"ceiling: none; {meta.get('note') or 'no measured ceiling'}"
    parts = [
        f"{dtype} {si(entry['ops_per_s'], rate_unit(dtype))} at {entry['shape']}"
        for dtype, entry in rates.items()
    ]
    where = "measured in this run" if meta.get("source") == "this run" else meta.get("path")
    return f"ceiling ({where}): " + ", ".join(parts)
