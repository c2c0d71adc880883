"""Verdicts that need more than one device: peers, the baseline, the canary, versions.

Pure functions of the DeviceRecords rank 0 collected (and of the baseline), so every verdict
can be produced from scripted numbers in a test.

- Peers: each device against the median of the *other* devices of its SKU in the job (with
  itself in the median, one slow GPU of two would look only half as slow). WARN beyond
  `peer_warn` below it, FAIL beyond `peer_fail`.
- Baseline: each device against the blessed health run of its SKU, with a noise model
  (bench.commands.health.noise): each side is the median of its quiet short repeats and their spread
  (the baseline's pooled over the devices it measured); FAIL under `baseline_min` x the
  baseline's median and beyond `noise_z` spreads, INCONCLUSIVE when the machine was busy or
  the drop is within the noise. A collective is one number (its busbw) on each side.
- Canary: devices with identical versions (bench.commands.health.probe.library_versions) must give
  bit-identical bytes. The majority (more than half) is the reference; a device that
  differs from it FAILs; with no majority every disagreeing device FAILs (with two devices
  that disagree nobody can tell which is wrong). The baseline's digest for identical
  versions is a second reference.
- Versions: driver, CUDA driver and libraries differing from the majority FAIL (numbers and
  canary bytes of such a device are not comparable with its peers); a VBIOS differing within
  one SKU WARNs.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.commands.health.model import FAIL, JOB, NA, PASS, WARN, Check, DeviceRecord, Thresholds
from bench.commands.health.noise import RateStats, Repeat, judge, summarize
from bench.results.render import si

# name of the row, kernel of the case, unit
RATES = (("matmul", "matmul", "FLOP/s"), ("copy bandwidth", "memcopy", "B/s"))


@dataclass(frozen=True)
class BaselineRef:
    """What a blessed health run of one SKU says a healthy device reaches."""

    path: str
    rates: dict[str, RateStats]  # case signature -> its repeats' median and spread
    canaries: list[dict[str, Any]] = field(default_factory=list)  # {"versions", "sha256"}


def signature(case: dict[str, Any]) -> str:
    """Which baseline case a case is compared with: kernel, dtype, shape (and ranks, for a
    collective, whose rate depends on them)."""
    params = case.get("params") or {}
    text = f"{case.get('kernel')} {case.get('dtype')} {params.get('shape_label')}"
    if case.get("kernel") == "allreduce":
        text += f" n={case.get('world_size')}"
    return text


def repeats(case: dict[str, Any] | None) -> list[Repeat]:
    """The rates of a case's short repeats (ops or bytes per second at each repeat's median
    time), with the CPU pressure of each; a case timed once is one repeat, a collective its
    busbw. Empty if it did not run."""
    if case is None or case.get("status") != "ok":
        return []
    if case.get("kernel") == "allreduce":
        busbw = case.get("busbw_bytes_per_s")
        return [Repeat(busbw, case.get("cpu_pressure"))] if busbw else []
    work = case.get("ops") or case.get("bytes")
    timed = case.get("repeats") or [case]
    return [
        Repeat(work / t["time_median_s"], t.get("cpu_pressure"))
        for t in timed
        if work and t.get("time_median_s")
    ]


def stats(case: dict[str, Any] | None) -> RateStats | None:
    return summarize(repeats(case))


def rate(case: dict[str, Any] | None) -> float | None:
    """A case's reading: the median rate of its quiet repeats; None if it did not run."""
    s = stats(case)
    return s.median if s is not None else None


def _row(
    r: DeviceRecord, name: str, value: Any, expected: str, verdict: str, reason: str, unit: str = ""
) -> Check:
    return Check(r.device, name, value, expected, verdict, reason, unit, r.rank)


def peer_rows(records: list[DeviceRecord], t: Thresholds) -> list[Check]:
    rows = []
    for name, kernel, unit in RATES:
        values = {id(r): rate(r.case(kernel)) for r in records}
        for r in records:
            row_name = f"{name} vs peers"
            mine = values[id(r)]
            peers = [values[id(p)] for p in records if p is not r and p.sku == r.sku]
            peers = [v for v in peers if v is not None]
            expected = f">= {1 - t.peer_warn:.0%} of the peer median"
            if mine is None:
                rows.append(_row(r, row_name, None, expected, NA, f"no {name} was measured"))
                continue
            if not peers:
                why = f"no other {r.sku} in this job measured a {name}"
                rows.append(_row(r, row_name, mine, expected, NA, why, unit))
                continue
            median = statistics.median(peers)
            below = 1 - mine / median
            expected = f">= {1 - t.peer_warn:.0%} of {si(median, unit)} (median of {len(peers)})"
            how = f"{below:.1%} below" if below > 0 else f"{-below:.1%} above"
            verdict = FAIL if below > t.peer_fail else WARN if below > t.peer_warn else PASS
            rows.append(_row(r, row_name, mine, expected, verdict, f"{how} its peers", unit))
    return rows


