"""How fast the history reads a fleet: 100 nodes x 50 cases x 200 nights, one file per run
per table as the store writes them (1,000,000 case rows, 20,000 runs), before and after
`history compact`.

    python scripts/bench_history.py [--out /tmp/flopwatt-history-bench] [--nodes 100]
                                    [--cases 50] [--nights 200] [--reuse] [--check]

The fleet is generated as DataFrames (two SKUs, each node its own speed, 3% noise) and written
with the store's own writer (bench.history.store.write_run), one run at a time. Every read is
timed in a fresh child process, so its peak resident memory (ru_maxrss from wait4) is the
read's own and not the generator's:

- latest night: the testbeds that ran on the last night, their cases over the last 60 days
  (what `history check` reads), and
- full: every case row,

then `history compact` (every month before the last night's), then the same reads again.
With --check, `flopwatt history check` of the latest night is timed the same way (three
times: the median and all), its output written to a pipe as a nightly job's would be, where
this branch has it. The checkout is byte-compiled first, as an installed flopwatt is. The
generated history stays under --out (default under /tmp).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHECK_REPEATS = 3
LAST_NIGHT = datetime(2026, 12, 4, 2, 0, tzinfo=timezone.utc)
SKUS = (("h100-sxm5-80gb", 700e12), ("instinct-mi300x", 900e12))
KERNELS = (("matmul", 20), ("attention", 10), ("allreduce", 10), ("membw", 10))
ENVIRONMENT = {
    "software.torch": "2.5.1",
    "software.nccl": "2.21.5",
    "software.blas_library": "cublasLt",
    "nvml.driver_version": "550.54.15",
    "software.torch_cuda": "12.4",
    "host.os": "Linux 6.8",
    "git.sha": "0" * 40,
}


def _cases(n: int) -> list[tuple[str, str, str]]:
    """(kernel, family, case_key) of n generated cases."""
    from bench.history.rows import family

    out = []
    for kernel, share in KERNELS:
        for i in range(max(1, n * share // 50)):
            key = json.dumps({"kernel": kernel, "params": {"size": 2 ** (10 + i)}})
            out.append((kernel, family(kernel), key))
    return out[:n]


def generate(history: Path, nodes: int, n_cases: int, nights: int) -> tuple[float, int]:
    """Write the fleet; (seconds, runs written)."""
    import numpy as np
    import pandas as pd

    from bench.history.columns import CASE_COLUMNS, ENVIRONMENT_COLUMNS, RUN_COLUMNS
    from bench.history.store import write_run
    from bench.history.testbed import Testbed

    rng = np.random.default_rng(16)
    cases = _cases(n_cases)
    collective = np.array([family == "collective" for _, family, _ in cases])
    speed = rng.normal(1.0, 0.02, size=(nodes, len(cases)))
    started = time.perf_counter()
    written = 0
    for night in range(nights):
        when = LAST_NIGHT - timedelta(days=nights - 1 - night)
        for node in range(nodes):
            sku, peak = SKUS[node % len(SKUS)]
            bed = Testbed(f"node{node:04d}", sku, gpu_uuid=f"GPU-{node:08x}")
            run_id = f"{when:%Y%m%d-%H%M%S}-node{node:04d}"
            rate = peak * speed[node] * rng.normal(1.0, 0.03, size=len(cases))
            runs = {c: None for c in RUN_COLUMNS}
            runs.update(
                run_id=run_id,
                testbed=bed.id,
                host=bed.host,
                sku=sku,
                gpu_uuid=bed.gpu_uuid,
                started_at=when,
                suite="nightly",
                schema_version="2.0",
                method_version=2,
                flopwatt_version="0.1.0",
                synthetic=True,
            )
            case_rows = pd.DataFrame(
                {
                    "run_id": run_id,
                    "testbed": bed.id,
                    "started_at": when,
                    "case_key": [c[2] for c in cases],
                    "case_label": [c[2] for c in cases],
                    "kernel": [c[0] for c in cases],
                    "family": [c[1] for c in cases],
                    "dtype": "bf16",
                    "status": "ok",
                    "method_version": 2,
                    "time_median_s": 1e12 / rate,
                    "achieved_ops_per_s": rate,
                    # a collective is judged by its busbw, as a real allreduce records it
                    "busbw_bytes_per_s": np.where(collective, rate / 1e3, np.nan),
                    "ops_per_j": rate / 700.0,
                    "clock_hz": 1.98e9,
                    "cpu_pressure": 0.0,
                    "rel_iqr": 0.01,
                    "throttled": False,
                },
                columns=list(CASE_COLUMNS),
            )
            env = pd.DataFrame(
                [{"run_id": run_id, "key": k, "value": v} for k, v in ENVIRONMENT.items()],
                columns=list(ENVIRONMENT_COLUMNS),
            )
            run_frame = pd.DataFrame([runs], columns=list(RUN_COLUMNS))
            write_run(history, run_frame, case_rows, env)
            written += 1
        if night % 20 == 19:
            print(
                f"  night {night + 1}/{nights}: {time.perf_counter() - started:.0f} s", flush=True
            )
    return time.perf_counter() - started, written


READ = """
import json, sys, time
from datetime import datetime, timedelta
from pathlib import Path
from bench.history.query import load_cases, load_runs
history, what, last = Path(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3])
t = time.perf_counter()
if what == "latest":
    beds = sorted(set(load_runs(history, since=last - timedelta(hours=12))["testbed"]))
    rows = len(load_cases(history, since=last - timedelta(days=60), testbeds=beds))
