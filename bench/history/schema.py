"""The arrow type of every column of the three tables (bench.history.columns names them).

Every file the store writes carries this schema, so a column that is null in one run is
still a double or a bool there, and DuckDB's union_by_name joins files of any age.
"""

from __future__ import annotations

import functools
from typing import Any

from bench.history.columns import CASE_COLUMNS, ENVIRONMENT_COLUMNS, RUN_COLUMNS

_INTS = frozenset({"method_version"})
_BOOLS = frozenset({"synthetic", "health_failed", "throttled"})
_FLOATS = frozenset(
    {
        "time_median_s",
        "achieved_ops_per_s",
        "ops_per_j",
        "busbw_bytes_per_s",
        "clock_hz",
        "cpu_pressure",
        "rel_iqr",
    }
)
_COLUMNS = {"runs": RUN_COLUMNS, "cases": CASE_COLUMNS, "environment": ENVIRONMENT_COLUMNS}


def _arrow_type(column: str) -> Any:
    import pyarrow as pa

    if column == "started_at":
        return pa.timestamp("us", tz="UTC")
    if column in _INTS:
        return pa.int64()
    if column in _BOOLS:
        return pa.bool_()
    if column in _FLOATS:
        return pa.float64()
    return pa.string()


@functools.cache
def arrow_schema(table: str) -> Any:
    """The pyarrow schema of one table ("runs", "cases" or "environment")."""
    import pyarrow as pa

    return pa.schema([(c, _arrow_type(c)) for c in _COLUMNS[table]])


def pandas_dtypes(table: str) -> dict[str, str]:
    """The pandas dtype of each column as the readers return it: nullable where it can be
    null (booleans are "boolean", integers "Int64"), timestamps tz-aware UTC, strings pandas'
    "str" (arrow-backed: a million rows of case keys take tens of MB, not a GiB of objects;
    a missing string is NaN, so test it with pandas.isna)."""
    out: dict[str, str] = {}
    for column in _COLUMNS[table]:
        if column == "started_at":
            out[column] = "datetime64[us, UTC]"
        elif column in _INTS:
            out[column] = "Int64"
        elif column in _BOOLS:
            out[column] = "boolean"
        elif column in _FLOATS:
            out[column] = "float64"
        else:
            out[column] = "str"
    return out


@functools.cache
def fingerprint(table: str) -> str:
    """A short name of the table's columns and types, written in each file's marker: files
    with one fingerprint are read in one DuckDB scan without matching columns by name file by
    file (union_by_name reads every footer twice, which doubles the time for small files)."""
    import hashlib

    text = ",".join(f"{f.name}:{f.type}" for f in arrow_schema(table))
    return hashlib.sha1(text.encode()).hexdigest()[:12]
