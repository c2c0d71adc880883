"""The process group, taken from the launcher's environment; no home-made launcher.

torchrun (one node or many) sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT;
SLURM's srun sets SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID, which are mapped when the
torchrun variables are absent. `flopwatt run --nproc N` is a convenience that starts N local
ranks through torch's own elastic launcher (bench.execution.launch).

Every rank runs the same cases; only rank 0 prints and writes. Before each case the ranks
meet at a monitored barrier on a gloo group, so a rank that died or hangs is named within the
collective timeout instead of leaving the others blocked forever.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.execution.peers import is_gone, process_identity

DEFAULT_COLLECTIVE_TIMEOUT_S = 300.0
DEFAULT_MASTER_PORT = "29500"


class RankFailure(RuntimeError):
    """The job lost a rank. `names_ranks`: the message already says which (a meeting's
    verdict); otherwise only that a collective failed, and the caller may try to find out."""

    def __init__(self, message: str, names_ranks: bool = False) -> None:
        super().__init__(message)
        self.names_ranks = names_ranks


@dataclass(frozen=True)
class DistContext:
    """Who this process is in the job, and where that came from."""

    rank: int
    world_size: int
    local_rank: int
    source: str  # "torchrun" | "slurm" | "single"
    master_addr: str | None = None
    master_port: str | None = None

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = DistContext(rank=0, world_size=1, local_rank=0, source="single")


def _int(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise ValueError(f"{name}={environ[name]!r} is not an integer") from None


def context_from_env(environ: Mapping[str, str] | None = None) -> DistContext:
    """The rank context torchrun or srun set, or SINGLE; ValueError on inconsistent values."""
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else rank
        source = "torchrun"
        addr, port = env.get("MASTER_ADDR"), env.get("MASTER_PORT")
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS")
        local = _int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
        source = "slurm"
        addr = env.get("MASTER_ADDR") or env.get("SLURM_LAUNCH_NODE_IPADDR")
        port = env.get("MASTER_PORT", DEFAULT_MASTER_PORT)
    else:
        return SINGLE
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"inconsistent ranks from {source}: rank {rank} of {world}, local {local}")
    if world == 1:
        return DistContext(0, 1, local, source, addr, port)
    if not addr:
        raise ValueError(f"{source} gave no MASTER_ADDR; export MASTER_ADDR=<host of rank 0>")
    return DistContext(rank, world, local, source, addr, port)


class ProcessGroup:
    """The initialised default group plus a gloo group for monitored barriers."""

    def __init__(self, ctx: DistContext, device_kind: str, timeout_s: float) -> None:
        import torch.distributed as dist

        self.ctx = ctx
        self.timeout = datetime.timedelta(seconds=timeout_s)
        self.backend = "nccl" if device_kind == "cuda" else "gloo"
        if ctx.world_size == 1:
            # A group of one still runs collectives (their busbw factor is 0): an in-process
            # store needs no network and no free port.
            dist.init_process_group(
                self.backend, store=dist.HashStore(), rank=0, world_size=1, timeout=self.timeout
            )
        else:
            init = f"tcp://{ctx.master_addr}:{ctx.master_port or DEFAULT_MASTER_PORT}"
            if ctx.source == "torchrun":
                init = "env://"  # torchrun's rendezvous already set MASTER_ADDR/PORT
            dist.init_process_group(
                self.backend,
                init_method=init,
                rank=ctx.rank,
                world_size=ctx.world_size,
                timeout=self.timeout,
            )
        # Object gathers run on gloo; NCCL jobs get a gloo side group for them.
        self.control = dist.new_group(backend="gloo") if self.backend == "nccl" else None
        self._meetings = 0
        # Every rank's process, so that a survivor can tell which peer died (bench.execution.peers).
        self.peers: list[dict[str, Any]] = self.all_gather(process_identity())

    def dead_peers(self) -> list[int]:
        """The other ranks on this host whose process has exited."""
        return [r for r, who in enumerate(self.peers) if r != self.ctx.rank and is_gone(who)]

    def meet(self, what: str, limit_s: float | None = None) -> None:
        """All ranks reach this point within the timeout, or RankFailure naming who did not.

        Built on the job's key-value store rather than a collective: every rank posts an
        arrival key and rank 0 looks up which are missing, so the error can name the dead or
        hung ranks (a barrier that times out only knows that it timed out).
        """
        from torch.distributed import distributed_c10d

        self._meetings += 1
        key = f"flopwatt/meet/{self._meetings}"
        limit = self.timeout.total_seconds()
        if limit_s is not None:
            limit = min(limit, limit_s)
        late = f"did not reach {what} within {limit:g} s (dead or hung)"
        try:
            store = distributed_c10d._get_default_store()
            store.set(f"{key}/{self.ctx.rank}", "1")
            if self.ctx.is_root:
                missing = _wait_for_ranks(store, key, self.ctx.world_size, limit)
                store.set(f"{key}/verdict", ",".join(map(str, missing)) or "go")
            else:
                store.wait([f"{key}/verdict"], datetime.timedelta(seconds=limit))
                verdict = store.get(f"{key}/verdict").decode()
                missing = [] if verdict == "go" else [int(r) for r in verdict.split(",")]
        except (RuntimeError, ValueError) as exc:  # the store itself is gone or timed out
            raise RankFailure(f"rank 0 {late}: {_first_line(exc)}") from exc
        if missing:
            ranks = ", ".join(map(str, missing))
            plural = "s" if len(missing) > 1 else ""
            raise RankFailure(f"rank{plural} {ranks} {late}", names_ranks=True)

    def post(self, what: str, text: str) -> None:
        """Leave this rank's text under `what` in the job's store (see collect)."""
        from torch.distributed import distributed_c10d

        distributed_c10d._get_default_store().set(f"flopwatt/post/{what}/{self.ctx.rank}", text)

    def collect(self, what: str, limit_s: float) -> list[str | None]:
        """On rank 0: each rank's text posted under `what`, None for a rank that did not post
        within limit_s. Through the store, not a collective, so that a dead rank costs only
        its own report (health reports the others and names it)."""
        from torch.distributed import distributed_c10d

        store = distributed_c10d._get_default_store()
        key = f"flopwatt/post/{what}"
        missing = set(_wait_for_ranks(store, key, self.ctx.world_size, limit_s))
        return [
            None if rank in missing else store.get(f"{key}/{rank}").decode()
            for rank in range(self.ctx.world_size)
        ]

    def receive(self, what: str, limit_s: float) -> str | None:
        """Rank 0's text posted under `what`, or None if it did not come within limit_s."""
        from torch.distributed import distributed_c10d

        store = distributed_c10d._get_default_store()
        key = f"flopwatt/post/{what}"
        return None if _wait_for_ranks(store, key, 1, limit_s) else store.get(f"{key}/0").decode()

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's object on rank 0 (None elsewhere), over the gloo group."""
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.ctx.world_size if self.ctx.is_root else None
        dist.gather_object(obj, out, dst=0, group=self.control)
        return out

    def all_gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.ctx.world_size
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _wait_for_ranks(store: Any, key: str, world_size: int, limit_s: float) -> list[int]:
    """The ranks whose arrival key is still missing after limit_s (polled every 10 ms)."""
    deadline = time.monotonic() + limit_s
    missing = list(range(world_size))
    while missing:
        missing = [r for r in missing if not store.check([f"{key}/{r}"])]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return missing


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def fingerprint(args: Mapping[str, Any]) -> str:
    """A short hash of what a rank was asked to run, to compare across ranks."""
    text = json.dumps(args, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_same_plan(group: ProcessGroup, args: Mapping[str, Any]) -> None:
    """Refuse to start when ranks were given different suites or arguments."""
    mine = fingerprint(args)
    prints = group.all_gather(mine)
    odd = [rank for rank, value in enumerate(prints) if value != prints[0]]
    if odd:
        raise ValueError(
            f"ranks {', '.join(map(str, odd))} were given other arguments than "
            "rank 0; start every rank with the same command"
        )


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """argv without --nproc N (or --nproc=N), to pass on to each rank."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out
