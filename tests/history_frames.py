"""Generated histories as the history's tables (bench.history.columns), seeded: one run per
testbed per night, one row per case, values = level x (1 + noise x N(0, 1)) x a planted
change (a step or a drift). A frame builder only: the store writes and reads the real files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.history.columns import CASE_COLUMNS, ENVIRONMENT_COLUMNS, RUN_COLUMNS

START = pd.Timestamp("2026-01-01 02:00", tz="UTC")
LEVEL = 400e12  # FLOP/s
LEVEL_J = 600e9  # FLOP/J


@dataclass(frozen=True)
class Fleet:
    """What to generate: testbeds x cases x nights, the noise and a planted change."""

    testbeds: int = 1
    cases: int = 1
    nights: int = 60
    noise: float = 0.03
    family: str = "matmul"
    seed: int = 0
    step_night: int | None = None  # first bad night
    step: float = 0.0  # relative change from step_night on, e.g. -0.20
    drift_per_night: float = 0.0  # relative change per night from step_night on
    changed_testbeds: int | None = None  # how many testbeds get the change (None: all)
    sku: str = "H100 SXM5 80GB"


def multiplier(fleet: Fleet) -> np.ndarray:
    """The planted change per night (1.0 where none)."""
    nights = np.arange(fleet.nights)
    out = np.ones(fleet.nights)
    if fleet.step_night is not None:
        after = nights >= fleet.step_night
        out = np.where(after, 1 + fleet.step, 1.0)
        out = out * (1 + fleet.drift_per_night * np.maximum(nights - fleet.step_night + 1, 0))
    return out


def node_testbed(i: int) -> str:
    return f"node{i:04d}/GPU-{i:08x}/H100"


def cases_frame(fleet: Fleet) -> pd.DataFrame:
    """The `cases` table of the fleet: testbeds x cases x nights rows."""
    rng = np.random.default_rng(fleet.seed)
    t, c, n = fleet.testbeds, fleet.cases, fleet.nights
    shape = (t, c, n)
    changed = np.ones(t, dtype=bool)
    if fleet.changed_testbeds is not None:
        changed = np.arange(t) < fleet.changed_testbeds
    mult = np.where(changed[:, None, None], multiplier(fleet)[None, None, :], 1.0)
    rate = LEVEL * (1 + fleet.noise * rng.standard_normal(shape)) * mult
    per_j = LEVEL_J * (1 + fleet.noise * rng.standard_normal(shape)) * mult
    tb = np.repeat(np.arange(t), c * n)
    case = np.tile(np.repeat(np.arange(c), n), t)
    night = np.tile(np.arange(n), t * c)
    names = np.array([node_testbed(i) for i in range(t)], dtype=object)
    testbeds = names[tb]
    collective = fleet.family == "collective"
    frame = pd.DataFrame(
        {
            "run_id": [f"r{i:04d}-{j:04d}" for i, j in zip(tb, night, strict=True)],
            "testbed": testbeds,
            "started_at": START + pd.to_timedelta(night, unit="D"),
            "case_key": [f"{fleet.family}|bf16|case{k}" for k in case],
            "case_label": [f"{fleet.family} bf16 case{k}" for k in case],
            "kernel": fleet.family,
            "family": fleet.family,
            "dtype": "bf16",
            "status": "ok",
            "method_version": "3",
            "time_median_s": 1.0 / rate.ravel(),
            "achieved_ops_per_s": rate.ravel(),
            "ops_per_j": per_j.ravel(),
            "busbw_bytes_per_s": rate.ravel() / 1000 if collective else np.nan,
            "clock_hz": np.nan,
            "cpu_pressure": 0.01,
            "rel_iqr": 0.01,
            "throttled": pd.array([False] * (t * c * n), dtype="boolean"),
            "health_failed": pd.array([pd.NA] * (t * c * n), dtype="boolean"),
        }
    )
    return frame[list(CASE_COLUMNS)]


def runs_frame(cases: pd.DataFrame, sku: str = "H100 SXM5 80GB") -> pd.DataFrame:
    """The `runs` table matching a cases frame (one row per run)."""
    first = cases.drop_duplicates("run_id")
    runs = pd.DataFrame(
        {
            "run_id": first["run_id"].to_numpy(),
            "testbed": first["testbed"].to_numpy(),
            "previous_testbed": None,
            "host": first["testbed"].str.split("/").str[0].to_numpy(),
            "sku": sku,
            "gpu_uuid": first["testbed"].str.split("/").str[1].to_numpy(),
            "gpu_serial": None,
            "gpu_bdf": "0000:17:00.0",
            "started_at": first["started_at"].to_numpy(),
            "suite": "nightly",
            "schema_version": "2.4",
            "method_version": first["method_version"].to_numpy(),
            "flopwatt_version": "0.9.0",
            "synthetic": False,
            "health_failed": pd.array([pd.NA] * len(first), dtype="boolean"),
        }
    )
    return runs[list(RUN_COLUMNS)]


def environment_frame(runs: pd.DataFrame, changes: dict[str, dict[str, str]] | None = None):
    """A few environment keys per run; `changes` maps run_id -> {key: value} overrides."""
    rows = []
    for run_id in runs["run_id"]:
        env = {
            "nvml.driver_version": "550.54.15",
            "software.torch": "2.5.1",
            "software.torch_cuda": "12.4",
            "software.nccl": "2.21.5",
            "software.cublas": "12.4.5.8",
            "host.hostname": "n",
        }
        env.update((changes or {}).get(run_id, {}))
        rows += [(run_id, k, v) for k, v in env.items()]
    return pd.DataFrame(rows, columns=list(ENVIRONMENT_COLUMNS))


def write_history(root, cases: pd.DataFrame, runs: pd.DataFrame, environment: pd.DataFrame):
    """A real history at root, written run by run through the store (bench.history.store)."""
    from pathlib import Path

    from bench.history.store import write_run

    root = Path(root)
    case_parts = dict(tuple(cases.groupby("run_id", sort=False)))
    env_parts = dict(tuple(environment.groupby("run_id", sort=False)))
    empty_env = environment.iloc[0:0]
    for run_id, run in runs.groupby("run_id", sort=False):
        write_run(
            root, run, case_parts.get(run_id, cases.iloc[0:0]), env_parts.get(run_id, empty_env)
        )
    return root
