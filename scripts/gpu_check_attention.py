"""Read a GPU attention run, print its figures, and say whether they are plausible.

Used by scripts/gpu-check.sh after its attention step (bf16, Llama-3-8B heads at 4k and 8k,
causal and not, fwd and bwd, flash and cudnn). Plausible means: no case computed a wrong
result or crashed; every recorded CUDA-event interval fits inside its wall time; nothing
exceeds its peak; a case that asked for a backend ran that backend; and the anchor, flash
forward bf16 at 8k non-causal, lands between 28% and 100% of the dense bf16 spec peak
(PyTorch's flash backend reaches 287-304 TFLOP/s, about 30% of an H100 SXM's 989 TFLOP/s).
Skipped cases are printed with torch's reason and are not problems: a backend may be absent
on this GPU or build.

    python scripts/gpu_check_attention.py RUN_DIR OUT_DIR [--cases-only]
    # exit 0 plausible, 1 not, 2 bad input
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.commands.plausibility import (
    case_problems,
    known,
    open_gpu_run,
    report_problems,
    save_baseline,
)
from bench.results.render import percent, seconds, si

# Published SDPA flash forward figures (dense, FLOP/s), by peak-table SKU:
# pytorch/benchmark PR#2296, H100, bf16, D=128, fwd, N=1k..16k: 287-304 TFLOP/s.
PUBLISHED_FLASH_FWD = {"H100 SXM5 80GB": 295e12}
ANCHOR = ("bf16", "x8192x128 none fwd flash")
ANCHOR_BAND = (0.28, 1.0)


def problems_of(cases: Any, tdp_w: float | None = None, need_anchor: bool = True) -> list[str]:
    """Every implausibility of an attention run: the general rules, the backend that ran,
    and the flash-forward anchor."""
    found = case_problems(cases, tdp_w)
    for _, c in cases[cases["identity.status"] == "ok"].iterrows():
        name = f"{c['identity.dtype']} {c['identity.params.shape_label']}"
        ran, asked = c.get("work.kernel_details.sdpa_backend"), c["identity.params.backend"]
        if asked != "auto" and ran != asked:
            found.append(f"{name}: asked for {asked}, {ran} ran")
    anchor = cases[
        (cases["identity.dtype"] == ANCHOR[0])
        & cases["identity.params.shape_label"].str.endswith(ANCHOR[1])
    ]
    if anchor.empty:
        if need_anchor:
            found.append(f"{ANCHOR[0]} flash fwd 8k non-causal: not in this run")
        return found
    row = anchor.iloc[0]
    if row["identity.status"] == "ok":
        frac = row["rates.frac_of_peak"]
        low, high = ANCHOR_BAND
        if known(frac) and not low <= frac <= high:
            found.append(
                f"{ANCHOR[0]} {row['identity.params.shape_label']}: {percent(frac)} of spec peak, "
                f"outside {low:.0%}..{high:.0%}"
            )
    return found


def print_figures(cases: Any, sku: str | None) -> None:
    print(f"{'dtype':5s} {'case':>34s} {'ran':>9s} {'time':>9s} {'rate':>14s} {'% peak':>7s}  stop")
    for _, c in cases.iterrows():
        label, dtype, status = (
            c["identity.params.shape_label"],
            c["identity.dtype"],
            c["identity.status"],
        )
        if status != "ok":
            print(f"{dtype:5s} {label:>34s} {status}: {c['identity.reason']}")
            continue
        ran = c.get("work.kernel_details.sdpa_backend") or "?"
        frac = percent(c["rates.frac_of_peak"]) if known(c["rates.frac_of_peak"]) else "—"
        print(
            f"{dtype:5s} {label:>34s} {ran:>9s} {seconds(c['timing.time_median_s']):>9s} "
            f"{si(c['rates.achieved_ops_per_s'], 'FLOP/s'):>14s} {frac:>7s}  "
            f"{c['timing.stop_reason']}"
        )
    ok = cases[
        (cases["identity.status"] == "ok")
        & cases["identity.params.shape_label"].str.endswith(ANCHOR[1])
    ]
    ref = PUBLISHED_FLASH_FWD.get(sku or "")
    if not ok.empty:
        rate = ok.iloc[0]["rates.achieved_ops_per_s"]
        line = f"flash fwd bf16 8k non-causal: {si(rate, 'FLOP/s')}"
        if ref:
            line += f"; published SDPA flash on {sku}: ~{si(ref, 'FLOP/s')} -> {rate / ref:.2f}"
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--cases-only",
        action="store_true",
        help="copy cases.jsonl only (run.json stays in the tar)",
    )
    args = parser.parse_args()
    try:
        run, identity, row = open_gpu_run(args.run_dir)
    except ValueError as exc:
        print(f"gpu_check_attention: {exc}", file=sys.stderr)
        return 2
    sku = row.sku if row is not None else None
    print(f"device: {identity.name} (cc {identity.compute_capability})")
    print_figures(run.cases, sku)
    names = ("cases.jsonl",) if args.cases_only else ("run.json", "cases.jsonl")
    target = save_baseline(args.run_dir, args.out_dir, identity, "attention", names)
    print(f"baseline files -> {target}/attention-*")
    found = problems_of(run.cases, row.tdp_w if row else None)
    return report_problems(found)


if __name__ == "__main__":
    sys.exit(main())
