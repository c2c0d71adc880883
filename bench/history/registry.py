"""The testbeds a history has seen, one small JSON file each, so that adding a run finds the
testbed a swapped GPU replaced without reading every run of the fleet.

    <history>/testbeds/<host-slug>-<hash>/<testbed hash>.json
        {"testbed", "host", "sku", "gpu_uuid", "gpu_serial", "gpu_bdf",
         "previous_testbed", "first_seen"}

It is the runs table's testbed columns, one row per testbed, kept beside it: the store writes
a testbed's file with the first run of that testbed (write, then rename; two nodes writing
the same testbed at once write the same facts). Retention never removes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bench.history.layout import write_atomic
from bench.history.testbed import Testbed

FOLDER = "testbeds"


def _host_folder(history: Path, host: str) -> Path:
    from bench.results.blessed.paths import slug

    digest = hashlib.sha1(host.encode()).hexdigest()[:6]
    return Path(history) / FOLDER / f"{slug(host)[:40]}-{digest}"


def _entry_path(history: Path, testbed_id: str, host: str) -> Path:
    return _host_folder(history, host) / f"{testbed_id.rsplit('/', 1)[-1]}.json"


def _entries(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # being written, or damaged: the runs table still holds the facts
    return out


def register(history: Path, runs_row: dict[str, Any]) -> None:
    """Record a run's testbed unless it is recorded already (its first run names it)."""
    path = _entry_path(history, runs_row["testbed"], runs_row["host"])
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = ("testbed", "host", "sku", "gpu_uuid", "gpu_serial", "gpu_bdf", "previous_testbed")
    entry = {k: runs_row.get(k) for k in keys}
    entry["first_seen"] = runs_row["started_at"].isoformat()
    write_atomic(path, json.dumps(entry, sort_keys=True))


def previous_testbed(history: Path, testbed: Testbed) -> str | None:
    """The testbed this one replaced on its host (a GPU swap): the newest other testbed of
    the same host and SKU; a testbed seen before keeps the link it started with."""
    entries = [e for e in _entries(_host_folder(history, testbed.host)) if e["sku"] == testbed.sku]
    for entry in entries:
        if entry["testbed"] == testbed.id:
            return entry.get("previous_testbed")
    others = sorted(entries, key=lambda e: e.get("first_seen") or "")
    return others[-1]["testbed"] if others else None


def known_testbeds(history: Path) -> list[str]:
    """Every testbed the history has seen, sorted."""
    return sorted(testbed_skus(history))


def testbed_skus(history: Path) -> dict[str, str]:
    """Every testbed the history has seen -> its SKU."""
    root = Path(history) / FOLDER
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return {e["testbed"]: str(e.get("sku") or "?") for f in folders for e in _entries(f)}
