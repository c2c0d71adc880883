"""The report's "Hardware health" section: the check rows of a health run (bench.commands.health).

A run has rows when `flopwatt health` made it, or when the nightly suite checked health
first. The section gives each device's verdict, then only the rows that FAILed or WARNed,
so that a report of eight GPUs does not bury the one bad row under two hundred good ones
(health.jsonl keeps every row).
"""

from __future__ import annotations

from typing import Any

from bench.commands.health.render import HEADERS, ORDER, cells, device_text, summary_line
from bench.results.record import Run
from bench.commands.report.document import Block, Heading, Para, Table
from bench.results.frame import run_label

_ORDER = ORDER


def _devices(rows: list[dict[str, Any]]) -> Table:
    by_device: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = by_device.setdefault(device_text(row), dict.fromkeys(_ORDER, 0))
        counts[row["verdict"]] += 1
    body = []
    for device, counts in by_device.items():
        verdict = next((v for v in ("FAIL", "WARN", "INCONCLUSIVE") if counts[v]), "PASS")
        body.append([device, verdict, *(str(counts[v]) for v in _ORDER)])
    caption = "N/A: the check cannot run there; INCONCLUSIVE: a busy machine, or within noise"
    return Table(["device", "verdict", *_ORDER], body, caption)


def health_blocks(runs: list[Run]) -> list[Block]:
    """The section, or nothing when no run checked health."""
    checked = [run for run in runs if run.health]
    if not checked:
        return []
    blocks: list[Block] = [Heading("Hardware health")]
    for run in checked:
        if len(runs) > 1:
            blocks.append(Heading(run_label(run), 3))
        summary = run.meta.get("health") or {}
        if summary.get("counts"):
            blocks.append(Para(summary_line(summary)))
        blocks.append(_devices(run.health))
        problems = [r for r in run.health if r["verdict"] in ("FAIL", "WARN", "INCONCLUSIVE")]
        problems.sort(key=lambda r: _ORDER.index(r["verdict"]))
        if problems:
            blocks.append(
                Table(
                    HEADERS,
                    [cells(r) for r in problems],
                    "rows that FAILed, WARNed or were inconclusive",
                )
            )
        else:
            blocks.append(
                Para(f"No check FAILed, WARNed or was inconclusive ({len(run.health)} rows).")
            )
        blocks += [Para(f"warning: {w}") for w in summary.get("warnings", [])]
    return blocks
