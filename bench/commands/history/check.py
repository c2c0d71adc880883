"""`flopwatt history check`: the verdicts of the latest run of each testbed (or every run
since a date) against its own history, as a table, Markdown or JSON, with exit codes for a
nightly job (0 no regression, 1 regression, 2 bad input) or, with --nagios, for a monitoring
system (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, the status line first).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.errors import UsageError


def add_check(actions: Any) -> None:
    p = actions.add_parser("check", help="judge the latest runs against their history")
    p.add_argument("--history", type=Path, metavar="DIR", help="the history folder")
    p.add_argument(
        "--testbed", action="extend", nargs="+", default=[], metavar="ID", help="only these"
    )
    p.add_argument("--since", metavar="DATE", help="judge every run since DATE (UTC, ISO 8601)")
    p.add_argument("--format", choices=("text", "json", "md"), default="text")
    p.add_argument(
        "--nagios", action="store_true", help="exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
    )


def parse_since(text: str | None) -> datetime | None:
    """An ISO 8601 date or time; without a zone it is UTC."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r}: not a date, e.g. 2026-03-01 or 2026-03-01T02:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def cmd_check(args: argparse.Namespace) -> int:
    """Bad input raises UsageError: bench.cli prints it, exit 2 (with --nagios: UNKNOWN, 3)."""
    from bench.commands.history import check_view
    from bench.history.check import run_check

    if args.history is None:
        raise UsageError("history check needs --history DIR")
    since = parse_since(args.since)

    def warn(message: str) -> None:
        print(f"flopwatt: warning: {message}", file=sys.stderr)

    result = run_check(args.history, args.testbed or None, since, warn)
    code, line = result.nagios()
    if args.nagios:
        print(line)
    if args.format == "json":
        sys.stdout.write(check_view.as_json(result))
    elif args.format == "md":
        sys.stdout.write(check_view.markdown(result))
    else:
        check_view.print_text(result)
    return code if args.nagios else result.exit_code()
