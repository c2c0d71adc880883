"""The report's tables: runs, the efficiency chain, each run's cases, the device pivot.

Columns that only some runs have (clock-adjusted and measured-ceiling fractions, power,
busbw) appear only when a case has them, so a CPU run's table is not a wall of dashes.
"""

from __future__ import annotations

from typing import Any

from bench.commands.report.chain import Link
from bench.results.document import Table
from bench.results.frame import case_label, column, device_name, known, run_label
from bench.results.record import Run
from bench.results.render import percent, rate_unit, seconds, si


def runs_table(runs: list[Run]) -> Table:
    """What each run was: device, when, which suite, how it ended, the software it ran on."""
    rows = []
    for run in runs:
        m = run.meta
        env = m.get("environment") or {}
        software = env.get("software") or {}
        driver = (env.get("nvml") or {}).get("driver_version") or (env.get("amdsmi") or {}).get(
            "driver_version"
        )
        rows.append(
            [
                device_name(m),
                str(m.get("run_id") or run.path.name),
                str(m.get("suite") or ""),
                str(m.get("started_at") or ""),
                str(m.get("status") or ""),
                str(len(run.cases)),
                str(m.get("method_version")),
                str(software.get("torch") or "—"),
                str(software.get("torch_cuda") or software.get("torch_hip") or "—"),
                str(driver or "—"),
            ]
        )
    headers = [
        "device",
        "run",
        "suite",
        "started",
        "status",
        "cases",
        "method",
        "torch",
        "CUDA/HIP",
        "driver",
    ]
    return Table(headers, rows)


def chain_table(links: list[Link], note: str) -> Table:
    rows = [[link.step, link.value, link.ratio, link.denominator, link.source] for link in links]
    return Table(["step", "value", "ratio", "denominator", "source"], rows, caption=note)


def _notes_mark(lines: list[str], notes: list[str]) -> str:
    marks = []
    for line in lines:
        if line not in notes:
            notes.append(line)
        marks.append(f"[{notes.index(line) + 1}]")
    return " ".join(marks)


OPTIONAL = (
    ("% of clock peak", "frac_of_clock_peak"),
    ("% of measured ceiling", "frac_of_measured_peak"),
    ("power", "avg_power_w"),
    ("rate/W", "ops_per_j"),
    ("busbw", "busbw_bytes_per_s"),
    ("% of link", "link_utilisation"),
)


def cases_table(cases: list[dict[str, Any]]) -> Table:
    """One row per case, ratios beside their denominators, notes numbered under the table."""
    present = [(h, f) for h, f in OPTIONAL if any(known(c.get(f)) for c in cases)]
    headers = ["case", "status", "time", "rate", "peak", "peak source", "% of peak", "noise"]
    headers += [h for h, _ in present] + ["notes"]
    rows, notes = [], []
    for c in cases:
        unit = rate_unit(c.get("dtype") or "")
        lines = list(c.get("warnings") or [])
        if c.get("status") != "ok" and c.get("reason"):
            lines = [c["reason"]]
        elif column(c, "peak_ops_per_s") is None and c.get("peak_detail"):
            lines.append(f"peak unknown: {c['peak_detail']}")
        if c.get("energy_source") == "estimate":
            lines.append("energy is an estimate (TDP x utilisation), not a measurement")
        row = [
            case_label(c),
            str(c.get("status")),
            seconds(column(c, "time_median_s")),
            si(column(c, "achieved_ops_per_s"), unit),
            si(column(c, "peak_ops_per_s"), unit),
            str(c.get("peak_source") or ""),
            percent(column(c, "frac_of_peak")),
            percent(column(c, "rel_noise"), 2),
        ]
        for _, f in present:
            value = column(c, f)
            if f == "avg_power_w":
                row.append("—" if value is None else f"{value:.0f} W")
            elif f == "ops_per_j":
                row.append(si(value, f"{unit}/W"))
            elif f == "busbw_bytes_per_s":
                row.append(si(value, "B/s"))
            else:
                row.append(percent(value))
        rows.append([*row, _notes_mark(lines, notes)])
    caption = "time = median per call; noise = stdev/mean of the samples"
    if notes:
        caption += "; " + "; ".join(f"[{i}] {n}" for i, n in enumerate(notes, 1))
    return Table(headers, rows, caption)


def pivot_table(data: list[tuple[Run, list[dict[str, Any]]]]) -> Table:
    """Cases as rows, one column per run (device): rate and % of peak, side by side."""
    labels = [run_label(run) for run, _ in data]
    rows: dict[str, list[str]] = {}
    for i, (_, cases) in enumerate(data):
        for c in cases:
            if c.get("status") != "ok":
                continue
            unit = rate_unit(c.get("dtype") or "")
            cell = si(column(c, "achieved_ops_per_s"), unit)
            frac = column(c, "frac_of_peak")
            if frac is not None:
                cell += f" ({percent(frac)})"
            opj = column(c, "ops_per_j")
            if opj is not None:
                cell += f", {si(opj, unit + '/W')}"
            rows.setdefault(case_label(c), ["—"] * len(data))[i] = cell
    body = [[label, *cells] for label, cells in rows.items()]
    caption = "rate (% of the device's spec peak), ops per joule where measured"
    return Table(["case", *labels], body, caption)
