"""`history compact`: one file per table per closed month, and retention of old raw rows.

Nightly runs leave one small file per run per table; a year of a 1,000-node fleet is a
million of them, and opening files is what a reader pays for. Compaction merges each closed
month (before --before, by default the current UTC month) into `merged-<ns>.parquet`, then
writes `merged-<ns>.done`, which lists the run ids the merged file stands for, and only then
deletes the files it replaced. A reader that lists the folder at any moment counts each row
once (bench.history.layout): before the marker it reads the small files, after it the merged
one, never both. Run one compaction at a time per history; adds may go on meanwhile (a run
added to a compacted month lands as a small file and is merged next time). Temporary files
of writers that died more than a day ago are removed.

Retention (--keep-days N) drops the case and environment rows of runs that started more
than N days ago. Their row in the runs table stays: the history still knows the run happened,
adding its folder again changes nothing, and testbed links stay whole.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.errors import UsageError
from bench.history.layout import (
    TABLE_NAMES,
    MonthFiles,
    check_history,
    done_marker,
    month_files,
    month_of,
    months,
    write_atomic,
)

Warn = Callable[[str], None]
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
STALE_TMP = timedelta(days=1)


@dataclass
class Compacted:
    """What a compaction did: per (table, month) the files merged and rows kept."""

    merged: list[tuple[str, str, int, int]] = field(default_factory=list)
    dropped_runs: int = 0
    skipped: list[str] = field(default_factory=list)  # damaged files left where they are

    def lines(self) -> list[str]:
        out = [f"{t}/{m}: {n} files -> 1 ({rows} rows)" for t, m, n, rows in self.merged]
        if self.dropped_runs:
            out.append(f"dropped the case and environment rows of {self.dropped_runs} runs")
        if not out:
            out.append("nothing to compact")
        return out


def parse_month(text: str) -> str:
    if not MONTH.match(text):
        raise UsageError(f"--before {text!r}: give a month as YYYY-MM, e.g. 2026-11")
    return text


def _dropped(history: Path, keep_days: int | None, now: datetime, warn: Warn) -> set[str]:
    """The run ids of the runs older than keep_days."""
    from bench.history.query import load_runs

    if keep_days is None:
        return set()
    runs = load_runs(history, warn=warn)
    return set(runs.loc[runs["started_at"] < now - timedelta(days=keep_days), "run_id"])


def _has_dropped_rows(found: MonthFiles, drop: set[str]) -> bool:
    return bool(drop & set(found.runs)) or bool(drop & (found.covered - found.emptied))


def _sweep(folder: Path, now: datetime) -> None:
    """Remove the temporary files of writers that died more than a day ago (readers never
    count them: they end in .tmp)."""
    limit = (now - STALE_TMP).timestamp()
    for path in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < limit:
                path.unlink()


def _merge(
    folder: Path, table: str, found: MonthFiles, drop: set[str], warn: Warn
) -> tuple[int, int, list[Path]]:
    """Write the month's merged file and its marker; (files merged, rows, skipped files)."""
    from bench.history.query import read_files, typed
    from bench.history.schema import fingerprint
    from bench.history.store import write_table

    frame, skipped = read_files({p: found.schema(p) for p in found.files}, "", {}, warn)
    if frame is None:
        return 0, 0, skipped
    frame = typed(frame, table)
    if table != "runs":
        frame = frame[~frame["run_id"].isin(drop)]
    bad_ids = {p.stem for p in skipped}
    covered = (found.covered | set(found.runs)) - bad_ids
    emptied = (found.emptied | drop) & covered if table != "runs" else set()
    merged = folder / f"merged-{time.time_ns()}.parquet"
    write_table(frame, table, merged)
    marker = {"run_ids": sorted(covered), "dropped": sorted(emptied)}
    marker["schema"] = fingerprint(table)
    write_atomic(done_marker(merged), json.dumps(marker))
    done = [p for p in found.files if p not in skipped and p != merged] + list(found.stale)
    for path in done:  # the new marker covers them: deleting is safe in any order
        found.marker(path).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    return len(found.files) - len(skipped), len(frame), skipped


def compact(
    history: Path,
    *,
    before: str | None = None,
    keep_days: int | None = None,
    now: datetime | None = None,
    warn: Warn | None = None,
) -> Compacted:
    """Merge every month before `before` (YYYY-MM; default: this month) into one file per
    table, and drop the raw rows of runs older than `keep_days` (their months are merged)."""
    from bench.history.query import _stderr

    history = Path(history)
    check_history(history)
    warn = warn or _stderr
    now = now or datetime.now(timezone.utc)
    before = parse_month(before) if before else month_of(now)
    if keep_days is not None and keep_days < 0:
        raise UsageError(f"--keep-days {keep_days}: must be 0 or more")
    dropped = _dropped(history, keep_days, now, warn)
    report = Compacted()
    for table in TABLE_NAMES:
        for month in months(history, table):
            folder = history / table / month
            _sweep(folder, now)
            found = month_files(folder)
            dropping = table != "runs" and _has_dropped_rows(found, dropped)
            if not dropping and (month >= before or _single(found)):
                continue
            if dropping and table == "cases":
                report.dropped_runs += len(dropped & (set(found.runs) | found.covered))
                report.dropped_runs -= len(dropped & found.emptied)
            merged, rows, skipped = _merge(folder, table, found, dropped, warn)
            report.skipped.extend(str(p) for p in skipped)
            if merged:
                report.merged.append((table, month, merged, rows))
    return report


def _single(found: MonthFiles) -> bool:
    """Already one merged file and nothing beside it."""
    return found.merged is not None and not found.runs and not found.stale
