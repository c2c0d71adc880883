"""Rules that say whether a run's figures can be true, whatever the kernel.

A wrong result, a device timer that recorded more time than passed on the wall clock, a rate
above its peak, a board drawing no power or far above its TDP, an energy counter that
disagrees with the integrated power: each is a line of evidence that something measured
wrongly. The GPU check scripts add their kernel-specific anchors on top of these.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from bench.devices.base import GpuIdentity
from bench.devices.capabilities import capabilities_of
from bench.peaks.table import PeakRow, find_row
from bench.results.blessed.paths import sku_key
from bench.results.record import Run, load_run
from bench.results.render import percent
from kernels.matmul_spec import DTYPES as MATMUL_DTYPES

# Published allreduce bus bandwidth by peak-table SKU and rank count, for messages of at
# least min_bytes: (low, high, min_bytes, source). busbw is nccl-tests' (out-of-place).
ALLREDUCE_ANCHORS: dict[tuple[str, int], tuple[float, float, int, str]] = {
    ("Instinct MI300X", 8): (
        310e9,
        319e9,
        2**30,
        "AMD ROCm blog (MI300X RCCL/xGMI): rccl-tests all_reduce_perf, ROCm 6.3.0, RCCL 2.22.3, "
        "one process per GPU",
    ),
}
# Below this share of the anchor's low end a run is implausibly slow (about 280 GB/s for
# 8x MI300X): an estimate of run-to-run spread, not a published figure.
ALLREDUCE_FLOOR_OF_ANCHOR = 0.9
# bf16 dense matmul floors as fractions of the datasheet peak, by vendor: (the quick ceiling
# search's best, plain torch at 8192^3). AMD's Instinct parts run dense MFMA well below the
# peak engine clock by design: AMD's own max-achievable bf16 on an MI300X is 708 TFLOP/s
# (54% of spec) and MAMF's 668 (51%). The AMD floors are estimates under those figures, not
# published ones, until a run on AMD hardware calibrates them.
BF16_FLOORS = {"nvidia": (0.75, 0.5), "amd": (0.45, 0.4)}


def bf16_floors(vendor: str | None) -> tuple[float, float]:
    """(quick-ceiling floor, 8192^3 matmul floor) of a vendor; NVIDIA's when unknown."""
    return BF16_FLOORS.get((vendor or "nvidia").casefold(), BF16_FLOORS["nvidia"])


MAX_POWER_OF_TDP = 1.5
MAX_ENERGY_DISAGREEMENT = 0.15
WALL_SLACK = 1.001


def known(value: Any) -> bool:
    """Neither None nor NaN (pandas turns JSON nulls into NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def supported_dtypes(
    compute_capability: str | None, identity: GpuIdentity | None = None
) -> tuple[str, ...]:
    """Matmul dtypes an NVIDIA GPU of this compute capability must run (a skip is a bug):
    fp16 and fp32 everywhere, bf16, tf32 and int8 (_int_mm) from 8.0, fp8 (e4m3,
    _scaled_mm) from 8.9. An unreadable capability requires only fp16 and fp32. An AMD GPU
    (given as `identity`) must run fp16, fp32, bf16 and int8, and tf32 and fp8 where the
    capability table lists them for its arch."""
    if identity is not None and identity.vendor == "amd":
        caps = capabilities_of(identity)
        amd = {"fp16", "fp32", "bf16", "int8"}
        amd |= {"tf32"} if caps.tf32 else set()
        amd |= {"fp8"} if caps.fp8_format else set()
        return tuple(d for d in MATMUL_DTYPES if d in amd)
    required = {"fp16", "fp32"}
    try:
        major, minor = (int(p) for p in str(compute_capability).split("."))
    except ValueError:
        major, minor = 0, 0
    if (major, minor) >= (8, 0):
        required |= {"bf16", "tf32", "int8"}
    if (major, minor) >= (8, 9):
        required.add("fp8")
    return tuple(d for d in MATMUL_DTYPES if d in required)


def power_problems(c: Any, name: str, tdp_w: float | None) -> list[str]:
    """Implausible power figures of one ok case (none when it measured no energy)."""
    if "energy.avg_power_w" not in c or not known(c["energy.avg_power_w"]):
        return []
    found = []
    if c["energy.avg_power_w"] <= 0:
        found.append(f"{name}: {c['energy.avg_power_w']:.1f} W measured")
    if tdp_w and c["energy.avg_power_w"] > MAX_POWER_OF_TDP * tdp_w:
        found.append(
            f"{name}: {c['energy.avg_power_w']:.0f} W is above 1.5 x the {tdp_w:.0f} W TDP"
        )
    ratio = c.get("energy.energy_counter_vs_integral")
    if known(ratio) and abs(ratio - 1) > MAX_ENERGY_DISAGREEMENT:
        found.append(f"{name}: energy counter / power integral = {ratio:.2f}")
    return found


def case_problems(cases: Any, tdp_w: float | None = None) -> list[str]:
    """Every kernel-independent implausibility in a run's cases DataFrame, one line each."""
    found = []
    for _, c in cases.iterrows():
        name = f"{c['identity.kernel']} {c['identity.dtype']} {c['identity.params.shape_label']}"
        if c["identity.status"] == "failed":
            found.append(f"{name}: failed: {c['identity.reason']}")
        if c["identity.status"] != "ok":
            continue
        if c["timing.measured_time_s"] > c["timing.wall_time_s"] * WALL_SLACK:
            found.append(
                f"{name}: CUDA-event time {c['timing.measured_time_s']:.4f} s exceeds wall "
                f"time {c['timing.wall_time_s']:.4f} s"
            )
        if known(c["rates.frac_of_peak"]) and c["rates.frac_of_peak"] > 1.0:
            found.append(
                f"{name}: {percent(c['rates.frac_of_peak'])} of the {c['rates.peak_source']} peak"
            )
        found.extend(power_problems(c, name, tdp_w))
    return found


