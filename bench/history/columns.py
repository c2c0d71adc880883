"""The columns of the history's three tables: the contract between the store that writes
them and the checks, change points and plots that read them.

One row per run in `runs`, one per (run, case) in `cases`, one per (run, environment key) in
`environment`. Missing values are null, never 0. Times are UTC.
"""

from __future__ import annotations

# One row per run. `testbed` is host + GPU identity + SKU (bench.history.testbed);
# `previous_testbed` links a host's new testbed to the one it replaced (a GPU swap).
RUN_COLUMNS: tuple[str, ...] = (
    "run_id",  # the run folder's run_id: adding a run twice changes nothing
    "testbed",
    "previous_testbed",  # null unless a GPU on this host was swapped
    "host",
    "sku",  # as the peak table names it, or cpu-<model>
    "gpu_uuid",
    "gpu_serial",
    "gpu_bdf",
    "started_at",  # timestamp, UTC
    "suite",
    "schema_version",
    "method_version",
    "flopwatt_version",
    "synthetic",  # bool: produced through a fake at a hardware seam
    "health_failed",  # bool or null: the run's health check failed (null: none ran)
)

# One row per (run, case). The values are the case's medians, as cases.jsonl holds them.
CASE_COLUMNS: tuple[str, ...] = (
    "run_id",
    "testbed",
    "started_at",
    "case_key",  # bench.results.frame.case_key: what must match for two cases to be one
    "case_label",  # for people
    "kernel",
    "family",  # matmul | attention | collective | other: picks the verdict's floor
    "dtype",
    "status",  # ok | failed | skipped ...
    "method_version",
    "time_median_s",
    "achieved_ops_per_s",  # higher is better
    "ops_per_j",  # higher is better; null without a power source
    "busbw_bytes_per_s",  # collectives; higher is better
    "clock_hz",  # the SM clock the case ran at (compare.case_clock), null if unknown
    "cpu_pressure",
    "rel_iqr",
    "throttled",  # bool or null: throttle reasons seen in the energy window
    "health_failed",  # bool or null: the case's device, else its run, failed a health check
)

# One row per (run, key): the environment flattened to dotted keys, values as strings.
ENVIRONMENT_COLUMNS: tuple[str, ...] = ("run_id", "key", "value")

TABLES: dict[str, tuple[str, ...]] = {
    "runs": RUN_COLUMNS,
    "cases": CASE_COLUMNS,
    "environment": ENVIRONMENT_COLUMNS,
}