def baseline_rows(
    records: list[DeviceRecord], refs: dict[str, BaselineRef | str], t: Thresholds
) -> list[Check]:
    rows = []
    for r in records:
        ref = refs.get(r.sku, f"no baseline looked up for {r.sku}")
        for name, kernel, unit in RATES:
            case = r.case(kernel)
            rows.append(_vs_baseline(r, f"{name} vs baseline", case, ref, t, unit))
    return rows


def _vs_baseline(
    r: DeviceRecord | None,
    name: str,
    case: dict[str, Any] | None,
    ref: BaselineRef | str,
    t: Thresholds,
    unit: str,
) -> Check:
    device, rank = (r.device, r.rank) if r is not None else (JOB, None)
    mine = stats(case)
    if mine is None or case is None:
        return Check(device, name, None, "", NA, "not measured", unit, rank)
    if isinstance(ref, str):
        return Check(device, name, mine.median, "", NA, ref, unit, rank)
    base = ref.rates.get(signature(case))
    if base is None:
        why = f"the baseline {ref.path} has no {signature(case)} case"
        return Check(device, name, mine.median, "", NA, why, unit, rank)
    floor = t.baseline_min * base.median
    expected = (
        f">= {si(floor, unit)} ({t.baseline_min:g} x the baseline's {si(base.median, unit)}, "
        f"{base.describe()}), beyond the noise"
    )
    verdict = judge(base, mine, t.baseline_min, t.noise_z, t.spread_floor)
    reason = f"{verdict.reason}; this run: {mine.describe()}"
    if verdict.verdict == FAIL:
        reason += f" ({ref.path})"
    return Check(device, name, mine.median, expected, verdict.verdict, reason, unit, rank)


# What must be identical for two devices' canary bytes to be comparable (the rest of
# DeviceRecord.versions, VBIOS included, does not change which kernel computes them).
CANARY_KEYS = (
    "torch",
    "cuda",
    "hip",
    "cublas",
    "driver",
    "device",
    "compute_capability",
    "sm_count",
    "threads",
)


def canary_versions(versions: dict[str, Any]) -> dict[str, Any]:
    return {key: versions.get(key) for key in CANARY_KEYS}


def _versions_key(versions: dict[str, Any]) -> str:
    return json.dumps(canary_versions(versions), sort_keys=True, default=str)


def _majority(values: list[Any]) -> Any:
    """The value more than half hold, or None."""
    if not values:
        return None
    value, n = Counter(values).most_common(1)[0]
    return value if 2 * n > len(values) else None


def canary_rows(records: list[DeviceRecord], refs: dict[str, BaselineRef | str]) -> list[Check]:
    rows = []
    groups: dict[str, list[DeviceRecord]] = {}
    for r in records:
        if r.canary.get("sha256"):
            groups.setdefault(_versions_key(r.versions), []).append(r)
    expected = "bit-identical with peers of identical versions"
    for r in records:
        mine = r.canary.get("sha256")
        if not mine:
            reason = r.canary.get("reason") or "no canary"
            rows.append(_row(r, "canary vs peers", None, expected, NA, reason))
            rows.append(_row(r, "canary vs baseline", None, "", NA, reason))
            continue
        group = groups[_versions_key(r.versions)]
        rows.append(_canary_peers(r, group, expected))
        rows.append(_canary_golden(r, refs.get(r.sku, "no baseline")))
    return rows


