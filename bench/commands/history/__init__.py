"""`flopwatt history ACTION`: the nightly history's command group (docs/history.md).

The store's actions (`add`, `compact`) live in bench.commands.history.store_commands; the
verdicts (`check`) go beside them as an action of this same group. The module level imports
only the standard library, so `flopwatt --help` stays cheap.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.errors import UsageError


def _keep_days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def add_history_option(parser: argparse.ArgumentParser) -> None:
    """`--history DIR` on run, health and ceiling: add the finished result to a history."""
    parser.add_argument(
        "--history",
        type=Path,
        metavar="DIR",
        help="add the finished run to this history folder (created if new; docs/history.md)",
    )


def add_history_commands(sub: Any) -> None:
    """Add the `history` group and its actions to the main parser's subparsers."""
    group = sub.add_parser("history", help="the nightly history: add runs, compact, check")
    actions = group.add_subparsers(
        dest="history_command", metavar="ACTION", parser_class=type(group)
    )

    add = actions.add_parser("add", help="add run folders to a history (same run twice: no change)")
    add.add_argument("--history", type=Path, required=True, metavar="DIR")
    add.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")

    compact = actions.add_parser("compact", help="merge closed months into one file per table")
    compact.add_argument("--history", type=Path, required=True, metavar="DIR")
    compact.add_argument(
        "--before", metavar="YYYY-MM", help="merge the months before this one (default: this month)"
    )
    compact.add_argument(
        "--keep-days",
        type=_keep_days,
        metavar="N",
        help="drop the case and environment rows of runs older than N days",
    )
    from bench.commands.history.check import add_check

    add_check(actions)


def cmd_history(args: argparse.Namespace) -> int:
    from bench.commands.history import store_commands
    from bench.commands.history.check import cmd_check

    handlers = {
        "add": store_commands.cmd_add,
        "compact": store_commands.cmd_compact,
        "check": cmd_check,
    }
    if args.history_command not in handlers:
        raise UsageError(f"history needs an action: {', '.join(handlers)}")
    return handlers[args.history_command](args)
