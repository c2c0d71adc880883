"""Which peer ranks died: each rank's process identity, checked later on the same host.

torch's elastic launcher (`--nproc`, torchrun) answers a dead rank by sending SIGTERM to the
others within a tenth of a second, usually before any collective has failed. A survivor that
takes that SIGTERM for a user's Ctrl-C would mark the run `interrupted`; one that looks up
whether a peer's process is gone can say which rank died. Only peers on this host can be
looked up (through /proc); a peer on another node is reported by the meeting point instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def _stat(pid: int, proc: Path) -> tuple[str, int] | None:
    """(state, start time in ticks since boot) of a process, or None when it does not exist."""
    try:
        text = (proc / str(pid) / "stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and ')'
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    except (OSError, ValueError, IndexError):
        return None


def process_identity(proc: Path = Path("/proc")) -> dict[str, Any]:
    """This process as a peer will look for it: host, pid, and its start time, which tells
    the process from a later one that reuses the pid (None where /proc is missing)."""
    pid = os.getpid()
    stat = _stat(pid, proc)
    return {"host": socket.gethostname(), "pid": pid, "start": stat[1] if stat else None}


def is_gone(identity: dict[str, Any], proc: Path = Path("/proc")) -> bool:
    """True when the process ran on this host and has exited (a zombie counts as exited).

    False when it is alive, and when this cannot be told: another host, no /proc.
    """
    if identity.get("start") is None or identity.get("host") != socket.gethostname():
        return False
    if not proc.is_dir():
        return False
    stat = _stat(int(identity["pid"]), proc)
    return stat is None or stat[0] in ("Z", "X") or stat[1] != identity["start"]


def describe_dead(ranks: list[int], identities: list[dict[str, Any]]) -> str:
    """'rank 1 died (process 9555 is gone)', for the one-line error."""
    pids = ", ".join(str(identities[r]["pid"]) for r in ranks)
    if len(ranks) == 1:
        return f"rank {ranks[0]} died (process {pids} is gone)"
    return f"ranks {', '.join(map(str, ranks))} died (processes {pids} are gone)"
