"""Multi-rank runs on gloo: exact #wrong counts, flopwatt run --nproc, dead and hung ranks."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from bench.measuring import metrics
from bench.results.record import load_run

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
FAST = [
    "--device",
    "cpu",
    "--timeout-s",
    "0.5",
    "--min-time-s",
    "0.05",
    "--warmup-s",
    "0.05",
    "--idle-s",
    "0",
]


COLLECTIVES = ("allreduce", "allgather", "reduce_scatter")


def _corrupt_worker(rank, world, store_path, results):
    import torch.distributed as dist

    from kernels import allreduce

    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=world)
    for collective in COLLECTIVES:
        case = allreduce.make_case(
            {"bytes": 4096}, "fp32", "cpu", options={"collective": collective, "place": "out"}
        )
        case = case.__class__(case.kernel, case.params, case.dtype, case.device, world)
        buffers = allreduce._Buffers(case, "cpu")
        for k in (0, 7):
            results[(collective, rank, k)] = buffers.wrong_over_ranks(corrupt=k * (rank == 1))
    dist.destroy_process_group()


def test_a_corrupted_rank_gives_the_exact_wrong_count(tmp_path):
    # k wrong inputs on rank 1 of 2: allreduce spoils k outputs on both ranks; allgather
    # copies rank 1's k wrong elements to both ranks; reduce-scatter's first k elements are
    # rank 0's output only. #wrong is summed over ranks, so every rank reports the total.
    expected = {"allreduce": 2, "allgather": 2, "reduce_scatter": 1}
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_corrupt_worker, args=(2, tmp_path / "store", results), nprocs=2)
        for collective in COLLECTIVES:
            for k in (0, 7):
                want = expected[collective] * k
                assert results[(collective, 0, k)] == results[(collective, 1, k)] == want


def flopwatt_nproc(n, *args, out):
    return subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--nproc", str(n), *FAST, *args, "--out", str(out)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a test can kill the launcher and every rank at once
    )


@pytest.mark.parametrize("n", [2, 4])
def test_nproc_runs_the_sweep_end_to_end(tmp_path, n):
    proc = flopwatt_nproc(
        n,
        "--kernel",
        "allreduce,matmul,scaling",
        "--step",
        "64x64x64/64Ki",
        "--scaling",
        "weak,strong",
        "--overlap",
        "seq",
        "--shape",
        "64x64x64",
        "--dtype",
        "fp32",
        "--bytes",
        "8,4Ki,1Mi",
        "--collective",
        "allreduce,allgather,reduce_scatter",
        "--place",
        "out,in",
        out=tmp_path,
    )
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    (run_dir,) = tmp_path.iterdir()
    run = load_run(run_dir)
    assert run.meta["world_size"] == n and len(run.meta["ranks"]) == n
    cases = run.cases
    coll = cases[cases["identity.kernel"] == "allreduce"]
    assert len(coll) == 3 * 3 * 2 and (coll["identity.status"] == "ok").all()
    assert (coll["collective.wrong_elements"] == 0).all()
    for _, c in coll.iterrows():
        factor = metrics.bus_factor(c["identity.params.collective"], n)
        algbw, time_mean_s = c["collective.algbw_bytes_per_s"], c["timing.time_mean_s"]
        assert c["collective.bus_factor"] == factor
        assert c["collective.busbw_bytes_per_s"] == algbw * factor  # to the last digit
        assert algbw == c["work.bytes"] / time_mean_s
        by_rank = c["collective.time_by_rank_s"]
        assert c["collective.rank_reduction"] == "max" and time_mean_s == max(by_rank)
        assert len(by_rank) == n
    scaling = cases[cases["identity.kernel"] == "scaling"]
    assert len(scaling) == 2 and (scaling["identity.status"] == "ok").all()
    expected_ns = [1, 2] if n == 2 else [1, 2, 4]
    for _, c in scaling.iterrows():
        rows = c["collective.scaling"]
        assert [row["n"] for row in rows] == expected_ns  # E(N) for every N
        assert rows[0]["efficiency"] == 1.0 and all(row["efficiency"] > 0 for row in rows)
        assert c["collective.scaling_efficiency"] == rows[-1]["efficiency"]
        assert len(rows[-1]["step_time_by_rank_s"]) == n
    mm = cases[cases["identity.kernel"] == "matmul"]
    assert sorted(mm["identity.rank"]) == list(range(n))  # one line per rank's device
    assert "# Avg bus bandwidth" in out and f"{n} ranks" in out


def _rank_pid(marker: str, local_rank: int) -> int | None:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and f"LOCAL_RANK={local_rank}".encode() in environ:
            return int(pid)
    return None


def _wait_for_cases(out: Path, n: int, proc, limit_s=120.0) -> Path:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        runs = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
        cases = runs[0] / "cases.jsonl" if runs else None
        if cases is not None and cases.exists() and len(cases.read_text().splitlines()) >= n:
            return runs[0]
        time.sleep(0.1)
    raise AssertionError("no cases written")


MANY_SIZES = ",".join(str(8 * 2**i) for i in range(18))


def _kill_rank_after_cases(proc, out: Path, local_rank: int, n: int = 2) -> tuple[Path, int]:
    """SIGKILL one rank once rank 0 has written n cases; the run folder and the dead pid."""
    run_dir = _wait_for_cases(out, n, proc)
    victim = _rank_pid(str(out), local_rank)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    return run_dir, victim


def _assert_rank_failure_kept(run_dir: Path, n_before: int) -> None:
    """run.json says rank_failure; every case written is a real result (none 'failed' because
    its peer vanished mid-collective)."""
    lines = (run_dir / "cases.jsonl").read_text().splitlines()
    assert len(lines) >= n_before
    assert all(json.loads(line)["identity"]["status"] == "ok" for line in lines)
    meta = load_run(run_dir).meta
    assert meta["status"] == "rank_failure" and meta["n_cases"] == len(lines)


@pytest.mark.slow
def test_a_killed_rank_under_nproc_exits_3_with_one_line(tmp_path):
    out = tmp_path / "killed"
    proc = flopwatt_nproc(
        2, "--kernel", "allreduce", "--bytes", MANY_SIZES, "--collective-timeout-s", "10", out=out
    )
    run_dir, victim = _kill_rank_after_cases(proc, out, 1)
    started = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - started < 15
    assert proc.returncode == 3, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"flopwatt: error: rank 1 died (process {victim} is gone); rank 0 stops"]
    assert "Traceback" not in stdout + stderr and "torch/distributed" not in stderr
    _assert_rank_failure_kept(run_dir, 2)


@pytest.mark.slow
def test_a_killed_rank_0_is_named_by_the_survivor(tmp_path):
    out = tmp_path / "root"
    proc = flopwatt_nproc(
        2, "--kernel", "allreduce", "--bytes", MANY_SIZES, "--collective-timeout-s", "10", out=out
    )
    run_dir, victim = _kill_rank_after_cases(proc, out, 0)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"flopwatt: error: rank 0 died (process {victim} is gone); rank 1 stops"]
    assert "Traceback" not in stderr
    # rank 0 wrote run.json: killed with -9, it still says running; its cases are kept
    assert load_run(run_dir).meta["status"] == "running"
    assert len((run_dir / "cases.jsonl").read_text().splitlines()) >= 2


@pytest.mark.slow
def test_a_killed_rank_under_torchrun_ends_rank_0_with_exit_3(tmp_path):
    # torchrun's own exit code and report are torchrun's (1, with its ChildFailedError);
    # flopwatt's part is rank 0's: exit 3 (torchrun reports it), its line, run.json.
    out = tmp_path / "torchrun"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "bench",
        "run",
        *FAST,
        "--kernel",
        "allreduce",
        "--bytes",
        MANY_SIZES,
        "--collective-timeout-s",
        "10",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    run_dir, victim = _kill_rank_after_cases(proc, out, 1)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"flopwatt: error: rank 1 died (process {victim} is gone); rank 0 stops" in stderr
    assert "exitcode  : 3" in stderr  # torchrun's report of rank 0
    _assert_rank_failure_kept(run_dir, 2)


@pytest.mark.slow
def test_a_hung_rank_is_named_within_the_collective_timeout(tmp_path):
    out = tmp_path / "hung"
    proc = flopwatt_nproc(
        2, "--kernel", "allreduce", "--bytes", MANY_SIZES, "--collective-timeout-s", "4", out=out
    )
    run_dir = _wait_for_cases(out, 2, proc)
    victim = _rank_pid(str(out), 1)
    os.kill(victim, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        status = None
        while time.monotonic() - stopped < 40 and status != "rank_failure":
            time.sleep(0.2)
            status = json.loads((run_dir / "run.json").read_text())["status"]
        # at most: the collective that hangs times out, then the barrier names the rank
        took = time.monotonic() - stopped
        assert status == "rank_failure" and took < 3 * 4 + 10, (status, took)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun waits 30 s for a stopped worker
    _, err = proc.communicate(timeout=30)
    assert "flopwatt: error: rank 1 did not reach case" in " ".join(err.split())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_given_different_arguments_refuse_to_start(tmp_path):
    port = str(_free_port())
    procs = []
    for rank, dtype in ((0, "fp32"), (1, "bf16")):
        env = {
            **ENV,
            "RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench",
                    "run",
                    *FAST,
                    "--kernel",
                    "matmul",
                    "--shape",
                    "32x32x32",
                    "--dtype",
                    dtype,
                    "--out",
                    str(tmp_path),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [2, 2]
    assert all("were given other arguments than rank 0" in e for e in errors)
    assert not list(tmp_path.glob("*/cases.jsonl"))
