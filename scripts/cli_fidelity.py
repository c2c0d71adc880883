"""CLI fidelity: a whole `flopwatt run` process against a torch.utils.benchmark process.

scripts/fidelity.py compares measure() with torch's Timer inside one process; this compares
what a user gets: `flopwatt run --power none` on a 1024^3 fp32 matmul (C = A @ B^T into a
preallocated C, flopwatt's matmul kernel) against a fresh process that times the same
`torch.mm(a, b.t(), out=c)` with Timer.blocked_autorange, same threads. Pairs alternate which
process runs first (ABBA), so a drift of the shared machine within a pair cancels; the
figure is the median of the per-pair rate ratios (flopwatt / Timer), the target within 3%.

    python scripts/cli_fidelity.py [--pairs 7] [--size 1024] [--threads N] [--seconds 1.0]
                                   [--flopwatt "python -m bench"] [-- EXTRA RUN ARGS]

Each process is told the same measuring time (`--min-time-s` and Timer's min_run_time) and
warms up for the same time before it (flopwatt's `--warmup-s`; the Timer side runs the op
back to back as long before measuring). The thread counts both processes really used are
printed: run.json's device facts, torch.get_num_threads() in the Timer process. So is each
side's CPU pressure (Linux PSI, as `compare` gates on it): on a shared machine a pair in which
another job ran reads 0.3-3x at random, so the verdict uses the quiet pairs only (exit 0
within 3%, 1 outside, 2 when fewer than 3 pairs were quiet).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timer_child(size: int, threads: int, seconds: float, warmup_s: float) -> None:
    """The Timer side (run in its own process): print its median and thread counts as JSON."""
    import torch
    import torch.utils.benchmark as tbench

    from bench.measuring.pressure import PressureProbe

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen)
    b = torch.randn(size, size, generator=gen)
    c = torch.empty(size, size)
    bt = b.t()
    start = time.perf_counter()
    while time.perf_counter() - start < warmup_s:
        torch.mm(a, bt, out=c)
    timer = tbench.Timer(
        stmt="torch.mm(a, bt, out=c)",
        globals={"torch": torch, "a": a, "bt": bt, "c": c},
        num_threads=threads,
    )
    probe = PressureProbe.start()
    m = timer.blocked_autorange(min_run_time=seconds)
    pressure, _ = probe.stop()
    print(
        json.dumps(
            {
                "median_s": m.median,
                "blocks": len(m.times),
                "threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "pressure": pressure,
            }
        )
    )


def run_timer(args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child-timer",
        "--size",
        str(args.size),
        "--threads",
        str(args.threads),
        "--seconds",
        str(args.seconds),
        "--warmup-s",
        str(args.warmup_s),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=_env())
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_flopwatt(args: argparse.Namespace, extra: list[str]) -> dict:
    n = args.size
    with tempfile.TemporaryDirectory(prefix="cli-fidelity-") as out:
        command = [
            *shlex.split(args.flopwatt),
            "run",
            "--device",
            "cpu",
            "--kernel",
            "matmul",
            "--dtype",
            "fp32",
            "--shape",
            f"{n}x{n}x{n}",
            "--threads",
            str(args.threads),
            "--power",
            "none",
            "--min-time-s",
            str(args.seconds),
            "--warmup-s",
            str(args.warmup_s),
            "--timeout-s",  # counts the warm-up too: the same seconds as the Timer side
            str(args.seconds + args.warmup_s),
            "--out",
            out,
            *extra,
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"flopwatt run failed ({done.returncode}): {done.stderr[-2000:]}")
        (run_dir,) = Path(out).iterdir()
        from bench.results.record import leaves_of  # 2.x lines are nested in parts

        case = leaves_of(json.loads((run_dir / "cases.jsonl").read_text().splitlines()[0]))
        meta = json.loads((run_dir / "run.json").read_text())
    return {
        "median_s": case["time_median_s"],
        "samples": case["n_samples"],
        "stop": case["stop_reason"],
        "threads": meta["device_facts"]["threads"],
        "pressure": case["cpu_pressure"],
    }


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per side")
    parser.add_argument("--warmup-s", type=float, default=0.5, help="warm-up per side")
    parser.add_argument(
        "--flopwatt", default=f"{sys.executable} -m bench", help="the command that is flopwatt"
    )
    parser.add_argument(
        "--max-pressure",
        type=float,
        default=0.05,
        help="pairs where either side saw more CPU pressure (Linux PSI) count as busy",
    )
    parser.add_argument("--child-timer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_timer:
        timer_child(args.size, args.threads, args.seconds, args.warmup_s)
        return 0

    flops = 2 * args.size**3
    pairs = []
    print(f"{args.size}^3 fp32 torch.mm(a, b.t(), out=c), {args.threads} threads, one process each")
    print(f"flopwatt: {args.flopwatt} run ... --power none {' '.join(extra)}")
    header = ("pair", "flopwatt GFLOP/s", "Timer GFLOP/s", "ratio", "pressure")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (4, 17, 14, 7, 13), strict=True)))
    for pair in range(args.pairs):
        if pair % 2:  # ABBA: alternate which process goes first
            theirs = run_timer(args)
            ours = run_flopwatt(args, extra)
        else:
            ours = run_flopwatt(args, extra)
            theirs = run_timer(args)
        ratio = theirs["median_s"] / ours["median_s"]
        busy = max(_or_inf(ours["pressure"]), _or_inf(theirs["pressure"])) > args.max_pressure
        pairs.append((ratio, busy))
        print(
            f"{pair:>4} {flops / ours['median_s'] / 1e9:>17.2f} "
            f"{flops / theirs['median_s'] / 1e9:>14.2f} {ratio:>7.4f} "
            f"{_fmt(ours['pressure']):>6} {_fmt(theirs['pressure']):>6}{'  busy' if busy else ''}"
            f"   (flopwatt {ours['samples']} samples, {ours['stop']}, {ours['threads']} threads; "
            f"Timer {theirs['blocks']} blocks, {theirs['threads']} threads, "
            f"{theirs['interop_threads']} interop)"
        )
    return _report([r for r, _ in pairs], [r for r, busy in pairs if not busy], args.max_pressure)


def _report(ratios: list[float], clean: list[float], max_pressure: float) -> int:
    """The median ratio of the pairs measured on a quiet machine (all pairs beside it)."""
    print(
        f"all {len(ratios)} pairs: median {statistics.median(ratios):.4f}, "
        f"min {min(ratios):.4f}, max {max(ratios):.4f}"
    )
    if len(clean) < 3:
        print(f"only {len(clean)} pairs with CPU pressure <= {max_pressure}: inconclusive")
        return 2
    ratio = statistics.median(clean)
    verdict = "within 3%" if abs(ratio - 1) <= 0.03 else "OUTSIDE 3%"
    print(
        f"median ratio flopwatt/Timer = {ratio:.4f} over {len(clean)} quiet pairs "
        f"(min {min(clean):.4f}, max {max(clean):.4f}; {verdict})"
    )
    return 0 if abs(ratio - 1) <= 0.03 else 1


def _or_inf(value: float | None) -> float:
    return float("inf") if value is None else value


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
