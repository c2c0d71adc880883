"""Where the history keeps its files, and which of them a reader counts.

    <history>/flopwatt-history.json            what makes a folder a history (format version)
    <history>/<table>/<yyyy-mm>/<run_id>.parquet   one run's rows of one table
    <history>/<table>/<yyyy-mm>/<run_id>.<fp>.done written last: the parquet beside it is
                                                   whole; <fp> is its schema's fingerprint
                                                   (bench.history.schema), so one listing
                                                   tells a reader which files scan together
    <history>/<table>/<yyyy-mm>/merged-<ns>.parquet  a month compacted into one file
    <history>/<table>/<yyyy-mm>/merged-<ns>.done     JSON: the run ids the merged file stands
                                                     for, and its schema's fingerprint

The month is the run's started_at (UTC). A reader counts a run's file only once its marker
exists, so a half-written file (a crashed writer, an object store's copy that is still under
way) is never read. Of a month's merged files the newest (largest <ns>) with a readable marker
wins; the older ones and every run file whose run id the winner lists are ignored, so a
reader that lists a folder while `compact` works sees each row exactly once. A run marker
named `<run_id>.done` (the first release of the store) holds the fingerprint as its text.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bench.errors import UsageError

MARKER = "flopwatt-history.json"
FORMAT = "flopwatt-history"
FORMAT_VERSION = "1.0"
TABLE_NAMES = ("environment", "cases", "runs")  # the order a run is written in: runs last
MERGED = re.compile(r"^merged-(\d+)$")
TAGGED = re.compile(r"^(?P<stem>.+)\.(?P<schema>[0-9a-f]{12})$")  # <run_id>.<fp> of a marker
MONTH = re.compile(r"^\d{4}-\d{2}$")


def month_of(stamp: datetime) -> str:
    """The month folder of a UTC timestamp: "2026-11"."""
    return f"{stamp.year:04d}-{stamp.month:02d}"


def check_history(history: Path) -> None:
    """UsageError "not a flopwatt history: ..." unless the folder holds a readable marker of a
    format version this flopwatt reads."""
    marker = Path(history) / MARKER
    if not Path(history).is_dir():
        raise UsageError(f"not a flopwatt history: {history} is not a folder")
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"not a flopwatt history: {history} has no {MARKER}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"not a flopwatt history: {marker} is unreadable ({exc})") from None
    version = str(data.get("version", "")) if isinstance(data, dict) else ""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"not a flopwatt history: {marker} is not a flopwatt history marker")
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise UsageError(
            f"{history}: history format {version!r}, this flopwatt reads {FORMAT_VERSION}"
        )


def open_history(history: Path) -> None:
    """Make `history` a history if it is a new or empty folder; check it otherwise. Two
    writers creating it at once write the same marker, each through a rename."""
    history = Path(history)
    if history.is_dir() and not (history / MARKER).exists() and any(history.iterdir()):
        raise UsageError(
            f"not a flopwatt history: {history} holds other files and no {MARKER}; "
            "give a new or empty folder"
        )
    try:
        history.mkdir(parents=True, exist_ok=True)
        if not (history / MARKER).exists():
            marker = {"format": FORMAT, "version": FORMAT_VERSION}
            write_atomic(history / MARKER, json.dumps(marker))
    except OSError as exc:
        raise UsageError(f"cannot write the history {history} ({exc.strerror or exc})") from None
    check_history(history)


def write_atomic(path: Path, text: str) -> None:
    """Write under a name no other writer uses, then rename into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class MonthFiles:
    """The files of one table's month a reader counts, and the run ids they hold."""

    merged: Path | None  # the winning merged file
    covered: frozenset[str]  # run ids the merged file stands for
    runs: dict[str, Path]  # run id -> its own file, for runs the merged file does not cover
    stale: tuple[Path, ...]  # files the winner made obsolete (compact deletes them)
    emptied: frozenset[str] = frozenset()  # covered runs whose rows retention dropped
    markers: dict[str, str] = field(default_factory=dict)  # file stem -> its marker's name
    schemas: dict[str, str] = field(default_factory=dict)  # file stem -> fingerprint in it

    @property
    def files(self) -> list[Path]:
        return ([self.merged] if self.merged else []) + sorted(self.runs.values())

    def marker(self, parquet: Path) -> Path:
        name = self.markers.get(parquet.stem)
        return parquet.with_name(name) if name else done_marker(parquet)

    def schema(self, parquet: Path) -> str:
        """The file's schema fingerprint: from its marker's name, else from its text."""
        return self.schemas.get(parquet.stem) or schema_of(parquet)


