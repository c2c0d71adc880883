"""A collective that fails with every peer still alive: one more meeting names the hung rank.

Two real gloo processes. Rank 1 stays alive but never arrives (as a SIGSTOPped or stuck rank
would); rank 0's Job.late_ranks must say "rank 1 did not reach ..." within its limit, and
must return None when every rank arrives.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import torch.multiprocessing as mp

from bench.execution import job as job_module
from bench.execution.job import Job
from bench.execution.ranks import DistContext, ProcessGroup


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _rank(rank: int, port: str, rank1_meets: bool, results: Any) -> None:
    import torch.distributed as dist

    job_module.LATE_RANK_LIMIT_S = 2.0
    ctx = DistContext(rank, 2, rank, "single", "127.0.0.1", port)
    job = Job(ctx, ProcessGroup(ctx, "cpu", timeout_s=60))
    started = time.monotonic()
    if rank == 0 or rank1_meets:
        lost = job.late_ranks("case 0001-allreduce, after a failed collective,")
        results.put((rank, None if lost is None else str(lost), time.monotonic() - started))
    else:
        time.sleep(4)  # alive, but not at the meeting
    dist.destroy_process_group()


@pytest.mark.parametrize("rank1_meets", [False, True])
def test_a_hung_rank_is_named_after_a_failed_collective(rank1_meets):
    results = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(
        _rank, args=(_free_port(), rank1_meets, results), nprocs=2, start_method="spawn"
    )
    by_rank = {}
    while not results.empty():
        rank, message, took = results.get()
        by_rank[rank] = (message, took)
    message, took = by_rank[0]
    if rank1_meets:
        assert message is None and by_rank[1][0] is None
    else:
        assert message == (
            "rank 1 did not reach case 0001-allreduce, after a failed collective, "
            "within 2 s (dead or hung)"
        )
        assert took < 10  # the late-rank limit, not the 60 s collective timeout