def _canary_peers(r: DeviceRecord, group: list[DeviceRecord], expected: str) -> Check:
    mine = r.canary["sha256"]
    name = "canary vs peers"
    if len(group) == 1:
        why = "no other device with identical device and library versions in this job"
        return _row(r, name, mine[:16], expected, NA, why)
    hashes = [p.canary["sha256"] for p in group]
    agree = hashes.count(mine) - 1
    majority = _majority(hashes)
    if majority is None and len(set(hashes)) > 1:
        reason = (
            f"{len(set(hashes))} different results among {len(group)} devices and no majority: "
            "silent data corruption on one of them, which one cannot be told"
        )
        return _row(r, name, mine[:16], expected, FAIL, reason)
    if mine != majority:
        reason = (
            f"differs from {len(group) - 1 - agree} of {len(group) - 1} peers on identical "
            "inputs and versions: silent data corruption suspect, take it out of service"
        )
        return _row(r, name, mine[:16], expected, FAIL, reason)
    peers = f"{agree} peer" + ("s" if agree != 1 else "")
    return _row(r, name, mine[:16], expected, PASS, f"bit-identical with {peers}")


def _canary_golden(r: DeviceRecord, ref: BaselineRef | str) -> Check:
    name, expected = "canary vs baseline", "the baseline's bytes for identical versions"
    mine = r.canary["sha256"]
    if isinstance(ref, str):
        return _row(r, name, mine[:16], expected, NA, ref)
    mine_key = _versions_key(r.versions)
    golden = next(
        (c["sha256"] for c in ref.canaries if _versions_key(c["versions"]) == mine_key), None
    )
    if not ref.canaries:
        return _row(r, name, mine[:16], expected, NA, f"the baseline {ref.path} has no canary")
    if golden is None:
        why = "the baseline was measured with other versions: bless a new health run"
        return _row(r, name, mine[:16], expected, NA, why)
    if golden != mine:
        reason = f"differs from the baseline's result for identical versions ({ref.path})"
        return _row(r, name, mine[:16], expected, FAIL, reason)
    return _row(r, name, mine[:16], expected, PASS, "bit-identical with the baseline")


def _libraries(versions: dict[str, Any]) -> str:
    keys = ("torch", "cuda", "hip", "cublas")
    return " ".join(f"{k} {versions[k]}" for k in keys if versions.get(k))


# (row name, how to read it from the versions, verdict on a mismatch, compared within a SKU)
VERSION_FIELDS: tuple[tuple[str, Callable[[dict[str, Any]], Any], str, bool], ...] = (
    ("driver version", lambda v: v.get("driver"), FAIL, False),
    ("cuda driver version", lambda v: v.get("cuda_driver"), FAIL, False),
    ("libraries", _libraries, FAIL, False),
    ("vbios version", lambda v: v.get("vbios"), WARN, True),
)


def version_rows(records: list[DeviceRecord]) -> list[Check]:
    rows = []
    for name, read, verdict_if_odd, by_sku in VERSION_FIELDS:
        for r in records:
            mine = read(r.versions)
            if mine is None:
                why = r.versions.get("nvml_reason") or "not known on this device"
                rows.append(_row(r, name, None, "same on every device", NA, why))
                continue
            peers = [p for p in records if not by_sku or p.sku == r.sku]
            values = [read(p.versions) for p in peers if read(p.versions) is not None]
            majority = _majority(values)
            if len(values) == 1:
                rows.append(_row(r, name, mine, "same on every device", PASS, "the only device"))
            elif mine == majority:
                why = f"same as {values.count(mine) - 1} of {len(values) - 1} other devices"
                rows.append(_row(r, name, mine, f"{majority}", PASS, why))
            else:
                expected = str(majority) if majority is not None else "same on every device"
                others = len(values) - values.count(mine)
                why = f"differs from {others} of {len(values) - 1} other devices"
                rows.append(_row(r, name, mine, expected, verdict_if_odd, why))
    return rows


def allreduce_rows(
    case: dict[str, Any] | None,
    world: int,
    skip: str | None,
    ref: BaselineRef | str,
    t: Thresholds,
) -> list[Check]:
    """The job's allreduce: exact result (#wrong 0), and busbw against the baseline."""
    name = "allreduce result"
    if world == 1:
        why = "one rank: no allreduce (start one rank per GPU: --nproc, or several GPUs)"
        return [Check(JOB, name, None, "#wrong = 0", NA, why)]
    if case is None:
        return [Check(JOB, name, None, "#wrong = 0", NA, skip or "not run")]
    wrong = case.get("wrong_elements")
    if case.get("status") != "ok":
        verdict = NA if case.get("status") == "skipped" else FAIL
        return [Check(JOB, name, wrong, "#wrong = 0", verdict, str(case.get("reason")))]
    rows = [Check(JOB, name, wrong, "#wrong = 0", PASS, f"exact over {world} ranks")]
    rows.append(_vs_baseline(None, "allreduce busbw vs baseline", case, ref, t, "B/s"))
    return rows
