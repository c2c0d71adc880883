"""Read a GPU matmul run, print its figures, and say whether they are plausible.

Used by scripts/gpu-check.sh after `flopwatt run --suite matmul`. Plausible means: no case
computed a wrong result; every recorded CUDA-event interval fits inside the wall time it was
taken in; nothing exceeds its datasheet peak; bf16 8192^3 lands between 50% and 100% of the
spec peak. It also prints the best bf16 and fp8 rates beside the published MAMF-finder
ceiling for the SKU, and copies the run's summary to OUT/<sku>/ for results/baselines/.

    python scripts/gpu_check.py RUN_DIR OUT_DIR      # exit 0 plausible, 1 not, 2 bad input
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.baselines import sku_key
from bench.devices.base import GpuIdentity
from bench.peaks import find_row
from bench.record import load_run
from bench.render import percent, rate_unit, seconds, si

# Published MAMF-finder ceilings (stas00/ml-engineering, dense, ops/s) by peak-table SKU.
MAMF = {
    ("H100 SXM5 80GB", "bf16"): 794.5e12,
    ("H100 SXM5 80GB", "fp8"): 1402.6e12,
    ("H200 SXM 141GB", "fp8"): 1453.4e12,
    ("GH200 (96GB HBM3 GPU)", "bf16"): 828.6e12,
    ("A100 SXM4 40GB", "bf16"): 271.2e12,
    ("A100 SXM4 80GB", "bf16"): 271.2e12,
    ("A100 PCIe 40GB", "bf16"): 252.9e12,
    ("A100 PCIe 80GB", "bf16"): 252.9e12,
    ("B200 (HGX, 1000W)", "bf16"): 1745e12,
    ("B200 (HGX, 1000W)", "fp8"): 3432.5e12,
    ("Instinct MI300X", "bf16"): 668.4e12,
}
ANCHOR = ("bf16", "8192x8192x8192")


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def problems_of(cases: Any) -> list[str]:
    """Every implausibility in a run's cases DataFrame, one line each."""
    found = []
    for _, c in cases.iterrows():
        name = f"{c['dtype']} {c['params.shape_label']}"
        if c["status"] == "failed":
            found.append(f"{name}: failed: {c['reason']}")
        if c["status"] != "ok":
            continue
        if c["measured_time_s"] > c["wall_time_s"] * 1.001:
            found.append(
                f"{name}: CUDA-event time {c['measured_time_s']:.4f} s exceeds wall "
                f"time {c['wall_time_s']:.4f} s"
            )
        if _known(c["frac_of_peak"]) and c["frac_of_peak"] > 1.0:
            found.append(f"{name}: {percent(c['frac_of_peak'])} of the {c['peak_source']} peak")
    anchor = cases[(cases["dtype"] == ANCHOR[0]) & (cases["params.shape_label"] == ANCHOR[1])]
    if anchor.empty or anchor.iloc[0]["status"] != "ok":
        found.append(f"{' '.join(ANCHOR)}: not measured")
    else:
        frac = anchor.iloc[0]["frac_of_peak"]
        if not _known(frac) or not 0.5 <= frac <= 1.0:
            found.append(
                f"{' '.join(ANCHOR)}: {percent(frac) if _known(frac) else 'no'} of "
                "spec peak, outside 50..100%"
            )
    return found


def print_figures(cases: Any, sku: str | None) -> None:
    header = (
        f"{'dtype':5s} {'shape':>16s} {'time':>9s} {'rate':>14s} {'% peak':>7s} "
        f"{'mode':>5s} {'noise':>7s} {'clock':>9s}  stop"
    )
    print(header)
    for _, c in cases.iterrows():
        shape = c["params.shape_label"]
        if c["status"] != "ok":
            print(f"{c['dtype']:5s} {shape:>16s} {c['status']}: {c['reason']}")
            continue
        clock = si(c["clock_hz_after"], "Hz") if _known(c["clock_hz_after"]) else "—"
        frac = percent(c["frac_of_peak"]) if _known(c["frac_of_peak"]) else "—"
        print(
            f"{c['dtype']:5s} {shape:>16s} {seconds(c['time_median_s']):>9s} "
            f"{si(c['achieved_ops_per_s'], rate_unit(c['dtype'])):>14s} {frac:>7s} "
            f"{c['timing_mode']:>5s} {percent(c['rel_noise'], 2):>7s} {clock:>9s}  "
            f"{c['stop_reason']}"
        )
    for dtype in ("bf16", "fp8"):
        ok = cases[(cases["dtype"] == dtype) & (cases["status"] == "ok")]
        if ok.empty:
            continue
        best = ok.loc[ok["achieved_ops_per_s"].idxmax()]
        line = (
            f"best {dtype}: {si(best['achieved_ops_per_s'], 'FLOP/s')} at "
            f"{best['params.shape_label']} (median)"
        )
        ref = MAMF.get((sku or "", dtype))
        if ref:
            line += (
                f"; published MAMF for {sku}: {si(ref, 'FLOP/s')} -> ratio "
                f"{best['achieved_ops_per_s'] / ref:.3f}"
            )
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    try:
        run = load_run(args.run_dir)
    except ValueError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    identity_data = run.meta["device_facts"]["identity"]
    if "compute_capability" not in identity_data:
        print("gpu_check: this run was not on a GPU", file=sys.stderr)
        return 2
    identity = GpuIdentity(**identity_data)
    row = find_row(identity.name, identity.compute_capability)
    sku = row.sku if row is not None else None
    print(f"device: {identity.name} (cc {identity.compute_capability}, {identity.sm_count} SMs)")
    print_figures(run.cases, sku)
    target = args.out_dir / sku_key(identity)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("run.json", "cases.jsonl", "summary.csv"):
        shutil.copy2(args.run_dir / name, target / name)
    print(f"baseline files -> {target}")
    found = problems_of(run.cases)
    for line in found:
        print(f"IMPLAUSIBLE: {line}")
    print("plausible" if not found else f"{len(found)} implausible figure(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
