"""Print a GPU's measured ceilings beside the published MAMF figures; say if they are plausible.

Used by scripts/gpu-check.sh after `flopwatt ceiling --quick --dtype bf16,fp8`. Plausible
means: every expected dtype has a ceiling or a reason the device gave for skipping it; no
dtype failed its correctness check; the search was not interrupted; the winning shape was
re-checked against fp64; no ceiling is above its spec peak; bf16 lands between 75% and 100%
of its dense spec peak (plain torch reached 788 of 989 TFLOP/s on an H200); the copy
bandwidth (read + write counted) lands between 85% and 100% of the spec bandwidth and the
read bandwidth is not above it. It copies ceiling.json to OUT_DIR/<sku>/ for
results/baselines/<sku>/.

    python scripts/gpu_check_ceiling.py BASELINES_DIR OUT_DIR [--expect bf16,fp8]
    # exit 0 plausible, 1 implausible, 2 bad input
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path

from gpu_check import MAMF  # the published MAMF-finder table lives there, once

from bench.commands.plausibility import report_problems
from bench.results.blessed.ceiling import FILE_NAME, read_ceiling
from bench.results.ceiling_model import Ceiling
from bench.results.render import percent, rate_unit, si

BF16_BAND = (0.75, 1.0)
COPY_BAND = (0.85, 1.0)


def find_ceiling(baselines: Path) -> tuple[Ceiling, Path]:
    """The one ceiling.json under baselines/<sku>/; ValueError if none or not a GPU's."""
    paths = sorted(baselines.glob(f"*/{FILE_NAME}"))
    if len(paths) != 1:
        raise ValueError(f"expected one <sku>/{FILE_NAME} under {baselines}, found {len(paths)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reason comes back as text
        ceiling, why = read_ceiling(paths[0], paths[0].parent.name)
    if ceiling is None:
        raise ValueError(why)
    if "compute_capability" not in ceiling.device:
        raise ValueError(f"{paths[0]} was not measured on a GPU")
    return ceiling, paths[0]


def print_figures(ceiling: Ceiling) -> None:
    print(
        f"{'dtype':5s} {'ceiling':>14s} {'shape':>17s} {'% spec':>7s} {'MAMF':>14s} "
        f"{'ratio':>6s} {'shapes':>6s}  search"
    )
    for dtype, entry in ceiling.matmul.items():
        unit = rate_unit(dtype)
        ref = MAMF.get((ceiling.peak_table_sku or "", dtype))
        ratio = f"{entry.ops_per_s / ref:.3f}" if ref else "—"
        print(
            f"{dtype:5s} {si(entry.ops_per_s, unit):>14s} {entry.best.label:>17s} "
            f"{percent(entry.frac_of_spec):>7s} {si(ref, unit) if ref else '—':>14s} "
            f"{ratio:>6s} {len(entry.points):>6d}  {entry.preset} {entry.search_s:.0f} s "
            f"({entry.stop_reason})"
        )
    for dtype, why in ceiling.skipped.items():
        print(f"{dtype:5s} {why}")
    if ceiling.peak_table_sku is None:
        print("no published MAMF figure: this GPU is not in the peak table")
    memory = ceiling.memory
    if memory is None:
        print("memory: not measured")
        return
    spec = si(memory.spec_bytes_per_s, "B/s") if memory.spec_bytes_per_s else "unknown"
    for name, bw in memory.kernels.items():
        print(
            f"memory {name}: {si(bw.bytes_per_s, 'B/s')} = {percent(bw.frac_of_spec)} of {spec} "
            f"spec ({bw.buffer_bytes / 2**30:.2f} GiB buffer; {bw.convention})"
        )


def problems_of(ceiling: Ceiling, expect: tuple[str, ...]) -> list[str]:
    """Every implausibility of a GPU ceiling file, one line each."""
    found = []
    for dtype in expect:
        if dtype not in ceiling.matmul and dtype not in ceiling.skipped:
            found.append(f"{dtype}: not measured")
    for dtype, why in ceiling.skipped.items():
        if why.startswith("failed"):
            found.append(f"{dtype}: {why}")
    for dtype, entry in ceiling.matmul.items():
        frac = entry.frac_of_spec
        if entry.interrupted:
            found.append(f"{dtype}: search interrupted (the step's time limit is too short)")
        if not (entry.correctness or {}).get("ok"):
            found.append(f"{dtype}: the best shape {entry.best.label} was not re-checked")
        if frac is not None and frac > 1.0:
            found.append(f"{dtype}: ceiling {percent(frac)} of the spec peak")
        if dtype == "bf16" and (frac is None or not BF16_BAND[0] <= frac <= BF16_BAND[1]):
            low, high = BF16_BAND
            found.append(
                f"bf16: ceiling {percent(frac)} of spec peak, outside {low:.0%}..{high:.0%}"
            )
    memory = ceiling.memory
    if memory is None:
        return [*found, "memory: not measured"]
    for name, bw in memory.kernels.items():
        frac = bw.frac_of_spec
        if frac is not None and frac > 1.0:
            found.append(f"memory {name}: {percent(frac)} of the spec bandwidth")
        if name == "copy" and frac is not None and frac < COPY_BAND[0]:
            found.append(
                f"memory copy: {percent(frac)} of the spec bandwidth, under {COPY_BAND[0]:.0%}"
            )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baselines", type=Path, help="the --baselines folder of the ceiling step")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--expect", default="bf16,fp8", help="dtypes the step asked for")
    args = parser.parse_args()
    try:
        ceiling, path = find_ceiling(args.baselines)
    except ValueError as exc:
        print(f"gpu_check_ceiling: {exc}", file=sys.stderr)
        return 2
    device = ceiling.device
    print(f"device: {device.get('name')} ({ceiling.peak_table_sku or 'not in the peak table'})")
    print_figures(ceiling)
    target = args.out_dir / ceiling.sku
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, target / FILE_NAME)
    print(f"ceiling -> {target / FILE_NAME}")
    found = problems_of(ceiling, tuple(d for d in args.expect.split(",") if d))
    return report_problems(found)


if __name__ == "__main__":
    sys.exit(main())
