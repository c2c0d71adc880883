"""The GPU check's figures, each beside its floor or anchor: pure functions of the files the
check's steps wrote, so that they are tested on CPU with numbers.

Floors are fractions of the datasheet row the device matched (bench/peaks/peaks.csv), so the same
rules hold on an H100 SXM and an H200; the absolute anchors are printed for an H200 SXM. A
figure is PASS or FAIL against its floor, INFO when it is printed beside an anchor only, and
MISSING (None, with the reason) when its step wrote nothing to read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bench.commands.plausibility import MATMUL_DTYPES, bf16_floors, supported_dtypes
from bench.devices.base import GpuIdentity
from bench.peaks.table import PeakRow
from bench.results.render import si

PASS, FAIL, INFO, MISSING = "PASS", "FAIL", "INFO", "MISSING"

BF16_CEILING_FLOOR = 0.75  # of the dense bf16 spec
BF16_ANCHOR = "plain torch 8192^3: 788 TFLOP/s on an H200 SXM; MAMF full sweep, H100 SXM: 794.5"
TIMER_TOLERANCE = 0.03  # flopwatt's bf16 8192^3 time against triton's do_bench
FLASH_FWD_FLOOR = 0.28  # of the dense bf16 spec
FLASH_ANCHOR = "287-304 TFLOP/s on an H100 SXM (pytorch/benchmark, D 128, another shape)"
COPY_FLOOR = 0.85  # of the spec memory bandwidth
# AMD: one study saw MI300X's HBM reach about 81% of its 5.3 TB/s; an estimate below it.
COPY_FLOOR_AMD = 0.75
COPY_ANCHOR = "4.3 TB/s seen on an H200 (spec 4.8 TB/s)"
ENERGY_TOLERANCE = 0.03  # counter against the power integral: one sensor, two readings
SAMPLER_BUDGET = 1.01  # per-call time with the 20 Hz sampler / without
ANCHOR_SHAPE = "8192x8192x8192"
UNVERIFIED = (
    "One GPU: NCCL ran with world size 1 only. Multi-rank NCCL, busbw and scaling on GPUs "
    "remain unverified until a multi-GPU machine runs them."
)


@dataclass(frozen=True)
class Figure:
    """One figure of the check: its value, the floor or anchor it is read against, the
    verdict, and where the value came from (or why there is none)."""

    name: str
    value: float | str | None
    unit: str
    floor: str
    verdict: str
    source: str
    anchor: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def shown(self) -> str:
        if self.value is None:
            return "None"
        if isinstance(self.value, str):
            return self.value
        if self.unit in ("", "x"):
            return f"{self.value:.4f}"
        return si(self.value, self.unit)


def known(value: Any) -> bool:
    """A number that is neither None nor NaN (pandas turns JSON nulls into NaN)."""
    return isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value))


def missing(name: str, unit: str, floor: str, why: str, anchor: str | None = None) -> Figure:
    return Figure(name, None, unit, floor, MISSING, why, anchor)


def at_least(value: float | None, floor: float) -> str:
    return PASS if known(value) and value >= floor else FAIL


def within(ratio: float | None, tolerance: float) -> str:
    return PASS if known(ratio) and abs(ratio - 1.0) <= tolerance else FAIL


def _spec(row: PeakRow | None, mode: str) -> float | None:
    return row.ops_per_s.get(mode) if row is not None else None


def _fraction_floor(frac: float, spec: float | None, what: str, unit: str) -> str:
    if spec is None:
        return f">= {frac:g} x {what} (no datasheet row: floor unknown)"
    return f">= {frac:g} x {si(spec, unit)} ({what}) = {si(frac * spec, unit)}"


# ------------------------------------------------------------------------------------------
# ceiling.json (a dict as bench.results.blessed.ceiling writes it)


def ceiling_figures(
    ceiling: Mapping[str, Any] | None, row: PeakRow | None, why: str
) -> list[Figure]:
    """bf16's best median against 0.75 of spec, MAMF's statistic beside it, the copy
    bandwidth against 0.85 of the spec memory bandwidth."""
    spec = _spec(row, "bf16")
    fraction = bf16_floors(row.vendor)[0] if row is not None else BF16_CEILING_FLOOR
    floor = _fraction_floor(fraction, spec, "dense bf16 spec", "FLOP/s")
    mem_spec = row.mem_bytes_per_s if row is not None else None
    amd = row is not None and row.vendor.casefold() == "amd"
    copy_fraction = COPY_FLOOR_AMD if amd else COPY_FLOOR
    copy_floor = _fraction_floor(copy_fraction, mem_spec, "spec memory bandwidth", "B/s")
    name = "bf16 ceiling (best median, quick search)"
    mamf = "bf16 MAMF statistic (max over shapes of the mean)"
    copy = "device copy bandwidth (read + write counted)"
    if ceiling is None:
        return [
            missing(name, "FLOP/s", floor, why, BF16_ANCHOR),
            missing(mamf, "FLOP/s", "printed beside the median", why),
            missing(copy, "B/s", copy_floor, why, COPY_ANCHOR),
        ]
    found = []
    bf16 = (ceiling.get("matmul") or {}).get("bf16")
    if bf16 is None:
        reason = (ceiling.get("skipped") or {}).get("bf16", "bf16 not in ceiling.json")
        found += [missing(name, "FLOP/s", floor, reason, BF16_ANCHOR)]
        found += [missing(mamf, "FLOP/s", "printed beside the median", reason)]
    else:
        median = bf16["ops_per_s"]
        verdict = at_least(median, fraction * spec) if spec else INFO
        note = f"shape {bf16['shape']}, {bf16['n_shapes']} shapes, {bf16['search_s']:.0f} s"
        if bf16.get("interrupted"):
            verdict, note = FAIL, note + ", search interrupted"
        found.append(
            Figure(name, median, "FLOP/s", floor, verdict, "ceiling.json", BF16_ANCHOR, note)
        )
        means = [p["mean_ops_per_s"] for p in bf16.get("points") or []]
        best_mean = max(means) if means else None
        found.append(
            Figure(
                mamf,
                best_mean,
                "FLOP/s",
                f"printed beside flopwatt's median {si(median, 'FLOP/s')}",
                INFO if best_mean is not None else MISSING,
                "ceiling.json points",
                "MAMF full sweep, H100 SXM: 794.5 TFLOP/s",
            )
        )
    found.append(_copy_figure(ceiling.get("memory"), mem_spec, copy, copy_floor, copy_fraction))
    return found


def _copy_figure(
    memory: Mapping[str, Any] | None,
    spec: float | None,
    name: str,
    floor: str,
    fraction: float = COPY_FLOOR,
) -> Figure:
    kernel = (memory or {}).get("kernels", {}).get("copy")
    if kernel is None:
        return missing(name, "B/s", floor, "the ceiling measured no memory copy", COPY_ANCHOR)
    rate = kernel["bytes_per_s"]
    verdict = at_least(rate, fraction * spec) if spec else INFO
    if spec and rate > spec:
        verdict = FAIL  # above the datasheet: the byte count or the timer is wrong
    return Figure(
        name,
        rate,
        "B/s",
        floor,
        verdict,
        "ceiling.json memory.copy",
        COPY_ANCHOR,
        kernel["convention"],
    )


# ------------------------------------------------------------------------------------------
# run folders (cases as dicts, one per case, as bench.results.record writes them)


def _case(cases: Iterable[Mapping[str, Any]], **match: Any) -> Mapping[str, Any] | None:
    for case in cases:
        if all(_field(case, k) == v for k, v in match.items()):
            return case
    return None


def _field(case: Mapping[str, Any], key: str) -> Any:
    """case["params"]["shape_label"] for "params.shape_label"; flat keys as they are."""
    if key in case:
        return case[key]
    head, _, tail = key.partition(".")
    inner = case.get(head)
    return inner.get(tail) if isinstance(inner, Mapping) and tail else None


def matmul_figures(
    cases: list[Mapping[str, Any]] | None,
    compute_capability: str | None,
    why: str,
    identity: Mapping[str, Any] | None = None,
) -> list[Figure]:
    """Each supported dtype at 8192^3: status ok and at most its peak; bf16 also >= 0.5 (0.4
    on AMD, bench.commands.plausibility.bf16_floors). An unknown compute capability (no run
    said) requires every dtype; an AMD GPU's `identity` chooses by its capability table."""
    gpu = _gpu(identity)
    supported = supported_dtypes(compute_capability, gpu) if compute_capability else MATMUL_DTYPES
    bf16_floor = bf16_floors(gpu.vendor if gpu else None)[1]
    found = []
    for dtype in MATMUL_DTYPES:
        name = f"matmul {dtype} {ANCHOR_SHAPE}"
        floor = "status ok, <= 1.0 of spec"
        if dtype == "bf16":
            floor += f", >= {bf16_floor:g} of spec"
        if dtype not in supported:
            note = f"cc {compute_capability} has no {dtype} path: not required"
            found.append(Figure(name, None, "", floor, INFO, "matmul run", None, note))
            continue
        if cases is None:
            found.append(missing(name, "", floor, why))
            continue
        case = _case(cases, dtype=dtype, **{"params.shape_label": ANCHOR_SHAPE})
        if case is None:
            found.append(missing(name, "", floor, f"no {dtype} {ANCHOR_SHAPE} case in the run"))
            continue
        found.append(_matmul_figure(name, floor, case, bf16_floor))
    return found


