"""`history check` output: a compact table for people (non-ok verdicts first, counts per
state, change points, attribution), the same as Markdown, and JSON with everything.

In a terminal the tables are rich's; written to a file or a pipe (a cron job's log) they are
plain aligned columns, which a log keeps readable and which print a fleet's hundreds of rows
in milliseconds, where rich takes a few per row."""

from __future__ import annotations

import json
from typing import Any

from bench.history.check import CheckResult
from bench.history.verdicts import OK, STATES

HEADERS = ["state", "testbed", "run", "case", "change", "95% CI", "threshold", "why"]
CP_HEADERS = ["testbed", "case", "metric", "first bad run", "at", "shift", "window", "runs"]
ATTR_HEADERS = ["testbed", "case", "metric", "last good → first bad", "changed", "peers"]
STYLE = {"regression": "bold red", "warn": "yellow", "improvement": "green"}
MAX_ROWS = 200  # a fleet's table stays readable; the JSON has every verdict
MAX_CHANGE_POINTS = 50  # the largest shifts; the JSON has them all


def summary(result: CheckResult) -> str:
    counts = result.counts()
    parts = ", ".join(f"{counts[s]} {s}" for s in reversed(STATES))
    runs = len(result.judged_runs)
    return f"history check: {runs} runs judged: {parts}; {len(result.change_points)} change points"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"


def verdict_cells(v: dict[str, Any]) -> list[str]:
    m = v[v["metric"]]
    ci = (
        f"{_pct(m['change_low'])}..{_pct(m['change_high'])}" if m["change_low"] is not None else "—"
    )
    threshold = "—" if m["threshold"] is None else f"{m['threshold']:.1%}"
    return [
        v["state"],
        v["testbed"],
        v["run_id"],
        v["case_label"],
        _pct(m["change"]),
        ci,
        threshold,
        v["reason"],
    ]


def change_point_cells(cp: Any) -> list[str]:
    return [
        cp.testbed,
        cp.case_label,
        cp.metric,
        cp.first_bad_run,
        cp.first_bad_at[:16],
        _pct(cp.shift),
        _pct(cp.window_shift),
        str(cp.runs_after),
    ]


def attribution_cells(a: Any) -> list[str]:
    changed = "; ".join(f"{d['key']}: {d['before']} → {d['after']}" for d in a.environment)
    peers = f"{a.peers.verdict}: {a.peers.why}" if a.peers else "—"
    return [
        a.testbed,
        a.case_key,
        a.metric,
        f"{a.last_good_run or '—'} → {a.first_bad_run}",
        changed or a.environment_note,
        peers,
    ]


def _shown(result: CheckResult) -> list[dict[str, Any]]:
    return [v for v in result.verdicts if v["state"] != OK][:MAX_ROWS]


def _change_points(result: CheckResult) -> list[Any]:
    largest = sorted(result.change_points, key=lambda c: -abs(c.shift))
    return largest[:MAX_CHANGE_POINTS]


def _left_out(result: CheckResult) -> str:
    hidden = sum(v["state"] != OK for v in result.verdicts) - len(_shown(result))
    ok = result.counts()[OK]
    return f"{ok} ok verdicts not listed" + (
        f", {hidden} more not ok (see --format json)" if hidden else ""
    )


def _tables(result: CheckResult) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of each table that has rows."""
    tables = [
        ("verdicts", HEADERS, [verdict_cells(v) for v in _shown(result)]),
        ("change points", CP_HEADERS, [change_point_cells(c) for c in _change_points(result)]),
        ("attribution", ATTR_HEADERS, [attribution_cells(a) for a in result.attributions]),
    ]
    return [t for t in tables if t[2]]


def print_text(result: CheckResult) -> None:
    import sys

    if not sys.stdout.isatty():
        sys.stdout.write(plain_text(result))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(summary(result))
    for title, headers, rows in _tables(result):
        table = Table(title=title, title_justify="left")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            style = STYLE.get(row[0], "") if title == "verdicts" else ""
            table.add_row(*row, style=style or None)
        console.print(table)
    console.print(_left_out(result))  # warnings went to stderr as they came


def plain_text(result: CheckResult) -> str:
    """The text tables as plain aligned columns (the last column, the longest, unpadded)."""
    lines = [summary(result)]
    for title, headers, rows in _tables(result):
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
        lines += ["", title]
        for row in [headers, ["-" * w for w in widths], *rows]:
            cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
            lines.append("  ".join([*cells, row[-1]]))
    lines += ["", _left_out(result)]
    return "\n".join(lines) + "\n"


def markdown(result: CheckResult) -> str:
    from bench.results.document import Heading, Para, Table, render_markdown

    blocks: list[Any] = [Heading("flopwatt history check", 2), Para(summary(result))]
    blocks.append(Table(HEADERS, [verdict_cells(v) for v in _shown(result)], _left_out(result)))
    if result.change_points:
        blocks += [Heading("Change points", 3)]
        blocks.append(Table(CP_HEADERS, [change_point_cells(c) for c in _change_points(result)]))
    if result.attributions:
        blocks += [Heading("Attribution", 3)]
        blocks.append(Table(ATTR_HEADERS, [attribution_cells(a) for a in result.attributions]))
    blocks += [Para(f"warning: {w}") for w in result.warnings]
    return render_markdown(blocks)


def as_json(result: CheckResult) -> str:
    return json.dumps(result.as_dict(), indent=2, default=str, allow_nan=False) + "\n"
