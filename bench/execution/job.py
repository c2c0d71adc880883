"""Job: the ranks of one run, and how their results reach rank 0's run folder.

A one-process run is a job of one rank with no process group (a group of one is opened when
a collective needs it). In a multi-rank job every rank runs every case; before each case the
ranks meet at a monitored barrier (so a dead or hung rank is named within the timeout); after
it, per-device results (a matmul on each GPU) are gathered to rank 0 and written one line per
rank, while a collective's result, already reduced across ranks, is written once.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.errors import UsageError
from bench.execution.outcome import CaseOutcome, first_line
from bench.execution.peers import describe_dead
from bench.execution.ranks import SINGLE, DistContext, ProcessGroup, RankFailure
from bench.results.record import CaseResult, RunWriter

EXIT_RANK_FAILURE = 3
# After a collective failed: how long the ranks still alive get to meet, naming a hung one.
LATE_RANK_LIMIT_S = 30.0


class NullWriter:
    """What a non-root rank writes: nothing. Same interface as RunWriter."""

    def __init__(self) -> None:
        self.results: list[CaseResult] = []
        self.meta: dict[str, Any] = {}
        self.run_dir = None

    def append(self, result: CaseResult, samples: Any = None, trace: Any = None) -> None:
        self.results.append(result)

    def update_meta(self, **fields: Any) -> None:
        self.meta.update(fields)

    def finish(self, status: str, **extra: Any) -> None:
        """Nothing to close."""


class Job:
    """This process's place in the run."""

    def __init__(self, ctx: DistContext = SINGLE, group: ProcessGroup | None = None) -> None:
        self.ctx = ctx
        self.group = group

    @classmethod
    def open(cls, ctx: DistContext, device_kind: str, timeout_s: float, needs_group: bool) -> Job:
        """A group for multi-rank jobs, and for one rank when a collective needs one."""
        if not (ctx.distributed or needs_group):
            return cls(ctx)
        return cls(ctx, ProcessGroup(ctx, device_kind, timeout_s))

    @property
    def is_root(self) -> bool:
        return self.ctx.is_root

    @property
    def world_size(self) -> int:
        return self.ctx.world_size

    def writer(self, run_dir: Any, meta: dict[str, Any]) -> RunWriter | NullWriter:
        return RunWriter(run_dir, meta) if self.is_root else NullWriter()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's obj, on rank 0 (elsewhere an empty list)."""
        if self.group is None or not self.ctx.distributed:
            return [obj]
        try:
            return self.group.gather(obj) or []
        except RuntimeError as exc:  # a peer died mid-gather: say so, keep what is written
            raise RankFailure(f"lost a rank while gathering results: {first_line(exc)}") from exc

    def collect(self, what: str, obj: Any, limit_s: float) -> list[Any]:
        """Every rank's JSON-able obj on rank 0 ([] elsewhere), None for a rank that did not
        post within limit_s: a dead rank costs only its own part. JSON, never pickle."""
        if self.group is None or not self.ctx.distributed:
            return [obj]
        self.group.post(what, json.dumps(obj, default=str))
        if not self.is_root:
            return []
        return [None if t is None else json.loads(t) for t in self.group.collect(what, limit_s)]

    def share(self, what: str, obj: Any, limit_s: float) -> Any:
        """Rank 0's obj on every rank (the others' obj is ignored); RankFailure if it never
        comes."""
        if self.group is None or not self.ctx.distributed:
            return obj
        if self.is_root:
            self.group.post(what, json.dumps(obj, default=str))
            return obj
        text = self.group.receive(what, limit_s)
        if text is None:
            raise RankFailure(f"rank 0 did not send {what} within {limit_s:g} s (dead or hung)")
        return json.loads(text)

    def meet(self, what: str, limit_s: float | None = None) -> None:
        if self.group is not None and self.ctx.distributed:
            self.group.meet(what, limit_s)

    def lost_ranks(self, wait_s: float = 0.0) -> RankFailure | None:
        """A RankFailure naming the peers whose process died, or None when none did (or none
        that this host can see: execution.peers). `wait_s` polls that long: a dead peer's sockets
        close a moment before its process is seen to exit."""
        if self.group is None or not self.ctx.distributed:
            return None
        deadline = time.monotonic() + wait_s
        while not (dead := self.group.dead_peers()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return RankFailure(describe_dead(dead, self.group.peers)) if dead else None

    def late_ranks(self, what: str) -> RankFailure | None:
        """After a collective failed with no peer dead: one more meeting, which names a rank
        that is alive but hung (stopped, stuck in a kernel); None when every rank arrives."""
        try:
            self.meet(what, LATE_RANK_LIMIT_S)
        except RankFailure as exc:
            return exc if exc.names_ranks else None
        return None

    def check_same_plan(self, args: dict[str, Any]) -> None:
        if self.group is not None and self.ctx.distributed:
            from bench.execution.ranks import check_same_plan

            try:
                check_same_plan(self.group, args)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            except RuntimeError as exc:
                raise RankFailure(f"lost a rank at start-up: {first_line(exc)}") from exc

    def deliver(
        self, outcome: CaseOutcome, collective: bool, writer: RunWriter | NullWriter
    ) -> None:
        """Write a case: once for a collective, one line per rank for per-device kernels."""
        if collective or not self.ctx.distributed:
            writer.append(outcome.result, outcome.sample_columns(), outcome.trace_columns())
            return
        mine = (outcome.result.leaves(), outcome.sample_columns(), outcome.trace_columns())
        for rank, (fields, samples, trace) in enumerate(self.gather(mine)):
            case_id = f"{fields['case_id']}-r{rank}"
            result = CaseResult.from_leaves({**fields, "rank": rank, "case_id": case_id})
            writer.append(result, samples, trace)

    def close(self) -> None:
        if self.group is not None:
            self.group.close()
