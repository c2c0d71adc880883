"""scripts/gpu-check.sh and its step runner on a CPU: the no-GPU exit, the arguments, the time
plan, and the timeout / retry / verdict machinery with real child processes."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"
spec = importlib.util.spec_from_file_location(
    "gpu_check_step", ROOT / "scripts" / "gpu_check_step.py"
)
step = importlib.util.module_from_spec(spec)
sys.modules["gpu_check_step"] = step  # dataclasses look their module up there
spec.loader.exec_module(step)


def check(*args, path=None):
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120
    )


def plan(*args):
    done = check("--plan", *args)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:-1]]
    return {name: (int(expected), int(limit)) for name, expected, limit in rows}


# ---- arguments and the no-GPU exit


def test_without_nvidia_smi_the_check_exits_2_in_seconds_and_writes_nothing(tmp_path):
    path = f"{Path(shutil.which('bash')).parent}:/usr/bin:/bin"
    if shutil.which("nvidia-smi", path=path):
        pytest.skip("this machine has nvidia-smi")
    started = time.monotonic()
    done = check("--quick", str(tmp_path / "out"), path=path)
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr and "nvidia-smi" in done.stderr
    assert time.monotonic() - started < 5
    assert not (tmp_path / "out").exists()


def test_with_nvidia_smi_but_no_cuda_in_torch_it_exits_2(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (fake / "nvidia-smi").chmod(0o755)
    done = check(str(tmp_path / "out"), path=f"{fake}:{Path(sys.executable).parent}:/usr/bin:/bin")
    if done.returncode != 2 or "torch.cuda.is_available() is False" not in done.stderr:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA device")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "torch.cuda.is_available() is False" in done.stderr
    assert not (tmp_path / "out").exists()


def fake_tool(tmp_path, name):
    """A directory holding an executable `name` that does nothing, for PATH."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / name).write_text("#!/bin/sh\nexit 0\n")
    (fake / name).chmod(0o755)
    return fake


@pytest.mark.parametrize("tool", ["amd-smi", "rocm-smi"])
def test_with_amd_tools_but_no_rocm_torch_it_exits_2(tmp_path, tool):
    fake = fake_tool(tmp_path, tool)
    path = f"{fake}:{Path(sys.executable).parent}:/usr/bin:/bin"
    if shutil.which("nvidia-smi", path=path):
        pytest.skip("this machine has nvidia-smi, which is taken first")
    done = check(str(tmp_path / "out"), path=path)
    if done.returncode != 2 or "no ROCm device" not in done.stderr:
        import torch

        if torch.cuda.is_available() and torch.version.hip:
            pytest.skip("this machine has a ROCm device")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no ROCm device" in done.stderr and "torch is not a ROCm build" in done.stderr
    assert not (tmp_path / "out").exists()


def test_on_rocm_amd_smi_replaces_nvidia_smi_with_the_same_limits(tmp_path):
    path = f"{fake_tool(tmp_path, 'amd-smi')}:{Path(shutil.which('bash')).parent}:/usr/bin:/bin"
    if shutil.which("nvidia-smi", path=path):
        pytest.skip("this machine has nvidia-smi, which is taken first")
    for args in ((), ("--quick",)):
        done = check("--plan", *args, path=path)
        rows = [line.split() for line in done.stdout.splitlines()[1:-1]]
        amd = {name: (int(e), int(lim)) for name, e, lim in rows}
        nvidia = plan(*args)
        assert "amd-smi" in amd and "nvidia-smi" not in amd
        assert amd.pop("amd-smi") == nvidia.pop("nvidia-smi") and amd == nvidia
        assert "(amd GPU tools found)" in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [(["--bogus"], "unknown option --bogus"), (["a", "b"], "one OUT_DIR only")],
)
def test_bad_arguments_exit_2_with_the_usage(args, message):
    done = check(*args)
    assert done.returncode == 2
    assert message in done.stderr and "usage: bash scripts/gpu-check.sh [--quick]" in done.stderr


def test_help_prints_the_usage():
    done = check("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage:")


def test_the_plan_keeps_every_limit_at_13x_and_the_totals_in_budget():
    full, quick = plan(), plan("--quick")
    assert list(full) == list(quick)  # the same steps, quick or not
    assert {"environment", "nvidia-smi", "tests", "summary", "archive"} <= set(full)
    for steps, budget in ((full, 360), (quick, 120)):
        for name, (expected, limit) in steps.items():
            assert limit >= 1.3 * expected, (name, expected, limit)
        assert sum(expected for expected, _ in steps.values()) <= budget
    assert all(quick[name][0] <= full[name][0] for name in full)
    assert "150 s deadline" in check("--plan", "--quick").stdout


