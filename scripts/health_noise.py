"""Does `flopwatt health` cry wolf? Back-to-back health runs against their own baseline.

Runs one health check on the CPU as the baseline (the first whose repeats were mostly quiet),
then `--runs` more against it, one after the other, and counts the verdicts of the "vs
baseline" rows (target: 0 FAIL). Then
`--drops` runs with `--threads 1` against the baseline of the default thread count: a real
2x drop of the matmul rate, which must FAIL (INCONCLUSIVE only when the machine was busy).
Each run is its own process, as a nightly gate would start it.

    python scripts/health_noise.py [--runs 20] [--drops 3] [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROWS = ("matmul vs baseline", "copy bandwidth vs baseline")


def health(out: Path, *args: str) -> dict:
    """One `flopwatt health --device cpu` process; its JSON document and wall time."""
    command = [sys.executable, "-m", "bench", "health", "--device", "cpu", "--format", "json"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--out", str(out), *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"flopwatt health exited {done.returncode}: {done.stderr.strip()}")
    doc = json.loads(done.stdout)
    doc["wall_s"] = wall
    doc["exit"] = done.returncode
    return doc


def quiet(run_dir: str) -> bool:
    """Whether more than half of every case's repeats ran with no CPU pressure."""
    from bench.commands.health.fleet import stats
    from bench.results.record import leaves_of

    with open(Path(run_dir) / "cases.jsonl", encoding="utf-8") as fh:
        cases = [leaves_of(json.loads(line)) for line in fh]
    return all((s := stats(case)) is not None and s.quiet for case in cases)


def rows(doc: dict) -> dict[str, dict]:
    return {r["name"]: r for r in doc["checks"] if r["name"] in ROWS}


def tally(docs: list[dict], label: str) -> dict:
    """Verdict counts per row, and the runs' wall times."""
    counts = {name: Counter(rows(d)[name]["verdict"] for d in docs) for name in ROWS}
    walls = sorted(d["wall_s"] for d in docs)
    print(f"\n{label}: {len(docs)} runs, wall {walls[0]:.1f}-{walls[-1]:.1f} s")
    for name, c in counts.items():
        print(f"  {name}: " + ", ".join(f"{v} {n}" for v, n in sorted(c.items())))
    for i, d in enumerate(docs):
        for name, r in rows(d).items():
            if r["verdict"] != "PASS":
                print(f"  run {i}: {name} {r['verdict']}: {r['reason']}")
    return {
        "runs": len(docs),
        "wall_s": walls,
        "verdicts": {name: dict(c) for name, c in counts.items()},
        "exits": Counter(d["exit"] for d in docs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--drops", type=int, default=3)
    parser.add_argument("--baseline-tries", type=int, default=10)
    parser.add_argument("--out", type=Path, help="where the run folders go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the tallies here")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="health-noise-"))
    for _ in range(args.baseline_tries):  # a baseline blessed on a busy machine proves nothing
        base = health(out)
        if quiet(base["run_dir"]):
            break
        print(f"baseline try {base['run_dir']}: most repeats busy, trying again")
    else:
        raise SystemExit(f"no quiet baseline in {args.baseline_tries} tries: the machine is busy")
    baseline = base["run_dir"]
    threads = os.cpu_count()
    print(f"baseline {baseline} ({threads} CPUs, torch's default threads)")
    for name, r in rows(base).items():
        print(f"  {name}: {r['value']:.4g} ({r['verdict']}: {r['reason'][:60]}...)")
    same = [health(out, "--baseline", baseline) for _ in range(args.runs)]
    result = {"baseline": baseline, "same": tally(same, "against its own baseline")}
    drops = [health(out, "--baseline", baseline, "--threads", "1") for _ in range(args.drops)]
    result["one_thread"] = tally(drops, "--threads 1 against that baseline")
    fails = result["same"]["verdicts"]
    false_alarms = sum(c.get("FAIL", 0) for c in fails.values())
    caught = result["one_thread"]["verdicts"]["matmul vs baseline"].get("FAIL", 0)
    print(
        f"\nfalse FAILs: {false_alarms} in {args.runs} runs; 2x drop FAILed {caught}/{args.drops}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
