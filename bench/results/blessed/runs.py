"""Blessed baselines: results/baselines/<sku>/<suite>/ holds one run a nightly compares with.

A nightly must compare with a reference measured on the same kind of device, not with "the
last run on whatever machine" (pytest-benchmark #276), so a baseline is filed under the SKU
of the device it ran on (blessed.paths.sku_key: the peak table's SKU, so every H100 SXM
lands in one folder whatever its driver calls it). Under the SKU, one folder per suite: a
nightly that runs `quick` and `matmul` keeps two baselines side by side.

A blessed baseline is an ordinary run folder (run.json, cases.jsonl, samples/, traces/), so
load_run and compare read it like any other run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from bench.devices.base import CpuIdentity, DeviceIdentity, GpuIdentity
from bench.results.blessed.paths import sku_key, slug
from bench.results.record import leaves_of

DEFAULT_ROOT = Path("results/baselines")
COPIED = ("run.json", "cases.jsonl")
COPIED_IF_PRESENT = ("health.jsonl",)
COPIED_DIRS = ("samples", "traces")


def identity_from_meta(meta: dict[str, Any]) -> DeviceIdentity:
    """The device identity a run recorded; ValueError when the run.json does not have one."""
    data = dict((meta.get("device_facts") or {}).get("identity") or {})
    try:
        if "compute_capability" in data:
            fields = GpuIdentity.__dataclass_fields__
            return GpuIdentity(**{k: v for k, v in data.items() if k in fields})
        data["flags"] = frozenset(data.get("flags") or ())
        fields = CpuIdentity.__dataclass_fields__
        return CpuIdentity(**{k: v for k, v in data.items() if k in fields})
    except TypeError as exc:
        raise ValueError(f"run.json has no usable device identity ({exc})") from None


def run_sku(meta: dict[str, Any]) -> str:
    """The baseline folder name of the run's device."""
    return sku_key(identity_from_meta(meta))


def baseline_dir(meta: dict[str, Any], root: Path = DEFAULT_ROOT) -> Path:
    """Where the baseline for a run like this one lives: root/<sku>/<suite>."""
    return root / run_sku(meta) / slug(str(meta.get("suite") or "custom"))


def bless(
    run_dir: Path,
    meta: dict[str, Any],
    root: Path = DEFAULT_ROOT,
    leave_out: frozenset[str] = frozenset(),
) -> Path:
    """Copy the run's record (not its rendered views) into its baseline folder, replacing
    the previous baseline only once the copy is complete. `leave_out` names cases not to
    copy (measured on a GPU that failed its health check)."""
    target = baseline_dir(meta, root)
    staging = target.with_name(target.name + ".blessing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in COPIED + tuple(n for n in COPIED_IF_PRESENT if (run_dir / n).is_file()):
        shutil.copy2(run_dir / name, staging / name)
    if leave_out:
        lines = (run_dir / "cases.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _case_id(line) not in leave_out]
        (staging / "cases.jsonl").write_text("".join(kept), encoding="utf-8")

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n.rsplit(".", 1)[0] in leave_out]

    for name in COPIED_DIRS:
        if (run_dir / name).is_dir():
            shutil.copytree(run_dir / name, staging / name, ignore=ignore)
    previous = target.with_name(target.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    staging.rename(target)
    shutil.rmtree(previous, ignore_errors=True)
    return target


def _case_id(line: str) -> str | None:
    try:
        return leaves_of(json.loads(line)).get("case_id")
    except (ValueError, AttributeError):
        return None  # a line a crash truncated: copied as it is, the reader skips it


def find(meta: dict[str, Any], root: Path = DEFAULT_ROOT) -> Path:
    """The blessed baseline for a run's SKU and suite; ValueError saying where it looked."""
    target = baseline_dir(meta, root)
    if not (target / "run.json").is_file():
        raise ValueError(
            f"no baseline for this device and suite at {target}; "
            "bless one with `flopwatt baseline bless RUN_DIR`"
        )
    return target
