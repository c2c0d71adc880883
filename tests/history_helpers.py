"""Nightly copies of the fixture run folders for the history tests: the same run measured on
another night, host or GPU, written as a real run folder (run.json + cases.jsonl)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from run_copies import DATA

CPU_1X = DATA / "cpu-run-early-1.0"
CPU = DATA / "cpu-run"
GPU = DATA / "gpu-run"


def night(
    src: Path,
    dst: Path,
    started_at: str,
    *,
    host: str | None = None,
    uuid: str | None = None,
    case: dict[str, Any] | None = None,
) -> Path:
    """Copy run src to dst as the run of another night (its run id is dst's name), on
    another host or GPU if given; `case` updates every case line (flat or nested)."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "run.json").read_text())
    meta.update(run_id=dst.name, started_at=started_at)
    env = meta.setdefault("environment", {})
    if host is not None:
        env.setdefault("host", {})["hostname"] = host
    if uuid is not None:
        env.setdefault("gpu", {})["uuid"] = uuid
    (dst / "run.json").write_text(json.dumps(meta))
    if case:
        lines = []
        for line in (dst / "cases.jsonl").read_text().splitlines():
            obj = json.loads(line)
            target = obj["identity"] if isinstance(obj.get("identity"), dict) else obj
            target.update(case)
            lines.append(json.dumps(obj))
        (dst / "cases.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def add_each(history: str, run_dirs: list[str]) -> list[bool]:
    """Add run folders one after the other (a process of the concurrent-adds test)."""
    from bench.history.store import add_run_dir

    return [add_run_dir(Path(history), Path(d)) for d in run_dirs]


def files_state(history: Path) -> dict[str, tuple[int, int]]:
    """Every file under the history with its size and mtime: to see that nothing changed."""
    return {
        str(p.relative_to(history)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(history.rglob("*"))
        if p.is_file()
    }