def _gpu(identity: Mapping[str, Any] | None) -> GpuIdentity | None:
    """The GpuIdentity of a run.json identity dict, or None when it is not one."""
    if not identity or "compute_capability" not in identity:
        return None
    fields = ("vendor", "name", "compute_capability", "sm_count", "gcn_arch")
    try:
        return GpuIdentity(**{k: identity.get(k) for k in fields})
    except TypeError:
        return None


def _matmul_figure(name: str, floor: str, case: Mapping[str, Any], bf16_floor: float) -> Figure:
    frac, status = case.get("frac_of_peak"), case.get("status")
    note = (
        f"{si(case['achieved_ops_per_s'], 'OP/s')}, peak {case.get('peak_source')}"
        if status == "ok"
        else f"{status}: {case.get('reason')}"
    )
    ok = status == "ok" and known(frac) and frac <= 1.0
    if case["dtype"] == "bf16":
        ok = ok and frac >= bf16_floor
    value = frac if known(frac) else None
    return Figure(
        name, value, "x", floor, PASS if ok else FAIL, "matmul run frac_of_peak", None, note
    )


def attention_figures(
    cases: list[Mapping[str, Any]] | None, row: PeakRow | None, why: str
) -> list[Figure]:
    """Every SDPA case printed; flash forward non-causal against 0.28 of dense bf16 spec."""
    spec = _spec(row, "bf16")
    floor = _fraction_floor(FLASH_FWD_FLOOR, spec, "dense bf16 spec", "FLOP/s")
    anchor_name = "sdpa bf16 llama3-8b:8192 none fwd flash"
    if cases is None:
        return [missing(anchor_name, "FLOP/s", floor, why, FLASH_ANCHOR)]
    found = []
    for case in cases:
        label = _field(case, "params.shape_label") or ""
        parts = label.split()  # "2x32x8x8192x128 none fwd flash"
        name = f"sdpa {case['dtype']} llama3-8b:8192 {' '.join(parts[1:])}"
        is_anchor = parts[1:] == ["none", "fwd", "flash"]
        status = case.get("status")
        rate = case.get("achieved_ops_per_s") if status == "ok" else None
        ran = _field(case, "kernel_details.sdpa_backend")
        note = f"ran {ran}" if status == "ok" else f"{status}: {case.get('reason')}"
        if is_anchor:
            verdict = at_least(rate, FLASH_FWD_FLOOR * spec) if spec else INFO
            found.append(
                Figure(name, rate, "FLOP/s", floor, verdict, "attention run", FLASH_ANCHOR, note)
            )
            continue
        verdict = FAIL if status == "failed" else INFO
        found.append(Figure(name, rate, "FLOP/s", "printed", verdict, "attention run", None, note))
    if not any(f.name == anchor_name for f in found):
        found.append(missing(anchor_name, "FLOP/s", floor, "no such case in the run", FLASH_ANCHOR))
    return found


