"""Who moved: the node or the software. Two pieces of evidence for one regression or change
point of one testbed:

- the environment diff between its last good and first bad run: driver, CUDA/ROCm/HIP,
  torch, BLAS, NCCL/RCCL, library environment variables and the flopwatt version (keys of
  bench.devices.environment, flattened);
- its peers: the other testbeds of the same SKU that ran the same case the same night (UTC
  date). Its percentile among them, and whether they moved against their own baselines too.
  A node that is low among peers that did not move is the node ("node"); peers that moved
  the same way by at least half the threshold point at software or the fleet
  ("software/fleet-wide"); fewer than MIN_PEERS peers with a baseline say nothing ("unknown").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

NODE, FLEET, UNKNOWN = "node", "software/fleet-wide", "unknown"
MIN_PEERS = 3  # fewer peers than this cannot tell a node from the fleet
WATCHED = (  # environment keys (or prefixes ending in ".") that change what is measured
    "nvml.driver_version",
    "nvml.cuda_driver_version",
    "nvml.vbios_version",
    "nvml.power_limit_enforced_w",
    "amdsmi.driver_version",
    "amdsmi.vbios_version",
    "amdsmi.lib_version",
    "amdsmi.power_cap_w",
    "software.",  # torch, torch_cuda, torch_hip, rocm_version, cudnn, nccl, blas_library, cublas
    "env_vars.",  # NCCL_*, RCCL_*, HIPBLASLT_*, PYTORCH_TUNABLEOP_*, ...
    "git.sha",
    "method_version",
    "flopwatt_version",
)


@dataclass(frozen=True)
class Peers:
    """The node among its same-SKU peers on the night of its first bad run."""

    verdict: str
    n: int  # peers with a value that night
    percentile: float | None  # share of peers below the node, 0..100
    node_change: float | None  # vs its own baseline
    peers_change: float | None  # median of the peers' changes vs their own baselines
    why: str


@dataclass
class Attribution:
    """The evidence for one regression or change point."""

    testbed: str
    case_key: str
    metric: str
    last_good_run: str | None
    first_bad_run: str
    environment: list[dict[str, Any]] = field(default_factory=list)
    environment_note: str = ""
    peers: Peers | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def watched(keys: Any) -> Any:
    """Which environment keys (a pandas Series) are WATCHED."""
    exact = [w for w in WATCHED if not w.endswith(".")]
    prefixes = tuple(w for w in WATCHED if w.endswith("."))
    return keys.isin(exact) | keys.str.startswith(prefixes)


def environments(env: Any) -> dict[str, dict[str, Any]]:
    """The watched keys of each run's environment rows: {run_id: {key: value}}."""
    mine = env[watched(env["key"].astype(str))]
    out: dict[str, dict[str, Any]] = {}
    for run_id, key, value in mine[["run_id", "key", "value"]].itertuples(index=False):
        out.setdefault(run_id, {})[key] = value
    return out


def environment_diff(
    envs: dict[str, dict[str, Any]], last_good: str, first_bad: str
) -> tuple[list[dict], str]:
    """The watched keys whose values differ between two runs (envs: environments()), and a
    note when a run has no environment recorded (then there is no diff, not an empty one)."""
    before, after = envs.get(last_good, {}), envs.get(first_bad, {})
    missing = [r for r, d in ((last_good, before), (first_bad, after)) if not d]
    if missing:
        return [], f"no environment recorded for {', '.join(missing)}"
    diff = [
        {"key": k, "before": before.get(k), "after": after.get(k)}
        for k in sorted(before.keys() | after.keys())
        if before.get(k) != after.get(k)
    ]
    return diff, "" if diff else "nothing watched changed between the two runs"


@dataclass(frozen=True)
class PeerTable:
    """For each row asked about, the rows of its group in the judged frame: same SKU, UTC
    night and case_key; and the columns peers() reads, as arrays (a row at a time from
    pandas is slow)."""

    groups: dict[int, np.ndarray]  # row -> the rows of its group, itself included
    testbeds: np.ndarray  # each row's testbed, as a code
    columns: dict[str, np.ndarray]


def peer_table(judged: Any, skus: dict[str, str], rows: Any) -> PeerTable:
    """Index the judged frame (bench.history.verdicts.judge) for peers() of the given rows
    (positions). Each row's group key is one integer: SKU, night and case_key codes."""
    import pandas as pd

    day = np.int64(86_400 * 10**9)
    night = judged["started_at"].to_numpy(dtype="datetime64[ns]").view(np.int64) // day
    night = night - night.min() if len(night) else night
    testbed, beds = pd.factorize(judged["testbed"], use_na_sentinel=False)
    sku = pd.factorize(np.array([skus.get(str(b), "?") for b in beds], dtype=object))[0]
    case, cases = pd.factorize(judged["case_key"], use_na_sentinel=False)
    nights = int(night.max()) + 1 if len(night) else 1
    key = (sku[testbed] * nights + night) * (len(cases) + 1) + case
    asked = np.asarray(list(rows), dtype=np.int64)
    near = np.flatnonzero(np.isin(key, key[asked]))  # the rows of the asked rows' groups
    groups = {int(r): near[key[near] == key[r]] for r in set(asked.tolist())}
    names = [f"{m}.{f}" for m in ("rate", "ops_per_j") for f in ("value", "change", "threshold")]
    return PeerTable(groups, testbed, {n: judged[n].to_numpy(dtype=float) for n in names})


def peers(table: PeerTable, row: int, metric: str) -> Peers:
    """The node of judged row `row` among the other testbeds of its SKU that night, by one
    metric ("rate" or "ops_per_j")."""
    rows = table.groups[row]
    rows = rows[table.testbeds[rows] != table.testbeds[row]]
    value, change = table.columns[f"{metric}.value"], table.columns[f"{metric}.change"]
    values, changes = value[rows], change[rows]
    values, changes = values[np.isfinite(values)], changes[np.isfinite(changes)]
    node, node_change = value[row], _finite(change[row])
    percentile = float(100 * np.mean(values < node)) if len(values) else None
    if len(changes) < MIN_PEERS or node_change is None:
        why = f"{len(changes)} same-SKU peers with a baseline that night ({MIN_PEERS} needed)"
        return Peers(UNKNOWN, len(values), percentile, node_change, _median(changes), why)
    moved = float(np.median(changes))
    half = float(table.columns[f"{metric}.threshold"][row]) / 2
    same_way = np.sign(moved) == np.sign(node_change) and abs(moved) >= half
    verdict = FLEET if same_way else NODE
    why = (
        f"peers moved {moved:+.1%} (median of {len(changes)}), the node {node_change:+.1%}; "
        f"the node sits at the {percentile:.0f}th percentile of {len(values)} peers"
    )
    return Peers(verdict, len(values), percentile, node_change, moved, why)


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if len(values) else None
