"""Reading the history through DuckDB: the runs, the cases and the environment of runs.

The files a reader counts come from bench.history.layout (markers, merged months); DuckDB
reads them in one query with union_by_name, so files written before a column existed read
with that column null. One damaged file must not hide the others: DuckDB fails a whole query
on one bad file, so on a failure every file's parquet footer is checked (pyarrow, cheap) and
the query runs again without the bad ones, each named in one warning line; a file that
passes the footer check but still fails is found by reading file by file.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.history.columns import TABLES
from bench.history.layout import check_history, live_files, schema_of
from bench.history.schema import arrow_schema, pandas_dtypes

__all__ = [
    "case_table",
    "check_history",
    "concat",
    "load_cases",
    "load_environment",
    "load_run_rows",
    "load_runs",
    "runs_in",
    "typed",
]

Warn = Callable[[str], None]
RETRIES = 3  # a file compact deleted between listing and reading: list again
BATCH = 500  # files per DuckDB query (_query)


def _stderr(message: str) -> None:
    print(f"flopwatt: warning: {message}", file=sys.stderr)


def _utc(since: datetime | None) -> datetime | None:
    if since is None:
        return None
    return since.replace(tzinfo=timezone.utc) if since.tzinfo is None else since


def _empty(table: str) -> Any:
    import pandas as pd

    return pd.DataFrame(columns=list(TABLES[table])).astype(pandas_dtypes(table))


def typed(data: Any, table: str) -> Any:
    """A DataFrame with the table's columns and dtypes (schema.pandas_dtypes) from an arrow
    table: a column no file had is all null, every column is cast to the store's type."""
    import pandas as pd
    import pyarrow as pa

    schema = arrow_schema(table)
    # one chunk per file read: combined first, a column is cast and converted once, not per file
    columns = [
        _one_chunk(data[f.name]).cast(f.type)
        if f.name in data.column_names
        else pa.nulls(len(data), f.type)
        for f in schema
    ]
    mapper = {pa.bool_(): pd.BooleanDtype(), pa.int64(): pd.Int64Dtype()}
    frame = pa.table(columns, schema=schema).to_pandas(types_mapper=mapper.get)
    return frame.astype(pandas_dtypes(table))


def _one_chunk(column: Any) -> Any:
    return column.combine_chunks() if column.num_chunks > 1 else column


@functools.cache
def _database(pid: int) -> Any:
    """One in-memory DuckDB per process (connecting costs ~30 ms, and a check queries several
    times); keyed by pid, so a forked child never uses its parent's threads."""
    import duckdb

    return duckdb.connect()


def _connection() -> Any:
    """A cursor of the process' DuckDB (cheap, and not shared), its times in UTC."""
    con = _database(os.getpid()).cursor()
    con.execute("SET TimeZone = 'UTC'")
    return con


Files = dict[Path, str]  # a file -> its schema fingerprint, "" to read from its marker


def _query(files: Files, where: str, params: dict[str, Any]) -> Any:
    """The rows of the files matching `where`, as an arrow table. DuckDB hands back one arrow
    chunk per small file, each with buffers of its own (a few KB each); so many files are read
    BATCH at a time, each batch's chunks combined at once, and a month of run files does not
    hold several times its size in memory."""
    import pyarrow as pa

    paths = list(files)
    if len(paths) <= BATCH:
        return _scan(files, where, params)
    parts = [
        _scan({p: files[p] for p in paths[i : i + BATCH]}, where, params).combine_chunks()
        for i in range(0, len(paths), BATCH)
    ]
    return pa.concat_tables(parts, promote_options="permissive")


def concat(parts: Sequence[Any], table: str) -> Any:
    """Arrow reads of one table as one: each column cast to the store's type first (two
    queries may have typed a column apart), a column one read lacks null in its rows."""
    import pyarrow as pa

    schema = arrow_schema(table)

    def conformed(part: Any) -> Any:
        fields = [
            schema.field(n) if n in schema.names else part.schema.field(n)
            for n in part.column_names
        ]
        return part.cast(pa.schema(fields))

    return pa.concat_tables([conformed(p) for p in parts], promote_options="permissive")