def energy_figures(
    meta: Mapping[str, Any] | None, cases: list[Mapping[str, Any]] | None, why: str
) -> list[Figure]:
    """Counter update period, counter against integral, idle W, TFLOP/s per W, TOPS/W."""
    period_name = "NVML energy counter update period"
    ratio_name = "energy counter / power integral, bf16 8192^3"
    ratio_floor = f"within {ENERGY_TOLERANCE:.0%} (a consistency check: one sensor, not accuracy)"
    per_w = ("bf16 TFLOP/s per W", "fp8 TOPS/W")
    if meta is None or cases is None:
        return [
            missing(period_name, "s", "measured, stored in run.json", why),
            missing(ratio_name, "x", ratio_floor, why),
            missing("idle power", "W", "> 0, source nvml", why),
            *(missing(n, "OP/J", "> 0, source nvml", why) for n in per_w),
        ]
    power = meta.get("power_source") or {}
    period = power.get("counter_update_period_s")
    found = [
        Figure(
            period_name,
            period,
            "s",
            "measured, stored in run.json",
            PASS if known(period) and period > 0 else FAIL,
            "run.json power_source.counter_update_period_s",
            None,
            None if known(period) else f"None: {power.get('reason') or 'not measured'}",
        )
    ]
    bf16 = _case(cases, dtype="bf16", **{"params.shape_label": ANCHOR_SHAPE})
    ratio = bf16.get("energy_counter_vs_integral") if bf16 else None
    window = (
        f"{bf16.get('window_s'):.1f} s window" if bf16 and known(bf16.get("window_s")) else None
    )
    found.append(
        Figure(
            ratio_name,
            ratio if known(ratio) else None,
            "x",
            ratio_floor,
            within(ratio, ENERGY_TOLERANCE),
            "energy run",
            None,
            window,
        )
    )
    idle = meta.get("idle") or {}
    idle_w, idle_source = idle.get("power_w"), idle.get("energy_source") or ""
    idle_ok = known(idle_w) and idle_w > 0 and idle_source.startswith("nvml")
    found.append(
        Figure(
            "idle power",
            idle_w,
            "W",
            "> 0, source nvml",
            PASS if idle_ok else FAIL,
            idle_source or "none",
            None,
            idle.get("reason"),
        )
    )
    for name, dtype in zip(per_w, ("bf16", "fp8"), strict=True):
        case = _case(cases, dtype=dtype, **{"params.shape_label": ANCHOR_SHAPE})
        if case is None:
            found.append(missing(name, "OP/J", "> 0, source nvml", f"no {dtype} case"))
            continue
        value, source = case.get("ops_per_j"), case.get("energy_source") or "none"
        ok = known(value) and value > 0 and source.startswith("nvml")
        note = (
            None
            if ok
            else f"{case.get('status')}: {case.get('energy_reason') or case.get('reason')}"
        )
        found.append(
            Figure(
                name,
                value if known(value) else None,
                "OP/J",
                "> 0, source nvml",
                PASS if ok else FAIL,
                source,
                None,
                note,
            )
        )
    return found