else:
    rows = len(load_cases(history))
print(json.dumps({"s": time.perf_counter() - t, "rows": rows}))
"""

ADD = """
import json, shutil, sys, tempfile, time
from pathlib import Path
from bench.history.store import add_run_dir
run = Path(tempfile.mkdtemp()) / sys.argv[2]
shutil.copytree(Path(sys.argv[3]), run)
meta = json.loads((run / "run.json").read_text())
(run / "run.json").write_text(json.dumps({**meta, "run_id": run.name}))
t = time.perf_counter()
add_run_dir(Path(sys.argv[1]), run)
print(json.dumps({"s": time.perf_counter() - t, "rows": 1}))
"""

COMPACT = """
import json, sys, time
from pathlib import Path
from bench.history.compact import compact
t = time.perf_counter()
report = compact(Path(sys.argv[1]), before=sys.argv[2])
print(json.dumps({"s": time.perf_counter() - t, "rows": sum(m[3] for m in report.merged)}))
"""


WRAP = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(done.stderr)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"wall": time.perf_counter() - t, "rss": rss, "out": done.stdout}))
"""


def child(argv: list[str]) -> tuple[float, float, str]:
    """Run argv in a fresh process; (wall seconds, its peak RSS in MiB, its stdout). A wrapper
    process waits for it, so RUSAGE_CHILDREN there is this one process's maximum."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    wrap = [sys.executable, "-c", WRAP, *argv]
    done = subprocess.run(wrap, capture_output=True, text=True, env=env, check=True)
    sys.stderr.write(done.stderr[-2000:])
    data = json.loads(done.stdout)
    return data["wall"], data["rss"], data["out"]


def timed(code: str, *args: str) -> tuple[float, float, int]:
    """(seconds inside the child, peak RSS MiB, rows) of a snippet run in a fresh process."""
    _, rss, out = child([sys.executable, "-c", code, *args])
    data = json.loads(out.strip().splitlines()[-1])
    return data["s"], rss, data["rows"]


def files(history: Path) -> int:
    return sum(1 for p in history.rglob("*.parquet"))


def byte_compiled() -> None:
    """Byte-compile the checkout as pip does an installed flopwatt; else each timed process
    compiles every module it imports where PYTHONDONTWRITEBYTECODE is set (0.1 s)."""
    import compileall

    compileall.compile_dir(ROOT / "bench", quiet=1)


def check_figures(history: Path) -> str:
    try:
        import bench.history.check  # noqa: F401
    except ImportError:
        return "history check: not available on this branch"
    byte_compiled()
    argv = [sys.executable, "-m", "bench", "history", "check", "--history", str(history)]
    runs = sorted(child(argv)[:2] for _ in range(CHECK_REPEATS))  # a noisy machine: 3 runs
    walls = ", ".join(f"{w:.2f}" for w, _ in runs)
    wall, rss = runs[len(runs) // 2]
    return (
        f"history check (latest night, whole process, median of {len(runs)}: {walls} s): "
        f"{wall:.2f} s, peak RSS {rss:.0f} MiB (max {max(r for _, r in runs):.0f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/flopwatt-history-bench"))
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--nights", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="read an existing --out")
    parser.add_argument("--check", action="store_true", help="also time `history check`")
    args = parser.parse_args()
    history = args.out
    if not args.reuse:
        shutil.rmtree(history, ignore_errors=True)
        print(f"generating {args.nodes} nodes x {args.cases} cases x {args.nights} nights ...")
        took, runs = generate(history, args.nodes, args.cases, args.nights)
        print(f"generated {runs} runs, {files(history)} parquet files in {took:.0f} s")
    last = LAST_NIGHT.isoformat()
    rows: list[tuple[str, float, float, int]] = []
    for stage in ("before compact", "after compact"):
        if stage == "after compact":
            before = f"{LAST_NIGHT:%Y-%m}"
            s, rss, n = timed(COMPACT, str(history), before)
            rows.append((f"compact (months before {before})", s, rss, n))
            if args.check:
                print(check_figures(history))
        else:
            if args.check:
                print(check_figures(history))
            sample = str(ROOT / "tests" / "data" / "cpu-run")
            s, rss, n = timed(ADD, str(history), f"added-{time.time_ns()}", sample)
            rows.append(("history add of one more run (one node's nightly add)", s, rss, n))
        for what in ("latest", "full"):
            s, rss, n = timed(READ, str(history), what, last)
            label = "latest night, 60 days" if what == "latest" else "full load_cases"
            rows.append((f"{label} ({stage}, {files(history)} files)", s, rss, n))
    print(f"\n{'step':58s} {'seconds':>8s} {'peak RSS MiB':>13s} {'rows':>9s}")
    for label, s, rss, n in rows:
        print(f"{label:58s} {s:8.2f} {rss:13.0f} {n:9d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
