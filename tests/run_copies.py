"""Copies of the fixture runs with their measurements changed on purpose, for compare tests.

A copy whose samples are 10% slower, whose clocks are 10% lower, whose board drew 10% more
power, or whose run.json says something else: the verdicts must follow from exactly that.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parent / "data"
TIME_FIELDS = (
    "time_median_s",
    "time_mean_s",
    "time_min_s",
    "time_max_s",
    "time_p10_s",
    "time_p90_s",
    "time_iqr_s",
    "time_ci95_low_s",
    "time_ci95_high_s",
)
CLOCK_FIELDS = ("clock_hz_before", "clock_hz_after", "sm_clock_hz_median")


def _scale(obj: dict[str, Any], fields: tuple[str, ...], factor: float) -> None:
    for name in fields:
        if obj.get(name) is not None:
            obj[name] *= factor


def _rewrite_table(path: Path, column: str, factor: float) -> None:
    table = pq.read_table(path).to_pydict()
    table[column] = [None if x is None else x * factor for x in table[column]]
    pq.write_table(pa.table(table), path)


def altered_copy(
    src: Path,
    dst: Path,
    time: float = 1.0,
    clock: float = 1.0,
    power: float = 1.0,
    meta: dict[str, Any] | None = None,
    case: dict[str, Any] | None = None,
    keep: int | None = None,
) -> Path:
    """Copy run src to dst with per-call times x time, clocks x clock, power x power; meta
    and case update run.json and every case line; keep drops all but the first cases."""
    shutil.copytree(src, dst)
    lines = (dst / "cases.jsonl").read_text().splitlines()[:keep]
    out = []
    for line in lines:
        c = json.loads(line)
        _scale(c, TIME_FIELDS, time)
        _scale(c, CLOCK_FIELDS, clock)
        if c.get("achieved_ops_per_s") is not None:
            c["achieved_ops_per_s"] /= time
        if c.get("ops_per_j") is not None:
            c["ops_per_j"] /= power
            c["avg_power_w"] *= power
        if c.get("samples_file") and time != 1.0:
            _rewrite_table(dst / c["samples_file"], "time_s", time)
        if c.get("trace_file") and power != 1.0:
            _rewrite_table(dst / c["trace_file"], "power_w", power)
        c.update(case or {})
        out.append(json.dumps(c))
    (dst / "cases.jsonl").write_text("\n".join(out) + "\n")
    if meta:
        doc = json.loads((dst / "run.json").read_text())
        doc.update(meta)
        (dst / "run.json").write_text(json.dumps(doc))
    return dst


def schema_2_copy(src: Path, dst: Path) -> Path:
    """Copy a 1.x run to dst as this flopwatt writes it: each line nested in parts (through
    the same table the loader reads 1.x with), schema 2.0 in run.json and on every line."""
    from bench.results.record import CaseResult, leaves_of
    from bench.versions import SCHEMA_VERSION

    shutil.copytree(src, dst)
    lines = (dst / "cases.jsonl").read_text().splitlines()
    nested = []
    for line in lines:
        leaves = leaves_of(json.loads(line)) | {"schema_version": SCHEMA_VERSION}
        nested.append(CaseResult.from_leaves(leaves).to_json())
    (dst / "cases.jsonl").write_text("\n".join(nested) + "\n")
    doc = json.loads((dst / "run.json").read_text())
    (dst / "run.json").write_text(json.dumps({**doc, "schema_version": SCHEMA_VERSION}))
    return dst