# ------------------------------------------------------------------------------------------
# the scripts' own JSON and the health run


def timer_figure(data: Mapping[str, Any] | None, why: str) -> Figure:
    """flopwatt's median bf16 8192^3 time over triton do_bench's, in the same process."""
    name = "bf16 8192^3 time: flopwatt / triton do_bench"
    floor = f"within {TIMER_TOLERANCE:.0%}"
    if data is None:
        return missing(name, "x", floor, why)
    ratio = data.get("ratio")
    if not known(ratio):
        return missing(name, "x", floor, f"None: {data.get('reason')}")
    return Figure(
        name,
        ratio,
        "x",
        floor,
        within(ratio, TIMER_TOLERANCE),
        "gpu_check_timers.py",
        None,
        data.get("note"),
    )


def sampler_figure(data: Mapping[str, Any] | None, why: str) -> Figure:
    name = "sampler overhead at 20 Hz, ~1 ms kernel (with / without)"
    floor = f"<= {SAMPLER_BUDGET:g}"
    if data is None:
        return missing(name, "x", floor, why)
    ratio = data.get("ratio")
    verdict = PASS if known(ratio) and ratio <= SAMPLER_BUDGET else FAIL
    note = f"{data.get('per_call_s', 0) * 1e3:.2f} ms per call, {data.get('source')}"
    return Figure(name, ratio, "x", floor, verdict, "sampler_overhead.py", None, note)


def health_figure(
    meta: Mapping[str, Any] | None, rows: list[Mapping[str, Any]] | None, why: str
) -> Figure:
    """The health verdict; FAIL only when health itself said FAIL."""
    name, floor = "flopwatt health", "not FAIL; every row with its reason"
    if meta is None or rows is None:
        return missing(name, "", floor, why)
    verdict = (meta.get("health") or {}).get("verdict") or "unknown"
    counts = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    note = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    ok = verdict not in ("FAIL", "unknown") and all(row.get("reason") for row in rows)
    return Figure(name, verdict, "", floor, PASS if ok else FAIL, "health.jsonl", None, note)


def overall(figures: list[Figure], steps: list[Mapping[str, Any]]) -> str:
    """PASS when no figure failed or is missing and every step passed (a retry included)."""
    bad_figure = any(f.verdict in (FAIL, MISSING) for f in figures)
    bad_step = any(s.get("verdict") not in ("PASS", "RETRIED-PASS") for s in steps)
    return FAIL if bad_figure or bad_step else PASS
