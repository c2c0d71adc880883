"""What `flopwatt ceiling` prints, and the one line a run prints about its ceilings. Pure.

The table reads like MAMF finder's summary (best shape, mean/median/max, geometric mean over
all shapes, "MAMF / theory"), with the median as the headline because it is what every case
is compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.results.ceiling_model import Ceiling
from bench.results.render import percent, rate_unit, si

HEADERS = (
    "dtype",
    "ceiling (median)",
    "best shape",
    "mean",
    "max",
    "geomean",
    "shapes",
    "spec peak",
    "% of spec",
    "search",
)


def ceiling_rows(ceiling: Ceiling, dtypes: Sequence[str]) -> list[list[str]]:
    """One row per requested dtype: its ceiling, or why it has none."""
    rows = []
    for dtype in dtypes:
        entry = ceiling.matmul.get(dtype)
        if entry is None:  # the reason is printed under the table
            why = ceiling.skipped.get(dtype, "not measured")
            state = "failed" if why.startswith("failed") else "skipped"
            rows.append([dtype, state] + [""] * (len(HEADERS) - 2))
            continue
        unit = rate_unit(dtype)
        stop = entry.stop_reason + ("" if entry.correctness else ", best not re-checked")
        rows.append(
            [
                dtype,
                si(entry.ops_per_s, unit),
                entry.best.label,
                si(entry.best.mean_ops_per_s, unit),
                si(entry.best.max_ops_per_s, unit),
                si(entry.geomean_ops_per_s, unit),
                str(len(entry.points)),
                si(entry.spec_peak_ops_per_s, unit) if entry.spec_peak_ops_per_s else "unknown",
                percent(entry.frac_of_spec),
                f"{entry.preset} {entry.search_s:.0f} s ({stop})",
            ]
        )
    return rows


def memory_lines(ceiling: Ceiling) -> list[str]:
    memory = ceiling.memory
    if memory is None:
        return ["memory: not measured"]
    lines = []
    for name, bw in memory.kernels.items():
        frac = f", {percent(bw.frac_of_spec)} of spec" if bw.frac_of_spec is not None else ""
        lines.append(
            f"memory {name}: {si(bw.bytes_per_s, 'B/s')} (median; max "
            f"{si(bw.max_bytes_per_s, 'B/s')}){frac} over {bw.buffer_bytes / 2**20:.0f} MiB; "
            f"{bw.convention}"
        )
    cache = f"{memory.cache_bytes / 2**20:g} MiB" if memory.cache_bytes else "unknown"
    spec = si(memory.spec_bytes_per_s, "B/s") if memory.spec_bytes_per_s else "unknown"
    lines.append(
        f"memory spec bandwidth: {spec} ({memory.spec_detail}); cache {cache} "
        f"({memory.cache_source})"
    )
    return lines


def ceiling_report(
    ceiling: Ceiling, label: str, dtypes: Sequence[str], failures: Sequence[str] = ()
) -> Any:  # rich Group
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    name = ceiling.device.get("name") or ceiling.device.get("model") or ceiling.sku
    title = f"flopwatt ceiling on {label} ({name})"
    caption = (
        "each shape timed cold: cache flushed and output re-randomised before every call; "
        "ceiling = best median rate"
    )
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for header in HEADERS:
        left = header in ("dtype", "best shape", "search")
        table.add_column(header, justify="left" if left else "right", no_wrap=True)
    for row in ceiling_rows(ceiling, dtypes):
        table.add_row(*row)
    lines = [
        f"{dtype} {why if why.startswith('failed') else 'skipped: ' + why}"
        for dtype, why in ceiling.skipped.items()
        if dtype in dtypes and dtype not in ceiling.matmul
    ]
    lines += memory_lines(ceiling)
    if ceiling.warmup:
        w = ceiling.warmup
        lines.insert(0, f"thermal warm-up: {w['dtype']} {w['shape']} for {w['seconds']:.1f} s")
    lines += [f"FAILED: {f}" for f in failures if f.split(":")[0] not in dtypes]
    return Group(table, *(Text(line) for line in lines))


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
