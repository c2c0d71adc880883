"""`flopwatt history add` and `history compact`, and the `--history DIR` of run and health."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bench.errors import UsageError

EXIT_USAGE = 2


def _warn(message: str) -> None:
    print(f"flopwatt: warning: {message}", file=sys.stderr)


def cmd_add(args: argparse.Namespace) -> int:
    """One line per run: added, already there, or skipped with the reason. A bad run folder
    does not stop the others; the exit code is 2 if any was bad input."""
    from bench.history.layout import open_history
    from bench.history.store import add_run_dir

    open_history(args.history)  # a history that is not one stops everything at once
    code = 0
    for run_dir in args.runs:
        try:
            added = add_run_dir(args.history, run_dir, warn=_warn)
        except (UsageError, OSError) as exc:
            print(f"{run_dir}: skipped: {exc}")
            code = EXIT_USAGE
            continue
        print(f"{run_dir}: {'added' if added else 'already there'}")
    return code


def cmd_compact(args: argparse.Namespace) -> int:
    from bench.history.compact import compact

    report = compact(args.history, before=args.before, keep_days=args.keep_days, warn=_warn)
    for line in report.lines():
        print(line)
    for path in report.skipped:
        print(f"left in place (unreadable): {path}")
    return 0


def recorder(history: Path | None) -> Callable[[Path], None] | None:
    """What `--history DIR` does once a run folder is complete: add it. A history that cannot
    be written is a warning; the run folder is kept whatever happens."""
    if history is None:
        return None

    def record(run_dir: Path) -> None:
        from bench.history.store import add_run_dir

        try:
            added = add_run_dir(history, run_dir, warn=_warn)
        except Exception as exc:  # whatever went wrong, the run folder stands
            _warn(f"the run is kept in {run_dir} but was not added to the history: {exc}")
            return
        state = "added to" if added else "already in"
        print(f"{run_dir.name} {state} the history {history}", file=sys.stderr)

    return record


def record_ceiling(history: Path | None, ceiling: object) -> None:
    """`ceiling --history DIR`: add the matmul ceilings as a run of suite "ceiling"
    (bench.history.ceiling_rows); a failure is a warning, ceiling.json is written already."""
    if history is None:
        return
    from bench.execution.session import new_run_id
    from bench.history.ceiling_rows import ceiling_tables
    from bench.history.store import add_tables

    try:
        tables = ceiling_tables(ceiling, new_run_id())
        add_tables(history, tables, warn=_warn)
    except Exception as exc:  # whatever went wrong, ceiling.json stands
        _warn(f"the ceiling was not added to the history: {exc}")
        return
    print(f"{tables.run_id} (ceiling) added to the history {history}", file=sys.stderr)
