"""flopwatt's timing engine against triton's do_bench on the same matmul, in one process.

An independent GPU timer is to CUDA what torch's Timer is to a CPU: if flopwatt's median
per-call time of a bf16 8192^3 matmul (cold mode: L2 flushed outside each timed call, per-call
CUDA events) differs from do_bench's median (which zeroes a cache buffer outside each timed
call, per-call events) by more than 3%, one of them measures something else. The two are
alternated in pairs, so clocks and temperature drift hit both alike; the figure is the median
of the per-pair ratios flopwatt / do_bench. triton ships with torch's CUDA wheels; where it
cannot be imported or has no GPU, the ratio is None with the reason.

    python scripts/gpu_check_timers.py [--device cuda] [--size 8192] [--pairs 5] [--json PATH]
    # exit 0 within 3%, 1 outside or not measured, 2 bad input
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOLERANCE = 0.03


def do_bench_or_reason(device_kind: str) -> tuple[Callable[..., float] | None, str | None]:
    """triton.testing.do_bench, or None and why it cannot time here."""
    if device_kind != "cuda":
        return None, "triton's do_bench times CUDA devices only"
    try:
        from triton.testing import do_bench
    except ImportError as exc:
        return None, f"triton is not importable ({exc})"
    return do_bench, None


def ratio_of(pairs: list[tuple[float, float]]) -> float | None:
    """Median of flopwatt / do_bench over the alternated pairs; None without pairs."""
    ratios = [fw / tr for fw, tr in pairs if fw > 0 and tr > 0]
    return statistics.median(ratios) if ratios else None


def measure_pairs(args: argparse.Namespace) -> dict[str, Any]:
    from bench.devices import get_backend
    from bench.measuring.timing import Policy, measure
    from kernels import matmul

    backend = get_backend(args.device)
    try:
        dtype = "bf16" if backend.kind == "cuda" else "fp32"
        n = args.size
        case = matmul.make_case({"m": n, "n": n, "k": n}, dtype, backend.label)
        prepared = matmul.prepare(case, backend.torch_device())
        fn = prepared.run
        policy = Policy(mode="cold", warmup_min_s=0.2, warmup_max_s=1.0, timeout_s=2.0)
        do_bench, reason = do_bench_or_reason(backend.kind)
        flopwatt_s, pairs = [], []
        for _ in range(args.pairs):
            ours = measure(fn, backend, policy).summary.median_s
            flopwatt_s.append(ours)
            if do_bench is not None:
                theirs = do_bench(fn, warmup=100, rep=400, return_mode="median") / 1e3
                pairs.append((ours, theirs))
                print(
                    f"flopwatt {ours * 1e3:8.4f} ms  do_bench {theirs * 1e3:8.4f} ms  "
                    f"ratio {ours / theirs:.4f}",
                    flush=True,
                )
            else:
                print(f"flopwatt {ours * 1e3:8.4f} ms  do_bench: {reason}", flush=True)
        ratio = ratio_of(pairs)
        return {
            "op": f"{dtype} {case.params['shape_label']} torch.mm (kernels.matmul), cold",
            "device": backend.label,
            "pairs": [{"flopwatt_s": a, "do_bench_s": b} for a, b in pairs],
            "flopwatt_median_s": statistics.median(flopwatt_s),
            "do_bench_median_s": statistics.median([b for _, b in pairs]) if pairs else None,
            "ratio": ratio,
            "reason": None if ratio is not None else reason,
            "note": f"median of {len(pairs)} alternated pairs" if pairs else None,
        }
    finally:
        backend.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=8192, help="M = N = K")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if args.size < 1 or args.pairs < 1:
        print("gpu_check_timers: --size and --pairs must be positive", file=sys.stderr)
        return 2
    result = measure_pairs(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ratio = result["ratio"]
    if ratio is None:
        print(f"flopwatt / do_bench: None ({result['reason']})")
        return 1
    inside = abs(ratio - 1) <= TOLERANCE
    print(
        f"flopwatt / do_bench = {ratio:.4f} ({'within' if inside else 'IMPLAUSIBLE: outside'} "
        f"{TOLERANCE:.0%})"
    )
    return 0 if inside else 1


if __name__ == "__main__":
    sys.exit(main())
