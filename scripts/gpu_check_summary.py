"""Gather the GPU check's figures from its work folder into OUT/gpu-check.json and print
them, each beside its floor or anchor, under the table of step verdicts.

The work folder is what scripts/gpu-check.sh's steps wrote: verdicts.jsonl (one line per
step), ceiling/<sku>/ceiling.json, the run folders under matmul/, energy/, attention/ and
health/, timers.json and sampler.json. A step that wrote nothing leaves its figures None
with the reason (MISSING), never a default.

    python scripts/gpu_check_summary.py WORK_DIR OUT_DIR [--mode full|quick]
    # exit 0: every step passed and every figure met its floor; 1 otherwise; 2 bad input
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gpu_check_figures import (
    FAIL,
    UNVERIFIED,
    Figure,
    attention_figures,
    ceiling_figures,
    energy_figures,
    health_figure,
    matmul_figures,
    overall,
    sampler_figure,
    timer_figure,
)

from bench.peaks.table import AmbiguousPeakError, PeakRow, find_row

FILE_NAME = "gpu-check.json"
SCHEMA = 1


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_steps(work: Path) -> list[dict[str, Any]]:
    path = work / "verdicts.jsonl"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def only_run(parent: Path) -> Path | None:
    """The newest run folder under parent (a retried step may have left an older one)."""
    runs = sorted(p for p in parent.glob("*/") if (p / "run.json").is_file())
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def read_run(parent: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None, list, str]:
    """(run.json, cases as dicts by leaf name, health rows, why None) of the run folder under
    parent; the dicts are those compare and report read (bench.results.frame.case_dicts)."""
    from bench.results.frame import case_dicts
    from bench.results.record import load_run

    run_dir = only_run(parent)
    if run_dir is None:
        return None, None, [], f"no run folder under {parent.name}/ (see that step's verdict)"
    try:
        run = load_run(run_dir)
    except (OSError, ValueError, KeyError) as exc:
        return None, None, [], f"{run_dir.name}: unreadable ({exc})"
    cases = case_dicts(run) if len(run.cases) else []
    return run.meta, cases, run.health, ""


def device_of(work: Path) -> tuple[dict[str, Any], PeakRow | None]:
    """The GPU's identity (from any run the check wrote) and its datasheet row."""
    for step in ("matmul", "energy", "attention", "health"):
        meta = read_run(work / step)[0]
        identity = ((meta or {}).get("device_facts") or {}).get("identity")
        if identity:
            try:
                row = find_row(identity.get("name", ""), identity.get("compute_capability"))
            except AmbiguousPeakError:
                row = None
            return identity, row
    return {}, None


def collect(work: Path) -> tuple[dict[str, Any], list[Figure], list[dict[str, Any]]]:
    """Device identity, every figure, and the health rows."""
    identity, row = device_of(work)
    ceiling_path = next(iter(sorted((work / "ceiling").glob("*/ceiling.json"))), None)
    ceiling = read_json(ceiling_path) if ceiling_path else None
    figures = ceiling_figures(ceiling, row, "the ceiling step wrote no ceiling.json")
    meta, cases, _, why = read_run(work / "matmul")
    figures += matmul_figures(cases, identity.get("compute_capability"), why, identity)
    figures.append(timer_figure(read_json(work / "timers.json"), "the timers step wrote nothing"))
    meta, cases, _, why = read_run(work / "attention")
    figures += attention_figures(cases, row, why)
    meta, cases, _, why = read_run(work / "energy")
    figures += energy_figures(meta, cases, why)
    figures.append(
        sampler_figure(read_json(work / "sampler.json"), "the sampler step wrote nothing")
    )
    meta, _, rows, why = read_run(work / "health")
    figures.append(health_figure(meta, rows if meta else None, why))
    device = {**identity, "peak_table_sku": row.sku if row else None}
    return device, figures, rows


def print_steps(steps: list[dict[str, Any]]) -> None:
    print(f"{'step':18s} {'verdict':13s} {'rc':>4s} {'seconds':>8s} {'limit':>6s}")
    for s in steps:
        took = f"{s['seconds']:8.1f} {s['limit_s']:6.0f}"
        print(f"{s['step']:18s} {s['verdict']:13s} {s['rc']:>4d} {took}")


def print_figures(figures: list[Figure]) -> None:
    print(f"{'figure':58s} {'value':>14s}  {'verdict':7s} floor / anchor; source; note")
    for f in figures:
        extra = "; ".join(x for x in (f.anchor and f"anchor: {f.anchor}", f.source, f.note) if x)
        print(f"{f.name:58s} {f.shown:>14s}  {f.verdict:7s} {f.floor}; {extra}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mode", choices=("full", "quick"), default="full")
    args = parser.parse_args(argv)
    if not args.work.is_dir():
        print(f"gpu_check_summary: {args.work} is not a folder", file=sys.stderr)
        return 2
    steps = read_steps(args.work)
    device, figures, rows = collect(args.work)
    verdict = overall(figures, steps)
    doc = {
        "schema": SCHEMA,
        "mode": args.mode,
        "device": device,
        "verdict": verdict,
        "steps": steps,
        "figures": [f.as_dict() for f in figures],
        "health_rows": [
            {k: r.get(k) for k in ("device", "name", "value", "unit", "verdict", "reason")}
            for r in rows
        ],
        "unverified": UNVERIFIED,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / FILE_NAME).write_text(json.dumps(doc, indent=2, default=str) + "\n", "utf-8")
    print_steps(steps)
    print()
    print_figures(figures)
    for r in rows:
        print(f"  health {r.get('name')}: {r.get('verdict')} ({r.get('reason')})")
    print(UNVERIFIED)
    print(f"gpu check: {verdict} -> {args.out / FILE_NAME}")
    return 1 if verdict == FAIL else 0


if __name__ == "__main__":
    sys.exit(main())
