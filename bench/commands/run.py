"""`flopwatt run`: what the run command adds around the session's case loop.

The session (bench.execution) measures cases; the health check a nightly suite runs first and
the ceilings every case is divided by belong to commands of their own. This module hands
them to the session, so that the run machinery never imports a command.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.execution.session import RunExtras


def run_extras(search: Any = None, recorded: Callable[[Path], None] | None = None) -> RunExtras:
    """The health preflight and the ceilings, as `flopwatt run` uses them; `search`
    (an InRunSearch) limits the ceiling search of suites that measure their own; `recorded`
    is told the finished run folder (`--history DIR`)."""
    from bench.commands.ceiling.session import ceilings_for_run
    from bench.commands.health.run import preflight

    ceilings = partial(ceilings_for_run, search=search)
    return RunExtras(preflight=preflight, ceilings=ceilings, recorded=recorded)


def in_run_search(
    budget_s: float | None, max_dim: int | None, warmup_s: float | None, no_memory: bool = False
) -> Any:
    """`run --ceiling-budget-s/-max-dim/-warmup-s/-no-memory` as an InRunSearch; None when
    none was given."""
    from bench.commands.ceiling.session import InRunSearch

    if budget_s is None and max_dim is None and warmup_s is None and not no_memory:
        return None
    return InRunSearch(budget_s, max_dim, warmup_s, memory=not no_memory)
