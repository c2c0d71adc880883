"""A run folder as the history's three tables: one row per run, per case, per environment key.

The run is read with the project's loader (bench.results.record.load_run), so 1.x (flat) and
2.x (nested) run folders give the same rows and a newer major schema is refused as everywhere
else. Cases are keyed by bench.results.frame.case_key, the key `compare` matches cases by.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.history.columns import CASE_COLUMNS, ENVIRONMENT_COLUMNS, RUN_COLUMNS
from bench.history.schema import pandas_dtypes
from bench.history.testbed import Testbed, testbed_of
from bench.results.eligibility import case_clock
from bench.results.frame import case_dicts, case_key, case_label, known
from bench.results.record import Run, load_run

FAMILIES = {"matmul": "matmul", "attention": "attention"}


@dataclass(frozen=True)
class RunTables:
    """One run's rows of the three tables, as DataFrames with the columns of columns.py."""

    runs: Any
    cases: Any
    environment: Any

    @property
    def run_id(self) -> str:
        return str(self.runs["run_id"].iloc[0])

    @property
    def started_at(self) -> Any:
        return self.runs["started_at"].iloc[0]


def read_run(run_dir: Path) -> Run:
    """Load a run folder; UsageError (one line) when it is not a readable run. Lines a crash
    truncated are left out, as load_run does, without a Python warning."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_run(run_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{run_dir}: cannot read ({exc.strerror or exc})") from None


def family(kernel: str | None) -> str:
    """matmul | attention | collective | other: which floor a verdict uses."""
    if kernel in FAMILIES:
        return FAMILIES[kernel]
    from kernels import specs

    spec = specs().get(kernel or "")
    return "collective" if spec is not None and spec.collective else "other"


def _started_at(meta: dict[str, Any], where: Path) -> datetime:
    text = meta.get("started_at")
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        raise UsageError(f"{where}: run.json has no readable started_at ({text!r})") from None
    if stamp.tzinfo is None:
        raise UsageError(f"{where}: started_at {text!r} has no time zone")
    return stamp.astimezone(timezone.utc)


def _health_failed(run: Run, cases: list[dict[str, Any]]) -> bool | None:
    """Did the run's health check fail? From health.jsonl (a health run), else from the
    cases' health marks (a run whose suite checks health first); None when none ran."""
    verdicts = [row.get("verdict") for row in run.health]
    if not verdicts:
        verdicts = [c.get("health_verdict") for c in cases if c.get("health_verdict")]
    if not verdicts:
        return None
    return "FAIL" in verdicts


def _throttled(case: dict[str, Any]) -> bool | None:
    """Throttle reasons seen in the energy window; None when the case had no energy window."""
    if not known(case.get("window_s")) and not known(case.get("energy_source")):
        return None
    return bool(case.get("throttle"))


def _case_row(case: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    verdict = case.get("health_verdict")
    row = {
        **base,
        "case_key": case_key(case),
        "case_label": case_label(case),
        "kernel": case.get("kernel"),
        "family": family(case.get("kernel")),
        "dtype": case.get("dtype"),
        "status": case.get("status"),
        "method_version": case.get("method_version", base["method_version"]),
        "clock_hz": case_clock(case)[0],
        "throttled": _throttled(case),
        "health_failed": None if verdict is None else verdict == "FAIL",
    }
    for name in (
        "time_median_s",
        "achieved_ops_per_s",
        "ops_per_j",
        "busbw_bytes_per_s",
        "cpu_pressure",
        "rel_iqr",
    ):
        row[name] = case.get(name)
    return row


def flatten(data: Any, prefix: str = "") -> dict[str, str | None]:
    """A nested dict as dotted string keys, values as strings (None stays None)."""
    import json

    out: dict[str, str | None] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    key = prefix[:-1]
    if data is None:
        out[key] = None
    elif isinstance(data, str):
        out[key] = data
    else:
        out[key] = json.dumps(data, sort_keys=True, default=str)
    return out


def table_frame(rows: list[dict[str, Any]], columns: tuple[str, ...], table: str) -> Any:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype(pandas_dtypes(table))


def flopwatt_version_of(meta: dict[str, Any]) -> str | None:
    env = meta.get("environment") or {}
    version = meta.get("flopwatt_version") or (env.get("software") or {}).get("flopwatt")
    if version:
        return str(version)
    git = env.get("git") or {}
    if git.get("sha"):  # the commit is the version of a checkout
        return f"git {str(git['sha'])[:12]}{'+dirty' if git.get('dirty') else ''}"
    return None


def run_tables(
    run: Run, testbed: Testbed | None = None, previous_testbed: str | None = None
) -> RunTables:
    """The three tables of a loaded run; `testbed` defaults to the one run.json names."""
    meta = run.meta
    testbed = testbed or testbed_of(meta)
    run_id = str(meta.get("run_id") or run.path.name)
    started = _started_at(meta, run.path)
    cases = case_dicts(run)
    method = meta.get("method_version")
    runs = {
        "run_id": run_id,
        "testbed": testbed.id,
        "previous_testbed": previous_testbed,
        "host": testbed.host,
        "sku": testbed.sku,
        "gpu_uuid": testbed.gpu_uuid,
        "gpu_serial": testbed.gpu_serial,
        "gpu_bdf": testbed.gpu_bdf,
        "started_at": started,
        "suite": meta.get("suite"),
        "schema_version": meta.get("schema_version"),
        "method_version": method,
        "flopwatt_version": flopwatt_version_of(meta),
        "synthetic": bool(meta.get("synthetic")),
        "health_failed": _health_failed(run, cases),
    }
    base = {"run_id": run_id, "testbed": testbed.id, "started_at": started}
    base["method_version"] = method
    env = flatten(meta.get("environment") or {})
    return RunTables(
        runs=table_frame([runs], RUN_COLUMNS, "runs"),
        cases=table_frame([_case_row(c, base) for c in cases], CASE_COLUMNS, "cases"),
        environment=table_frame(
            [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(env.items())],
            ENVIRONMENT_COLUMNS,
            "environment",
        ),
    )