# ---- the step runner


def run_step(tmp_path, command, limit=10.0, deadline=None, name="demo"):
    argv = ["--name", name, "--limit", str(limit), "--log", str(tmp_path / "log")]
    argv += ["--verdicts", str(tmp_path / "verdicts.jsonl")]
    if deadline is not None:
        argv += ["--deadline", str(deadline)]
    rc = step.main([*argv, "--", "bash", "-c", command])
    lines = (tmp_path / "verdicts.jsonl").read_text().splitlines()
    return rc, json.loads(lines[-1]), (tmp_path / "log").read_text()


def test_a_passing_step_has_one_verdict_line(tmp_path, capsys):
    rc, record, log = run_step(tmp_path, "echo hello")
    assert rc == 0 and record["verdict"] == "PASS" and record["attempts"][0]["rc"] == 0
    assert "hello\n" in log and "verdict: demo PASS (rc 0, " in log
    assert "verdict: demo PASS" in capsys.readouterr().out


def test_a_step_killed_by_its_limit_keeps_its_last_line_and_is_retried_once(tmp_path):
    started = time.monotonic()
    rc, record, log = run_step(tmp_path, "echo last words; sleep 30", limit=1)
    assert time.monotonic() - started < 10
    assert rc == 124 and record["verdict"] == "TIMEOUT"
    assert [a["outcome"] for a in record["attempts"]] == ["TIMEOUT", "TIMEOUT"]
    assert log.count("last words") == 2 and "retrying once" in log
    assert "verdict: demo TIMEOUT (rc 124" in log and "first try TIMEOUT rc 124" in log


def test_a_process_that_ignores_sigterm_does_not_outlive_its_step(tmp_path):
    pids = tmp_path / "pids"
    command = f"(trap '' TERM; sleep 60 & echo $! >> {pids}; wait) & wait"
    started = time.monotonic()
    rc, record, _ = run_step(tmp_path, command, limit=1, deadline=time.time() + 3)
    assert rc == 124 and len(record["attempts"]) == 1
    assert time.monotonic() - started < 1 + step.KILL_AFTER_S + 4  # the pipe did not hang it
    (pid,) = (int(p) for p in pids.read_text().split())
    for _ in range(50):  # init reaps the killed sleep
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"pid {pid} survived its step")


def test_a_transient_cuda_error_is_retried_and_reported(tmp_path):
    marker = tmp_path / "tried"
    command = (
        f"if [ -e {marker} ]; then echo fine; else touch {marker}; "
        "echo 'RuntimeError: CUDA error: initialization error'; exit 1; fi"
    )
    rc, record, log = run_step(tmp_path, command)
    assert rc == 0 and record["verdict"] == "RETRIED-PASS"
    assert "verdict: demo RETRIED-PASS (rc 0" in log and "first try FAIL rc 1" in log


@pytest.mark.parametrize(
    "text", ["tests/gpu/x.py:3: AssertionError", "IMPLAUSIBLE: bf16 at 20%", "plain failure"]
)
def test_a_genuine_failure_is_not_retried(tmp_path, text):
    rc, record, log = run_step(tmp_path, f"echo 'NVMLError: x'; echo '{text}'; exit 1")
    if text == "plain failure":  # no genuine marker: the NVML error makes it transient
        assert len(record["attempts"]) == 2
        return
    assert rc == 1 and record["verdict"] == "FAIL" and len(record["attempts"]) == 1
    assert "retrying" not in log


def test_a_step_that_dies_of_a_signal_is_retried(tmp_path):
    rc, record, _ = run_step(tmp_path, "kill -SEGV $$")
    assert rc == 139
    assert record["attempts"][0]["outcome"] == "DIED" and len(record["attempts"]) == 2


def test_no_retry_past_the_deadline_and_no_start_after_it(tmp_path):
    rc, record, _ = run_step(tmp_path, "sleep 5", limit=1, deadline=time.time() + 1.5)
    assert rc == 124 and len(record["attempts"]) == 1
    assert "would pass the check's deadline" in record["note"]
    rc, record, log = run_step(tmp_path, "echo never", deadline=time.time() - 1, name="late")
    assert record["verdict"] == "SKIPPED" and "never" not in log
    assert "verdict: late SKIPPED" in log


def test_outcomes_of_return_codes():
    assert [step.outcome_of(rc) for rc in (0, 1, 2, 124, 137, 139, -9)] == [
        "PASS",
        "FAIL",
        "FAIL",
        "TIMEOUT",
        "TIMEOUT",
        "DIED",
        "DIED",
    ]
