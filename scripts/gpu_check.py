"""Read a GPU matmul run, print its figures, and say whether they are plausible.

Used by scripts/gpu-check.sh after each `flopwatt run`. Plausible means: no case computed a
wrong result; every recorded CUDA-event interval fits inside the wall time it was taken in;
nothing exceeds its datasheet peak; bf16 8192^3 lands between 50% and 100% of the spec peak
(when the run has it); measured power is above 0 W and below 1.5 x TDP; the energy counter
and the power integral agree within 15%. It prints the figures (rates beside the published
MAMF-finder ceilings, W, TFLOP/s per W, clocks, idle power) and copies run.json and
cases.jsonl to OUT/<sku>/<label>-* for results/baselines/.

    python scripts/gpu_check.py RUN_DIR OUT_DIR [--label matmul]   # exit 0, 1 implausible, 2 bad
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.commands.plausibility import (
    bf16_floors,
    case_problems,
    known,
    open_gpu_run,
    report_problems,
    save_baseline,
)
from bench.results.render import percent, rate_unit, seconds, si

# Published MAMF-finder ceilings (stas00/ml-engineering, dense, ops/s) by peak-table SKU.
MAMF = {
    ("H100 SXM5 80GB", "bf16"): 794.5e12,
    ("Instinct MI325X", "bf16"): 784.9e12,
    ("Instinct MI355X", "bf16"): 1565e12,
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


def problems_of(
    cases: Any, tdp_w: float | None = None, need_anchor: bool = True, floor: float = 0.5
) -> list[str]:
    """Every implausibility of a matmul run: the general rules plus the bf16 8192^3 anchor,
    at least `floor` of spec (the vendor's, bench.commands.plausibility.bf16_floors)."""
    found = case_problems(cases, tdp_w)
    anchor = cases[
        (cases["identity.dtype"] == ANCHOR[0]) & (cases["identity.params.shape_label"] == ANCHOR[1])
    ]
    if anchor.empty and not need_anchor:
        return found
    if anchor.empty or anchor.iloc[0]["identity.status"] != "ok":
        found.append(f"{' '.join(ANCHOR)}: not measured")
    else:
        frac = anchor.iloc[0]["rates.frac_of_peak"]
        if not known(frac) or not floor <= frac <= 1.0:
            found.append(
                f"{' '.join(ANCHOR)}: {percent(frac) if known(frac) else 'no'} of "
                f"spec peak, outside {floor * 100:.0f}..100%"
            )
    return found


def _energy_cells(c: Any) -> str:
    """Power, rate per watt and counter/integral, or dashes when no energy was measured."""
    if "energy.avg_power_w" not in c or not known(c["energy.avg_power_w"]):
        return f"{'—':>7s} {'—':>18s} {'—':>6s}"
    per_w = si(c["energy.ops_per_j"], rate_unit(c["identity.dtype"]) + "/W")
    ratio = c.get("energy.energy_counter_vs_integral")
    ratio_text = f"{ratio:.3f}" if known(ratio) else "—"
    return f"{c['energy.avg_power_w']:6.0f}W {per_w:>18s} {ratio_text:>6s}"


def print_figures(cases: Any, sku: str | None) -> None:
    header = (
        f"{'dtype':5s} {'shape':>16s} {'time':>9s} {'rate':>14s} {'% peak':>7s} {'% ceil':>7s} "
        f"{'mode':>5s} {'noise':>7s} {'clock':>9s} {'power':>7s} {'rate/W':>18s} {'c/i':>6s}"
        "  stop"
    )
    print(header)
    for _, c in cases.iterrows():
        shape, dtype, status = (
            c["identity.params.shape_label"],
            c["identity.dtype"],
            c["identity.status"],
        )
        if status != "ok":
            print(f"{dtype:5s} {shape:>16s} {status}: {c['identity.reason']}")
            continue
        clock = si(c["timing.clock_hz_after"], "Hz") if known(c["timing.clock_hz_after"]) else "—"
        frac = percent(c["rates.frac_of_peak"]) if known(c["rates.frac_of_peak"]) else "—"
        ceil = c.get("rates.frac_of_measured_peak")  # of the ceiling measured by the check's step
        ceil = percent(ceil) if known(ceil) else "—"
        print(
            f"{dtype:5s} {shape:>16s} {seconds(c['timing.time_median_s']):>9s} "
            f"{si(c['rates.achieved_ops_per_s'], rate_unit(dtype)):>14s} {frac:>7s} {ceil:>7s} "
            f"{c['timing.timing_mode']:>5s} {percent(c['timing.rel_noise'], 2):>7s} {clock:>9s} "
            f"{_energy_cells(c)}  {c['timing.stop_reason']}"
        )
    for dtype in ("bf16", "fp8"):
        ok = cases[(cases["identity.dtype"] == dtype) & (cases["identity.status"] == "ok")]
        if ok.empty:
            continue
        best = ok.loc[ok["rates.achieved_ops_per_s"].idxmax()]
        line = (
            f"best {dtype}: {si(best['rates.achieved_ops_per_s'], 'FLOP/s')} at "
            f"{best['identity.params.shape_label']} (median)"
        )
        ref = MAMF.get((sku or "", dtype))
        if ref:
            line += (
                f"; published MAMF for {sku}: {si(ref, 'FLOP/s')} -> ratio "
                f"{best['rates.achieved_ops_per_s'] / ref:.3f}"
            )
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--label", default="matmul", help="prefix of the baseline file names")
    parser.add_argument("--no-anchor", action="store_true", help="bf16 8192^3 is not in this run")
    parser.add_argument(
        "--cases-only",
        action="store_true",
        help="copy cases.jsonl only (run.json stays in the tar)",
    )
    args = parser.parse_args()
    try:
        run, identity, row = open_gpu_run(args.run_dir)
    except ValueError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    sku = row.sku if row is not None else None
    print(f"device: {identity.name} (cc {identity.compute_capability}, {identity.sm_count} SMs)")
    power, idle = run.meta.get("power_source") or {}, run.meta.get("idle") or {}
    idle_w = idle.get("power_w")
    print(
        f"power: {power.get('name')} ({power.get('scope') or power.get('reason')}); idle "
        f"{'unknown' if idle_w is None else f'{idle_w:.1f} W'}; energy counter update period "
        f"{power.get('counter_update_period_s')} s"
    )
    print_figures(run.cases, sku)
    names = ("cases.jsonl",) if args.cases_only else ("run.json", "cases.jsonl")
    target = save_baseline(args.run_dir, args.out_dir, identity, args.label, names)
    print(f"baseline files -> {target}/{args.label}-*")
    floor = bf16_floors(identity.vendor)[1]
    tdp = row.tdp_w if row else None
    found = problems_of(run.cases, tdp, need_anchor=not args.no_anchor, floor=floor)
    if power.get("name") == "nvml" and idle_w is not None and idle_w <= 0:
        found.append(f"idle power {idle_w} W")
    return report_problems(found)


if __name__ == "__main__":
    sys.exit(main())
