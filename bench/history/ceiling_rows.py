"""A measured ceiling (`flopwatt ceiling`) as history rows, so the ceilings have a trend too.

`ceiling` writes no run folder, only <baselines>/<sku>/ceiling.json; with `--history DIR` its
result is added as a run of suite "ceiling" whose cases are the matmul ceilings, one per
dtype: the best median rate the search found. The case key names the search preset, not the
best shape, which may differ from night to night. The memory ceilings have no column of their
own in the cases table (a bandwidth is not an op rate) and are not added.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bench.history.columns import CASE_COLUMNS, ENVIRONMENT_COLUMNS, RUN_COLUMNS
from bench.history.rows import RunTables, flatten, flopwatt_version_of, table_frame
from bench.history.testbed import Testbed, testbed_of
from bench.results.frame import case_key, device_kind
from bench.versions import SCHEMA_VERSION


def _case(ceiling: Any, dtype: str, preset: str, base: dict[str, Any]) -> dict[str, Any]:
    kind = device_kind((ceiling.device or {}).get("label"))
    key = {"kernel": "matmul", "dtype": dtype, "device": kind, "params": {"ceiling": preset}}
    found = ceiling.matmul.get(dtype)
    row = {c: None for c in CASE_COLUMNS} | base
    row.update(
        case_key=case_key(key),
        case_label=f"matmul ceiling ({preset} search) {dtype}",
        kernel="matmul",
        family="matmul",
        dtype=dtype,
        status="ok" if found is not None else "skipped",
        method_version=ceiling.method_version,
    )
    if found is not None:
        row.update(achieved_ops_per_s=found.best.median_ops_per_s, rel_iqr=None)
    return row


def ceiling_tables(ceiling: Any, run_id: str, previous_testbed: str | None = None) -> RunTables:
    """The three tables of one `flopwatt ceiling` result (bench.results.ceiling_model.Ceiling)."""
    meta = {"environment": ceiling.environment, "device_facts": {}}
    testbed: Testbed = testbed_of(meta, sku=ceiling.sku)
    started = datetime.fromisoformat(ceiling.measured_at).astimezone(timezone.utc)
    runs = {c: None for c in RUN_COLUMNS}
    runs.update(
        run_id=run_id,
        testbed=testbed.id,
        previous_testbed=previous_testbed,
        host=testbed.host,
        sku=testbed.sku,
        gpu_uuid=testbed.gpu_uuid,
        gpu_serial=testbed.gpu_serial,
        gpu_bdf=testbed.gpu_bdf,
        started_at=started,
        suite="ceiling",
        schema_version=SCHEMA_VERSION,
        method_version=ceiling.method_version,
        flopwatt_version=flopwatt_version_of(meta),
        synthetic=False,
    )
    base = {"run_id": run_id, "testbed": testbed.id, "started_at": started}
    dtypes = [*ceiling.matmul, *(d for d in ceiling.skipped if d not in ceiling.matmul)]
    presets = {d: c.preset for d, c in ceiling.matmul.items()}
    preset = next(iter(presets.values()), "quick")
    cases = [_case(ceiling, d, presets.get(d, preset), base) for d in dtypes]
    env = flatten(ceiling.environment or {})
    return RunTables(
        runs=table_frame([runs], RUN_COLUMNS, "runs"),
        cases=table_frame(cases, CASE_COLUMNS, "cases"),
        environment=table_frame(
            [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(env.items())],
            ENVIRONMENT_COLUMNS,
            "environment",
        ),
    )
