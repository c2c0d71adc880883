"""`flopwatt history ...`: the nightly history's commands (check; add and compact come
with the store). The module level imports only the standard library."""

from __future__ import annotations

import argparse
from typing import Any

from bench.errors import UsageError


def add_history_commands(sub: Any) -> None:
    """Add the `history` group and its actions to the main parser's subparsers."""
    history = sub.add_parser("history", help="the nightly history: check verdicts and trends")
    actions = history.add_subparsers(
        dest="history_command", metavar="ACTION", parser_class=type(history)
    )
    from bench.commands.history.check import add_check

    add_check(actions)


def cmd_history(args: argparse.Namespace) -> int:
    from bench.commands.history.check import cmd_check

    actions = {"check": cmd_check}
    if args.history_command not in actions:
        raise UsageError(f"history needs an action: {', '.join(actions)}")
    return actions[args.history_command](args)
