"""DataFrame views of loaded runs: plain case dicts, case keys, labels, the device pivot.

`load_run` flattens the parts and nested fields to dotted columns (`timing.time_median_s`,
`identity.params.m`, `work.kernel_details.sdpa_backend`) and pandas turns JSON nulls into NaN
and ints into floats in mixed columns. Everything downstream (compare, plots, tables) reads
cases through `case_dicts`, which undoes all three: a case dict is keyed by leaf names (unique
across parts, see record.PART_OF), `params` is a dict, and a field is either a real value or
None, and 256.0 is 256 again.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.results.record import PARTS, Run

# Params that do not change the work a case does: the input seed (any draw of the same
# distribution) and the display label (derived from the others). `init` stays in the key:
# zeros and randn inputs draw different power and clocks.
IGNORED_PARAMS = frozenset({"seed", "shape_label"})


def known(value: Any) -> bool:
    """Neither None nor NaN (pandas turns JSON nulls into NaN)."""
    if value is None:
        return False
    try:
        return not math.isnan(value)
    except TypeError:
        return True


def _clean(value: Any) -> Any:
    if not known(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()  # numpy scalar -> Python
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def case_dicts(run: Run) -> list[dict[str, Any]]:
    """One dict per case by leaf name: `timing.time_median_s` -> "time_median_s",
    `identity.params.x` -> params["x"], NaN -> None, integral floats -> int."""
    out = []
    for record in run.cases.to_dict(orient="records"):
        case: dict[str, Any] = {"params": {}}
        for dotted, value in record.items():
            part, _, leaf = dotted.partition(".")
            column = leaf if part in PARTS and leaf else dotted
            if column.startswith("params."):
                if known(value) or isinstance(value, list | dict):
                    case["params"][column[len("params.") :]] = _clean(value)
            elif isinstance(value, list | dict):
                case[column] = value
            else:
                case[column] = _clean(value)
        unflattened = record.get("identity.params")
        if isinstance(unflattened, dict):  # an unflattened params column
            case["params"] = {**unflattened, **case["params"]}
        out.append(case)
    return out


def device_kind(device: str | None) -> str:
    """Device kind of a label ("cuda:3" -> "cuda"): the index is a slot, not a kind of work."""
    return (device or "unknown").split(":")[0]


def case_key(case: dict[str, Any]) -> str:
    """What makes two cases of two runs the same measurement.

    (kernel, dtype, device kind, world size, rank, params without IGNORED_PARAMS), as one
    canonical JSON string. The case_id is not part of it: its index prefix depends on what
    else the run selected.
    """
    params = {k: v for k, v in case.get("params", {}).items() if k not in IGNORED_PARAMS}
    key = {
        "kernel": case.get("kernel"),
        "dtype": case.get("dtype"),
        "device": device_kind(case.get("device")),
        "world_size": case.get("world_size") or 1,
        "rank": case.get("rank"),
        "params": params,
    }
    return json.dumps(key, sort_keys=True, default=str)


def case_label(case: dict[str, Any]) -> str:
    """A readable name, e.g. "matmul 1024x1024x1024 fp32" (plus the rank of a per-rank line)."""
    params = case.get("params", {})
    shape = params.get("shape_label") or ",".join(
        f"{k}={v}" for k, v in params.items() if k not in IGNORED_PARAMS
    )
    label = f"{case.get('kernel')} {shape} {case.get('dtype')}"
    if (case.get("world_size") or 1) > 1:
        label += f" n={case['world_size']}"
    if case.get("rank") is not None:
        label += f" rank {case['rank']}"
    return label


def device_name(meta: dict[str, Any]) -> str:
    """A human name of the run's device: the GPU name, or the CPU model."""
    identity = (meta.get("device_facts") or {}).get("identity") or {}
    return identity.get("name") or identity.get("model") or meta.get("device") or "unknown"


def run_label(run: Run) -> str:
    """Device first, then the run id: the column name of the device pivot."""
    return f"{device_name(run.meta)} ({run.meta.get('run_id') or run.path.name})"


def column(case: dict[str, Any], *names: str) -> Any:
    """The first known value among several field names (older and newer schemas)."""
    for name in names:
        value = case.get(name)
        if known(value):
            return value
    return None


def device_pivot(runs: list[Run], value: str = "achieved_ops_per_s") -> Any:
    """Cases as rows, runs as columns (one per device): the vendor-comparison table."""
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        label = run_label(run)
        for case in case_dicts(run):
            if case.get("status") != "ok":
                continue
            rows.setdefault(case_label(case), {})[label] = case.get(value)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.reindex(columns=[run_label(r) for r in runs])
