"""The flopwatt command end to end on this CPU: runs, every bad input, crash recovery."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.results.record import load_run

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--device", "cpu", "--timeout-s", "1", "--min-time-s", "0.05", "--warmup-s", "0.05"]


def flopwatt(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=kw.get("cwd", ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def only_run(parent: Path) -> Path:
    (run,) = [p for p in parent.iterdir() if p.is_dir()]
    return run


def test_a_reader_that_stops_early_ends_it_quietly():
    read, write = os.pipe()
    os.close(read)  # `flopwatt list | head -0`: nobody reads what it prints
    done = subprocess.run(
        [sys.executable, "-m", "bench", "list"],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    os.close(write)
    assert done.returncode == 141 and done.stderr == ""


def test_run_end_to_end_on_tiny_shapes(tmp_path, capsys):
    code = main(
        [
            "run",
            *FAST,
            "--shape",
            "32x48x64,64x64x64",
            "--dtype",
            "fp32,bf16,tf32",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    run = load_run(only_run(tmp_path))
    assert run.meta["status"] == "complete"
    cases = run.cases.set_index("identity.case_id")
    assert len(cases) == 6
    ok = cases[cases["identity.status"] == "ok"]
    assert set(ok["identity.dtype"]) == {"fp32", "bf16"}
    assert (
        cases[cases["identity.dtype"] == "tf32"]["identity.status"] == "skipped"
    ).all()  # no TF32 on a CPU
    for _, row in ok.iterrows():
        assert (
            row["work.ops"]
            == 2 * row["identity.params.m"] * row["identity.params.n"] * row["identity.params.k"]
        )
        assert row["rates.achieved_ops_per_s"] == pytest.approx(
            row["work.ops"] / row["timing.time_median_s"]
        )
        assert row["timing.n_samples"] >= 1 and row["work.correctness.ok"]
        assert row["timing.timing_mode"] == "hot" and row["timing.stop_reason"] in (
            "noise_below_target",
            "noise_stabilised",
            "timeout",
        )
        assert (
            row["rates.frac_of_peak"] is None
            or row["rates.frac_of_peak"] != row["rates.frac_of_peak"]
        ) == (
            row["rates.peak_ops_per_s"] is None
            or row["rates.peak_ops_per_s"] != row["rates.peak_ops_per_s"]
        )
        assert row["rates.peak_detail"]  # provenance, or the reason the peak is unknown
        assert len(run.samples(row.name)) == row["timing.n_samples"]
    fp32 = ok[ok["identity.dtype"] == "fp32"].iloc[0]
    assert fp32["rates.peak_source"] == "derived"
    assert run.meta["environment"]["schema_version"] == run.meta["schema_version"]
    assert run.meta["device_facts"]["threads"] >= 1
    assert "32x48x64" in out and str(only_run(tmp_path)) in out


def test_peak_override_is_used_and_labelled(tmp_path, capsys):
    code = main(
        [
            "run",
            *FAST,
            "--shape",
            "64x64x64",
            "--dtype",
            "fp32",
            "--peak",
            "fp32=1e15",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    row = load_run(only_run(tmp_path)).cases.iloc[0]
    assert row["rates.peak_source"] == "user" and row["rates.peak_ops_per_s"] == 1e15
    assert row["rates.frac_of_peak"] == pytest.approx(row["rates.achieved_ops_per_s"] / 1e15)


def test_a_shape_that_does_not_fit_is_skipped_and_the_run_goes_on(tmp_path, capsys):
    code = main(
        [
            "run",
            *FAST,
            "--shape",
            "300000x300000x300000,64x64x64",
            "--dtype",
            "fp32",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    cases = load_run(only_run(tmp_path)).cases
    huge, small = cases.iloc[0], cases.iloc[1]
    assert huge["identity.status"] == "skipped" and "GB free" in huge["identity.reason"]
    assert small["identity.status"] == "ok"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--kernel", "conv"], "unknown kernel 'conv'"),
        (["run", "--suite", "weekly"], "unknown suite 'weekly'"),
        (["run", "--shape", "64x64"], "--shape: shape '64x64' is not MxNxK"),
        (["run", "--shape", "0x64x64"], "must be positive"),
        (["run", "--shape", "64x64x64,"], "empty item"),
        (["run", "--dtype", "fp4"], "unknown dtype 'fp4'"),
        (["run", "--device", "cuda"], "no CUDA device"),
        (["run", "--device", "tpu"], "--device 'tpu'"),
        (["run", "--peak", "bf16"], "--peak 'bf16'"),
        (["run", "--peak", "bf16=fast"], "--peak 'bf16=fast'"),
        (["run", "--peak", "bf16=-1"], "--peak 'bf16=-1'"),
        (["run", "--peak", "fp4=1e12"], "--peak 'fp4=1e12'"),
        (["run", "--timeout-s", "0"], "must be a positive"),
        (["run", "--timing", "warm"], "invalid choice"),
        (["run", "--device", "cpu", "--timing", "graph"], "needs a CUDA device"),
        (["run", "--bogus"], "unrecognized arguments"),
        (["run", "--device", "cpu", "--power", "nvml"], "--power nvml: NVML measures NVIDIA"),
        (["run", "--device", "cpu", "--power", "estimate"], "pass --tdp-w"),
        (["run", "--power", "joulemeter"], "invalid choice"),
        (["run", "--energy-window-s", "0"], "must be a positive"),
        (["peaks", "--gpu-name", "NVIDIA H100 PCIe"], "--compute-capability"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    code = main([*args, "--out", str(tmp_path)] if args[0] == "run" else args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("flopwatt: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing started, nothing half-written


def test_unwritable_out_is_refused_before_measuring(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["run", *FAST, "--shape", "8x8x8", "--out", str(blocker / "runs")])
    assert code == 2
    assert "not writable" in capsys.readouterr().err


def test_help_does_not_import_torch():
    probe = (
        "import sys\nfrom bench.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\nprint('TORCH' if 'torch' in sys.modules else 'CLEAN')"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout
    assert "usage: flopwatt" in out and out.strip().endswith("CLEAN")


def test_list_env_and_peaks_commands(capsys):
    assert main(["list"]) == 0
    assert "matmul" in capsys.readouterr().out
    assert main(["env", "--device", "cpu", "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["method_version"] >= 1 and env["missing"]
    assert (
        main(["peaks", "--gpu-name", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]) == 0
    )
    out = capsys.readouterr().out
    assert "H100 SXM5 80GB" in out and "989 TFLOP/s" in out


def _wait_for_cases(parent: Path, n: int, proc: subprocess.Popen, limit_s: float = 120) -> Path:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        runs = [p for p in parent.iterdir() if p.is_dir()] if parent.exists() else []
        if runs and (runs[0] / "cases.jsonl").exists():
            lines = (runs[0] / "cases.jsonl").read_text().splitlines()
            if len(lines) >= n:
                return runs[0]
        time.sleep(0.05)
    raise AssertionError("the run never wrote its cases")


MANY = ",".join(["48x48x48"] * 3 + [f"{n}x64x64" for n in range(20, 60)])


def start_long_run(out: Path) -> subprocess.Popen:
    """A run of 43 short cases in a child process, to be interrupted."""
    return flopwatt(
        "run", *FAST, "--timeout-s", "0.3", "--shape", MANY, "--dtype", "fp32", "--out", str(out)
    )


@pytest.mark.slow
def test_kill_9_mid_run_keeps_every_finished_case(tmp_path):
    proc = start_long_run(tmp_path)
    run_dir = _wait_for_cases(tmp_path, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    lines = (run_dir / "cases.jsonl").read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line is complete, valid JSON
    assert len(parsed) >= 2 and all(c["identity"]["status"] == "ok" for c in parsed)
    run = load_run(run_dir)
    assert run.meta["status"] == "running" and len(run.cases) == len(parsed)
    for case_id in run.cases["identity.case_id"]:
        assert len(run.samples(case_id)) > 0


@pytest.mark.slow
def test_ctrl_c_marks_the_run_interrupted_and_exits_130(tmp_path):
    proc = start_long_run(tmp_path)
    run_dir = _wait_for_cases(tmp_path, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted:" in err and "Traceback" not in err
    run = load_run(run_dir)
    assert run.meta["status"] == "interrupted"
    assert run.meta["n_cases"] == len(run.cases) >= 1
