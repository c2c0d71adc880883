"""--nproc's verdict on the elastic agent's failures, and telling a dead peer from a live one."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from bench.execution.launch import EXIT_RANK_FAILURE, verdict
from bench.execution.peers import describe_dead, is_gone, process_identity


def _stat(pid: int) -> list[str]:
    """proc(5) stat fields from the state on (index 0 is field 3)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _failure(rank: int, exitcode: int) -> ProcessFailure:
    return ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=exitcode, error_file="")


def test_a_rank_that_named_the_dead_one_leaves_nothing_to_add():
    failures = {1: _failure(1, -signal.SIGKILL), 0: _failure(0, EXIT_RANK_FAILURE)}
    assert verdict(failures) == (3, None)


def test_a_killed_rank_is_named_before_the_ones_the_launcher_stopped():
    failures = {0: _failure(0, -signal.SIGTERM), 1: _failure(1, -signal.SIGKILL)}
    code, line = verdict(failures)
    assert code == 3
    assert line == (
        "flopwatt: error: rank 1 (process 1001) was killed by signal 9 (SIGKILL); "
        "the launcher stopped the other ranks"
    )


def test_a_crash_is_a_rank_failure_and_flopwatt_codes_pass_through():
    code, line = verdict({1: _failure(1, 134), 0: _failure(0, -signal.SIGTERM)})
    assert code == 3 and "rank 1 (process 1001) exited with code 134" in line
    assert verdict({0: _failure(0, 2), 1: _failure(1, 2)}) == (2, None)  # bad input everywhere
    assert verdict({1: _failure(1, 130), 0: _failure(0, 130)}) == (130, None)


def test_a_peer_is_gone_once_its_process_has_exited():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = process_identity()
        assert me["pid"] == os.getpid() and me["start"] is not None and not is_gone(me)
        peer = {**me, "pid": child.pid}
        peer["start"] = int(_stat(child.pid)[19])
        assert not is_gone(peer)
        child.kill()
        child.wait()
        assert is_gone(peer)
        assert describe_dead([1], [me, peer]) == f"rank 1 died (process {child.pid} is gone)"
    finally:
        child.kill()
        child.wait()


def test_a_zombie_or_a_reused_pid_is_gone_and_another_host_is_never_judged():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    me = process_identity()
    zombie_start, deadline = None, time.monotonic() + 30
    while zombie_start is None and time.monotonic() < deadline:  # exited, not reaped: Z
        stat = _stat(child.pid)
        if stat[0] == "Z":
            zombie_start = int(stat[19])
    assert is_gone({**me, "pid": child.pid, "start": zombie_start})
    child.wait()
    assert is_gone({**me, "start": me["start"] + 1})  # this pid, started at another time
    assert not is_gone({**me, "host": "elsewhere", "pid": child.pid})
    assert not is_gone({**me, "start": None})
