"""Fidelity: flopwatt's CPU timing against torch.utils.benchmark on the same op, same threads.

Both measure a 1024^3 fp32 matmul (C = A @ B^T into a preallocated C) in this one process,
in many short interleaved pairs (A/B, B/A, ...): on a shared VM the machine's speed drifts by
10-30% over tens of seconds, so only measurements taken side by side can be compared. Prints each
pair's achieved FLOP/s and the median of the per-pair ratios (flopwatt / torch Timer); the
target is within 3%.

    python scripts/fidelity.py [--size 1024] [--threads N] [--pairs 30] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
import torch.utils.benchmark as tbench

from bench.devices.cpu import CpuBackend
from bench.measuring.timing import Policy, measure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=0.5, help="measuring time per side")
    args = parser.parse_args()

    n = args.size
    backend = CpuBackend(threads=args.threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    bt = b.t()
    flops = 2 * n**3
    # Same budget for both sides: flopwatt stops on noise or after `seconds` of sampling.
    policy = Policy(
        warmup_min_s=0.1, warmup_max_s=0.5, min_time_s=args.seconds, timeout_s=args.seconds + 0.6
    )
    timer = tbench.Timer(
        stmt="torch.mm(a, bt, out=c)",
        globals={"torch": torch, "a": a, "bt": bt, "c": c},
        num_threads=args.threads,
    )

    ratios = []
    print(f"{n}^3 fp32 matmul, {args.threads} threads")
    print(f"{'pair':>4} {'flopwatt GFLOP/s':>17} {'Timer GFLOP/s':>14} {'ratio':>7}")
    for pair in range(args.pairs):
        # Alternate which side goes first (ABBA), so a drift within a pair cancels out.
        if pair % 2:
            theirs = timer.blocked_autorange(min_run_time=args.seconds)
            ours = measure(lambda: torch.mm(a, bt, out=c), backend, policy)
        else:
            ours = measure(lambda: torch.mm(a, bt, out=c), backend, policy)
            theirs = timer.blocked_autorange(min_run_time=args.seconds)
        ours_rate = flops / ours.summary.median_s
        theirs_rate = flops / theirs.median
        ratios.append(ours_rate / theirs_rate)
        detail = f"{ours.summary.n} samples, {ours.stop_reason}; Timer {len(theirs.times)} blocks"
        print(
            f"{pair:>4} {ours_rate / 1e9:>17.2f} {theirs_rate / 1e9:>14.2f} {ratios[-1]:>7.4f}"
            f"   ({detail})"
        )
    ratio = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(f"per-pair ratios: p25 {q1:.4f}, p75 {q3:.4f} (the spread is the machine's drift)")
    verdict = "within 3%" if abs(ratio - 1) <= 0.03 else "OUTSIDE 3%"
    print(f"median ratio flopwatt/Timer = {ratio:.4f} ({verdict})")
    return 0 if abs(ratio - 1) <= 0.03 else 1


if __name__ == "__main__":
    sys.exit(main())