def _merged_ids(marker: Path) -> tuple[frozenset[str], frozenset[str]] | None:
    """(run ids the merged file stands for, those of them whose rows retention dropped)."""
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        ids = frozenset(str(r) for r in data["run_ids"])
        return ids, frozenset(str(r) for r in data.get("dropped", ()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # a marker still being written (or damaged): its file is not counted yet


def _markers(names: set[str], stems: set[str]) -> dict[str, tuple[str, str]]:
    """stem -> (its marker's name, the fingerprint the name carries or "")."""
    out: dict[str, tuple[str, str]] = {}
    for name in names:
        if not name.endswith(".done"):
            continue
        base = name[: -len(".done")]
        if base in stems:
            out.setdefault(base, (name, ""))
        elif (tagged := TAGGED.match(base)) and tagged["stem"] in stems:
            out[tagged["stem"]] = (name, tagged["schema"])
    return out


def month_files(folder: Path) -> MonthFiles:
    """What a reader counts in one <table>/<yyyy-mm> folder (see the module docstring)."""
    try:
        names = set(os.listdir(folder))
    except FileNotFoundError:
        names = set()
    stems = {n[: -len(".parquet")] for n in names if n.endswith(".parquet")}
    marked = _markers(names, stems)
    merged = sorted((s for s in marked if MERGED.match(s)), key=lambda s: int(s.split("-")[1]))
    winner, covered, emptied, stale = None, frozenset(), frozenset(), []
    for stem in reversed(merged):
        ids = _merged_ids(folder / marked[stem][0])
        if ids is None:
            continue
        if winner is None:
            winner, (covered, emptied) = folder / f"{stem}.parquet", ids
        else:
            stale.append(folder / f"{stem}.parquet")
    runs = {}
    for stem in sorted(set(marked) - set(merged)):
        if stem in covered:
            stale.append(folder / f"{stem}.parquet")
        else:
            runs[stem] = folder / f"{stem}.parquet"
    markers = {stem: name for stem, (name, _) in marked.items()}
    schemas = {stem: fp for stem, (_, fp) in marked.items() if fp}
    return MonthFiles(winner, covered, runs, tuple(stale), emptied, markers, schemas)


def months(
    history: Path, table: str, since: datetime | None = None, until: datetime | None = None
) -> list[str]:
    """The month folders of a table, oldest first; those wholly before `since` or wholly at
    or after `until` left out."""
    try:
        names = sorted(n for n in os.listdir(Path(history) / table) if MONTH.match(n))
    except FileNotFoundError:
        return []
    if since is not None:
        names = [n for n in names if n >= month_of(since)]
    if until is not None:
        names = [n for n in names if n <= month_of(until - timedelta(microseconds=1))]
    return names


def live_files(
    history: Path, table: str, since: datetime | None = None, until: datetime | None = None
) -> dict[Path, str]:
    """Every file of a table a reader counts, its months pruned by `since` and `until`, with
    the schema fingerprint its marker's name carries ("": see schema_of)."""
    out: dict[Path, str] = {}
    for month in months(history, table, since, until):
        found = month_files(Path(history) / table / month)
        out.update((path, found.schemas.get(path.stem, "")) for path in found.files)
    return out


def run_marker(parquet: Path, schema: str) -> Path:
    """The marker a run's file is counted by once it exists: `<run_id>.<fp>.done`."""
    return parquet.with_name(f"{parquet.stem}.{schema}.done")


def done_marker(parquet: Path) -> Path:
    return parquet.with_suffix(".done")


def schema_of(parquet: Path) -> str:
    """The schema fingerprint (bench.history.schema.fingerprint) the file's marker records;
    "" when it records none."""
    try:
        text = done_marker(parquet).read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    if not MERGED.match(parquet.stem):
        return text
    try:
        return str(json.loads(text).get("schema") or "")
    except (ValueError, AttributeError):
        return ""