def _scan(files: Files, where: str, params: dict[str, Any]) -> Any:
    """One DuckDB query over the files, as an arrow table. Files whose markers record one
    schema are one scan; scans of different schemas (and files of unknown schema, matched
    column by column) are joined by column name."""
    groups: dict[str, list[str]] = {}
    for path, schema in files.items():
        key = (schema or schema_of(path)) if len(files) > 1 else ""
        groups.setdefault(key, []).append(str(path))
    scans, names = [], {}
    for i, (schema, group) in enumerate(groups.items()):
        names[f"files{i}"] = group
        by_name = "" if schema else ", union_by_name = true"
        scans.append(f"SELECT * FROM read_parquet($files{i}{by_name})")
    sql = f"SELECT * FROM ({' UNION ALL BY NAME '.join(scans)}) {where}"
    con = _connection()
    try:
        return con.sql(sql, params={**names, **params}).to_arrow_table()
    finally:
        con.close()


def _footer_ok(path: Path, warn: Warn) -> bool:
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
        return True
    except FileNotFoundError:
        return False  # compacted away since the listing: the caller lists again, silently
    except Exception as exc:  # any unreadable footer is a damaged file
        warn(f"{path}: not a readable parquet file ({type(exc).__name__}), skipped")
        return False


def _one_by_one(files: Files, where: str, params: dict[str, Any], warn: Warn) -> Any:
    import duckdb
    import pyarrow as pa

    parts, bad = [], []
    for path in files:
        try:
            parts.append(_query({path: ""}, where, params))
        except duckdb.Error as exc:
            warn(f"{path}: unreadable ({str(exc).splitlines()[0]}), skipped")
            bad.append(path)
    return (pa.concat_tables(parts, promote_options="permissive") if parts else None), bad


def read_files(
    files: Files, where: str, params: dict[str, Any], warn: Warn
) -> tuple[Any, list[Path]]:
    """Rows of `files` matching `where`, and the files skipped (each named in a warning)."""
    import duckdb

    if not files:
        return None, []
    try:
        return _query(files, where, params), []
    except duckdb.Error:
        good = {f: schema for f, schema in files.items() if _footer_ok(f, warn)}
    bad = [f for f in files if f not in good]
    if not good:
        return None, bad
    try:
        return _query(good, where, params), bad
    except duckdb.Error:
        frame, worse = _one_by_one(good, where, params, warn)
        return frame, bad + worse


def _read(history: Path, table: str, where: str, params: dict[str, Any], **opts: Any) -> Any:
    """Rows of a table matching `where` as a DataFrame; damaged files skipped with a warning
    each."""
    data = _read_arrow(history, table, where, params, **opts)
    return _empty(table) if data is None else typed(data, table)


def _read_arrow(history: Path, table: str, where: str, params: dict[str, Any], **opts: Any) -> Any:
    """_read's rows as the arrow table DuckDB returns (None when no file was read)."""
    warn: Warn = opts.get("warn") or _stderr
    pick: Callable[[Path], bool] = opts.get("pick") or (lambda p: True)
    for _ in range(RETRIES):
        found = live_files(history, table, opts.get("since"), opts.get("until"))
        files = {f: schema for f, schema in found.items() if pick(f)}
        frame, skipped = read_files(files, where, params, warn)
        if any(not f.exists() for f in skipped):
            continue  # a file went away under us (compact): list the folder again
        return frame
    raise UsageError(f"{history}: the {table} files kept changing while being read; try again")


def _filters(
    since: datetime | None, until: datetime | None, testbeds: Sequence[str] | None
) -> tuple[str, dict]:
    clauses, params = [], {}
    if since is not None:
        clauses.append("started_at >= $since")
        params["since"] = since
    if until is not None:
        clauses.append("started_at < $until")
        params["until"] = until
    if testbeds is not None:
        clauses.append("list_contains($testbeds, testbed)")
        params["testbeds"] = list(testbeds)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _check_testbeds(history: Path, testbeds: Sequence[str], found: Any) -> None:
    """UsageError naming a few known testbeds when a requested one is in no run at all."""
    missing = set(testbeds) - set(found)
    if not missing:
        return
    from bench.history.registry import known_testbeds

    known = known_testbeds(history)
    unknown = sorted(missing - set(known))
    if unknown:
        few = ", ".join(known[:5]) + (f" (and {len(known) - 5} more)" if len(known) > 5 else "")
        raise UsageError(f"unknown testbed {unknown[0]!r} in {history}; known: {few or 'none'}")


