"""Reading a history folder. STAND-IN, to be replaced by the store's version (history-store
branch): the same functions and signatures, a minimal DuckDB reader over
`<history>/<table>/**/*.parquet` without markers, compaction or corrupt-file handling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.history.columns import CASE_COLUMNS, ENVIRONMENT_COLUMNS, RUN_COLUMNS, TABLES

Warn = Callable[[str], None] | None


def check_history(history: Path) -> None:
    """UsageError unless `history` is a folder with the history's tables."""
    if not history.is_dir() or not any((history / t).is_dir() for t in TABLES):
        raise UsageError(f"not a flopwatt history: {history} (no runs/ or cases/ folder)")


def _read(history: Path, table: str, where: str, params: list[Any]) -> Any:
    import duckdb
    import pandas as pd

    columns = TABLES[table]
    files = sorted(str(p) for p in (history / table).rglob("*.parquet"))
    if not files:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    sql = f"SELECT {', '.join(columns)} FROM read_parquet(?, union_by_name=true) {where}"
    with duckdb.connect() as con:
        frame = con.execute(sql, [files, *params]).df()
    if "started_at" in frame:
        frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


def _filters(since: datetime | None, testbeds: Sequence[str] | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if since is not None:
        clauses.append("started_at >= ?")
        params.append(since)
    if testbeds:
        clauses.append("list_contains(?, testbed)")
        params.append(list(testbeds))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def load_runs(
    history: Path,
    *,
    since: datetime | None = None,
    testbeds: Sequence[str] | None = None,
    warn: Warn = None,
) -> Any:
    """The runs table (RUN_COLUMNS)."""
    check_history(history)
    return _read(history, "runs", *_filters(since, testbeds))[list(RUN_COLUMNS)]


def load_cases(
    history: Path,
    *,
    since: datetime | None = None,
    testbeds: Sequence[str] | None = None,
    warn: Warn = None,
) -> Any:
    """The cases table (CASE_COLUMNS)."""
    check_history(history)
    return _read(history, "cases", *_filters(since, testbeds))[list(CASE_COLUMNS)]


def load_environment(history: Path, run_ids: Sequence[str], *, warn: Warn = None) -> Any:
    """The environment rows (run_id, key, value) of the given runs."""
    check_history(history)
    where = "WHERE list_contains(?, run_id)"
    return _read(history, "environment", where, [list(run_ids)])[list(ENVIRONMENT_COLUMNS)]
