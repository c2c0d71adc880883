"""How health rows look: a terminal table, Markdown, JSON; the report reuses the cells.

Pure functions of the rows (as dicts, the way health.jsonl stores them), so `flopwatt
health` and `flopwatt report` print the same cells.
"""

from __future__ import annotations

import json
from typing import Any

from bench.results.render import si

HEADERS = ["device", "check", "value", "expected", "verdict", "reason"]
STYLE = {
    "PASS": "green",
    "WARN": "yellow",
    "FAIL": "bold red",
    "N/A": "dim",
    "INCONCLUSIVE": "cyan",
}
ORDER = ("FAIL", "WARN", "INCONCLUSIVE", "PASS", "N/A")


def value_text(value: Any, unit: str = "") -> str:
    """A value as a person reads it: rates scaled (TFLOP/s, GB/s), None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and unit in ("FLOP/s", "OP/s", "B/s"):
        return si(float(value), unit)
    if isinstance(value, float):
        text = f"{value:.3g}"
        return f"{text} {unit}".strip()
    return f"{value} {unit}".strip()


def device_text(row: dict[str, Any]) -> str:
    rank = row.get("rank")
    return row["device"] if rank is None else f"rank {rank} {row['device']}"


def cells(row: dict[str, Any]) -> list[str]:
    return [
        device_text(row),
        row["name"],
        value_text(row.get("value"), row.get("unit") or ""),
        str(row.get("expected") or ""),
        row["verdict"],
        str(row.get("reason") or ""),
    ]


def summary_line(summary: dict[str, Any]) -> str:
    """ "health: WARN (0 FAIL, 2 WARN, 1 INCONCLUSIVE, 19 PASS, 17 N/A)"; INCONCLUSIVE only
    where a run has such rows (runs before it existed have no count of them)."""
    c = summary["counts"]
    shown = [v for v in ORDER if v != "INCONCLUSIVE" or c.get(v)]
    parts = ", ".join(f"{c.get(v, 0)} {v}" for v in shown)
    return f"health: {summary['verdict']} ({parts})"


def table(rows: list[dict[str, Any]], title: str) -> Any:  # -> rich Table
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for header in HEADERS:
        out.add_column(header, overflow="fold", no_wrap=header in ("verdict",))
    for row in rows:
        line = cells(row)
        style = STYLE.get(row["verdict"], "")
        line[4] = f"[{style}]{line[4]}[/{style}]" if style else line[4]
        out.add_row(*line)
    return out


def markdown(rows: list[dict[str, Any]], summary: dict[str, Any], title: str) -> str:
    from bench.commands.report.document import Heading, Para, Table, render_markdown

    blocks = [
        Heading(title, 2),
        Para(summary_line(summary)),
        Table(HEADERS, [cells(r) for r in rows]),
    ]
    blocks += [Para(f"warning: {w}") for w in summary.get("warnings", [])]
    return render_markdown(blocks)


def as_json(rows: list[dict[str, Any]], summary: dict[str, Any], run_dir: str) -> str:
    doc = {**summary, "run_dir": run_dir, "checks": rows}
    return json.dumps(doc, indent=2, default=str) + "\n"
