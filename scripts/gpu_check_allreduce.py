"""Read a multi-GPU allreduce run, print its bus bandwidth beside the published anchor, and
say whether it is plausible.

For a node with several GPUs (the single-GPU check runs NCCL at world size 1 only), e.g.
8x MI300X over RCCL:

    python -m bench run --kernel allreduce --nproc 8 --bytes 1Gi,4Gi --dtype bf16 --power none
    python scripts/gpu_check_allreduce.py RUN_DIR      # exit 0 plausible, 1 not, 2 bad input

Plausible means the general rules (no failed case, no wrong element) and, where the SKU and
rank count have a published figure (bench.commands.plausibility.ALLREDUCE_ANCHORS: 8x MI300X
310-319 GB/s at >= 1 GiB), busbw within the anchor's spread. The run's collective library
and its version (RCCL on ROCm) and NUMA-balancing state are printed beside the figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.commands.plausibility import (
    ALLREDUCE_ANCHORS,
    allreduce_problems,
    case_problems,
    known,
    open_gpu_run,
    report_problems,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        run, identity, row = open_gpu_run(args.run_dir)
    except (ValueError, OSError) as exc:
        print(f"gpu_check_allreduce: {exc}", file=sys.stderr)
        return 2
    env = run.meta.get("environment") or {}
    software, host = env.get("software") or {}, env.get("host") or {}
    print(
        f"device: {identity.name} x {run.meta.get('world_size')}; "
        f"{software.get('collective_library')} {software.get('nccl')}; "
        f"NUMA balancing {host.get('numa_balancing')}"
    )
    cases = run.cases
    for _, c in cases.iterrows():
        busbw = c.get("collective.busbw_bytes_per_s")
        shown = f"{busbw / 1e9:8.1f} GB/s" if known(busbw) else "       —"
        print(f"{c['identity.params.shape_label']:>28s} {c['identity.dtype']:5s} busbw {shown}")
    sku = row.sku if row is not None else None
    anchor = ALLREDUCE_ANCHORS.get((sku or "", int(run.meta.get("world_size") or 1)))
    if anchor is not None:
        print(f"anchor: {anchor[0] / 1e9:.0f}-{anchor[1] / 1e9:.0f} GB/s ({anchor[3]})")
    return report_problems(case_problems(cases) + allreduce_problems(cases, sku))


if __name__ == "__main__":
    sys.exit(main())
