"""Adding runs to the history without locks: many nodes may write one shared folder at once.

Each run writes its own files, named by its run id (unique per run), under the month it
started in: first every table's parquet file (each written under a temporary name and
renamed into place), then each table's `<run_id>.<fp>.done` marker (fp: the schema's
fingerprint), the runs table's last. A reader
counts a file only once its marker exists (bench.history.layout), so on object storage, where
a rename is a copy that a reader may see half-done, a file is still never read half-written.
Adding a run whose runs marker is already there changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.history.layout import (
    TABLE_NAMES,
    month_files,
    month_of,
    open_history,
    run_marker,
    write_atomic,
)
from bench.history.registry import previous_testbed, register
from bench.history.schema import arrow_schema, fingerprint

Warn = Callable[[str], None]


def write_table(frame: Any, table: str, path: Path) -> None:
    """One table's rows as a parquet file at `path`, written under a temporary name first."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(table)
    data = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    pq.write_table(data, tmp)
    os.replace(tmp, path)


def has_run(history: Path, run_id: str, month: str) -> bool:
    """Is the run in the history: its runs marker, or a merged runs file that lists it."""
    found = month_files(Path(history) / "runs" / month)
    return run_id in found.runs or run_id in found.covered


def write_run(history: Path, runs: Any, cases: Any, environment: Any) -> bool:
    """Add one run's rows (one row in `runs`); False, and nothing written, if it is there."""
    history = Path(history)
    open_history(history)
    run_id = str(runs["run_id"].iloc[0])
    month = month_of(runs["started_at"].iloc[0].to_pydatetime())
    if has_run(history, run_id, month):
        return False
    frames = {"runs": runs, "cases": _with_run_health(cases, runs), "environment": environment}
    paths = {}
    for table in TABLE_NAMES:
        folder = history / table / month
        folder.mkdir(parents=True, exist_ok=True)
        paths[table] = folder / f"{run_id}.parquet"
        write_table(frames[table], table, paths[table])
    for table in TABLE_NAMES:  # markers last, the runs table's last of all
        schema = fingerprint(table)
        write_atomic(run_marker(paths[table], schema), schema)
    register(history, {k: _value(v) for k, v in runs.iloc[0].items()})
    return True


def _with_run_health(cases: Any, runs: Any) -> Any:
    """A case's health mark where it has one, else its run's: a run whose health check failed
    with no per-case answer voids every case, and a reader of the cases needs no runs."""
    failed = runs["health_failed"].iloc[0]
    if _value(failed) is None:
        return cases
    own = cases["health_failed"].astype("boolean")
    return cases.assign(health_failed=own.fillna(bool(failed)))


def _value(value: Any) -> Any:
    """A cell as a plain Python value, None where pandas holds a missing one."""
    import pandas as pd

    if not isinstance(value, pd.Timestamp) and pd.isna(value):
        return None
    return value


def add_run_dir(history: Path, run_dir: Path, *, warn: Warn | None = None) -> bool:
    """Add a run folder; False if its run id is already in the history. UsageError (one line)
    for a folder that is not a readable run or names no testbed, or a history that is not one.
    """
    from bench.history.rows import read_run, run_tables

    run = read_run(Path(run_dir))
    return add_tables(history, run_tables(run), warn=warn)


def add_tables(history: Path, tables: Any, *, warn: Warn | None = None) -> bool:
    """Add one run's RunTables (bench.history.rows); False if its run id is there already.
    A GPU swapped on the run's host starts a new testbed, linked here to the one it replaced
    (bench.history.registry: the testbeds the history has seen on that host)."""
    from bench.history.testbed import Testbed

    history = Path(history)
    open_history(history)
    if has_run(history, tables.run_id, month_of(tables.started_at.to_pydatetime())):
        return False
    import pandas as pd

    row = tables.runs.iloc[0]
    gpu = ("gpu_uuid", "gpu_serial", "gpu_bdf")
    parts = [None if pd.isna(row[c]) else str(row[c]) for c in gpu]
    testbed = Testbed(str(row["host"]), str(row["sku"]), *parts)
    runs = tables.runs.copy()
    runs["previous_testbed"] = previous_testbed(history, testbed)
    return write_run(history, runs, tables.cases, tables.environment)