def _rows(
    table: str, history: Path, window: tuple[Any, Any], testbeds: Any, warn: Warn | None
) -> Any:
    """The arrow rows of a table started in the window [since, until) and of `testbeds`
    (None: all); None when no file was read."""
    since, until = (_utc(t) for t in window)
    where, params = _filters(since, until, testbeds)
    opts = {"since": since, "until": until, "warn": warn or _stderr}
    return _read_arrow(Path(history), table, where, params, **opts)


def _load(
    table: str, history: Path, window: tuple[Any, Any], testbeds: Any, warn: Warn | None
) -> Any:
    check_history(Path(history))
    data = _rows(table, history, window, testbeds, warn)
    frame = _empty(table) if data is None else typed(data, table)
    if testbeds is not None:
        _check_testbeds(Path(history), testbeds, frame["testbed"].unique())
    return frame


def load_runs(
    history: Path,
    *,
    since: datetime | None = None,
    testbeds: Sequence[str] | None = None,
    warn: Warn | None = None,
) -> Any:
    """One row per run (columns.RUN_COLUMNS) that started at or after `since`, of `testbeds`."""
    return _load("runs", history, (since, None), testbeds, warn)


def load_run_rows(
    history: Path,
    run_ids: Sequence[str],
    *,
    since: datetime | None = None,
    warn: Warn | None = None,
) -> Any:
    """The runs-table rows of the given runs (none started before `since`), opening only
    their own files and merged ones."""
    return _by_run_id(history, "runs", run_ids, since, warn)


def load_cases(
    history: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    testbeds: Sequence[str] | None = None,
    warn: Warn | None = None,
) -> Any:
    """One row per (run, case) (columns.CASE_COLUMNS), filtered like load_runs, and started
    before `until` where given (months after it are not listed)."""
    return _load("cases", history, (since, until), testbeds, warn)


def case_table(
    history: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    testbeds: Sequence[str] | None = None,
    warn: Warn | None = None,
) -> Any:
    """load_cases' rows as an arrow table, for a reader that combines and filters several
    reads before converting them once (typed(table, "cases")); None when no file was read.
    The testbeds are not checked against the registry: the caller has done that."""
    return _rows("cases", history, (since, until), testbeds, warn)


def runs_in(cases: Any) -> Any:
    """One row per run among case rows given as an arrow table: run_id, testbed and
    started_at (UTC), a DataFrame. DuckDB's hash aggregation: a few ms for 300,000 rows."""
    import pandas as pd

    con = _connection()
    try:
        con.register("cases", cases)
        runs = con.sql(
            "SELECT run_id, any_value(testbed) AS testbed, min(started_at) AS started_at "
            "FROM cases GROUP BY run_id ORDER BY started_at, run_id"
        ).to_arrow_table()
    finally:
        con.close()
    frame = runs.to_pandas()
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


def load_environment(
    history: Path,
    run_ids: Sequence[str],
    *,
    since: datetime | None = None,
    warn: Warn | None = None,
) -> Any:
    """The environment rows (run_id, key, value) of the given runs (none started before
    `since`). Only their own files and the merged ones are opened: a run's file is named by
    its run id, and months before `since` are not listed."""
    return _by_run_id(history, "environment", run_ids, since, warn)


def _by_run_id(
    history: Path, table: str, run_ids: Sequence[str], since: datetime | None, warn: Warn | None
) -> Any:
    check_history(Path(history))
    wanted = {str(r) for r in run_ids}
    if not wanted:
        return _empty(table)

    def pick(path: Path) -> bool:
        return path.stem in wanted or path.stem.startswith("merged-")

    params = {"run_ids": sorted(wanted)}
    where = "WHERE list_contains($run_ids, run_id)"
    opts = {"warn": warn or _stderr, "pick": pick, "since": _utc(since)}
    return _read(Path(history), table, where, params, **opts)
