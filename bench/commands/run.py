"""`flopwatt run`: what the run command adds around the session's case loop.

The session (bench.execution) measures cases; the health check a nightly suite runs first and
the ceilings every case is divided by belong to commands of their own. This module hands
them to the session, so that the run machinery never imports a command.
"""

from __future__ import annotations

from bench.execution.session import RunExtras


def run_extras() -> RunExtras:
    """The health preflight and the measured ceilings, as `flopwatt run` uses them."""
    from bench.commands.ceiling.session import ceilings_for_run
    from bench.commands.health.run import preflight

    return RunExtras(preflight=preflight, ceilings=ceilings_for_run)
