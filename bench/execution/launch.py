"""`flopwatt run --nproc N`: N local ranks under torch's elastic agent, run in this process.

The agent is torchrun's own (`--standalone`), so the ranks see exactly what torchrun gives
them. It runs here rather than as a `python -m torch.distributed.run` child because a rank
that dies makes torchrun print a Python traceback and exit 1; here its failure report becomes
flopwatt's exit code and at most one line: 3 (`rank_failure`) when a rank died or hung, the
ranks' own code (2 bad input, 130 interrupted) otherwise. The agent's log lines are silenced
(the ranks and this line say what happened); `LOGLEVEL=INFO` brings them back.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from bench.execution.ranks import strip_nproc

EXIT_RANK_FAILURE = 3  # bench.execution.job's, repeated: importing it here would load torch early
EXIT_INTERRUPTED = 130
# Exit codes a flopwatt rank chooses itself; anything else (a signal, a crash) is a death.
OWN_CODES = (1, 2, EXIT_RANK_FAILURE, EXIT_INTERRUPTED)


def verdict(failures: Mapping[int, Any]) -> tuple[int, str | None]:
    """(exit code, the line to print or None) from the agent's failed ranks.

    `failures` maps a rank to its torch ProcessFailure (`exitcode`, negative for a signal,
    `pid`). A rank that exited 3 has already named the dead rank; otherwise the first rank
    that died is named here. With no death, rank 0's code (else the lowest rank's) is the
    job's: every rank chose it and printed why.
    """
    # The launcher stops the survivors with SIGTERM: a rank killed otherwise died first.
    died = sorted(
        (f.exitcode == -signal.SIGTERM, r)
        for r, f in failures.items()
        if f.exitcode not in OWN_CODES
    )
    if any(f.exitcode == EXIT_RANK_FAILURE for f in failures.values()):
        return EXIT_RANK_FAILURE, None
    if died:
        rank = died[0][1]
        failure = failures[rank]
        how = (
            f"was killed by signal {-failure.exitcode} ({failure.signal_name()})"
            if failure.exitcode < 0
            else f"exited with code {failure.exitcode}"
        )
        return EXIT_RANK_FAILURE, (
            f"flopwatt: error: rank {rank} (process {failure.pid}) {how}; "
            "the launcher stopped the other ranks"
        )
    return failures[min(failures)].exitcode, None


def _quiet_agent_logs() -> None:
    """The agent's warnings and errors restate what the ranks and verdict() say."""
    if "LOGLEVEL" in os.environ:
        return
    prefixes = ("torch.distributed.elastic", "torch.distributed.launcher", "torch.distributed.run")
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(prefixes):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def spawn_local(nproc: int, argv: Sequence[str]) -> int:
    """Run `flopwatt <argv>` as nproc local ranks; return the job's exit code."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "-m", "bench", *strip_nproc(argv)]
    )
    _quiet_agent_logs()
    try:
        run(args)  # torchrun's main without its @record wrapper, which prints the traceback
    except ChildFailedError as exc:
        code, line = verdict(exc.failures)
        if line is not None:
            print(line, file=sys.stderr)
        return code
    except (SignalException, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return 0