def allreduce_problems(cases: Any, sku: str | None) -> list[str]:
    """Allreduce cases of an anchored SKU and rank count whose busbw is below the floor, or
    above the anchor by more than the spread (a busbw formula or timer error)."""
    found = []
    for _, c in cases.iterrows():
        if c.get("identity.params.collective") != "allreduce" or c["identity.status"] != "ok":
            continue
        anchor = ALLREDUCE_ANCHORS.get((sku or "", int(c["identity.world_size"])))
        busbw = c.get("collective.busbw_bytes_per_s")
        if anchor is None or not known(busbw) or c["identity.params.bytes_requested"] < anchor[2]:
            continue
        low, high, _, source = anchor
        name = f"allreduce {c['identity.dtype']} {c['identity.params.shape_label']}"
        if busbw < ALLREDUCE_FLOOR_OF_ANCHOR * low:
            found.append(
                f"{name}: busbw {busbw / 1e9:.0f} GB/s, below {ALLREDUCE_FLOOR_OF_ANCHOR:.0%} of "
                f"the published {low / 1e9:.0f}-{high / 1e9:.0f} GB/s ({source})"
            )
        elif busbw > high / ALLREDUCE_FLOOR_OF_ANCHOR:
            found.append(
                f"{name}: busbw {busbw / 1e9:.0f} GB/s, above the published "
                f"{low / 1e9:.0f}-{high / 1e9:.0f} GB/s by more than the spread"
            )
    return found


def open_gpu_run(run_dir: Path) -> tuple[Run, GpuIdentity, PeakRow | None]:
    """A run that was measured on a GPU, its device and table row; ValueError otherwise."""
    run = load_run(run_dir)
    identity_data = run.meta["device_facts"]["identity"]
    if "compute_capability" not in identity_data:
        raise ValueError("this run was not on a GPU")
    identity = GpuIdentity(**identity_data)
    return run, identity, find_row(identity.name, identity.compute_capability)


def save_baseline(
    run_dir: Path,
    out_dir: Path,
    identity: GpuIdentity,
    label: str,
    names: tuple[str, ...] = ("run.json", "cases.jsonl"),
) -> Path:
    """Copy run.json and cases.jsonl (or `names`) to out_dir/<sku>/<label>-*, for baselines."""
    target = out_dir / sku_key(identity)
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(run_dir / name, target / f"{label}-{name}")
    return target


def report_problems(found: list[str]) -> int:
    """Print each implausible figure and the verdict line; the exit code the checks share."""
    for line in found:
        print(f"IMPLAUSIBLE: {line}")
    print("plausible" if not found else f"{len(found)} implausible figure(s)")
    return 1 if found else 0
