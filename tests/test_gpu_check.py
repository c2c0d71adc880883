"""scripts/gpu_check.py's plausibility rules, on synthetic case tables and a real CPU run."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def row(
    dtype="bf16", shape="8192x8192x8192", status="ok", frac=0.8, measured=1.0, wall=1.5, reason=None
):
    return {
        "identity.kernel": "matmul",
        "identity.dtype": dtype,
        "identity.params.shape_label": shape,
        "identity.status": status,
        "identity.reason": reason,
        "rates.frac_of_peak": frac,
        "timing.measured_time_s": measured,
        "timing.wall_time_s": wall,
        "rates.peak_source": "datasheet",
    }


def problems(*rows):
    return gpu_check.problems_of(pd.DataFrame(list(rows)))


def test_a_plausible_run_has_no_problems():
    assert problems(row(), row("fp8", "4096x4096x4096", frac=0.7)) == []


def test_each_rule_fires():
    assert "exceeds wall" in problems(row(), row("fp16", measured=2.0, wall=1.0))[0]
    assert "of the datasheet peak" in problems(row(), row("fp16", frac=1.2))[0]
    assert "failed" in problems(row(), row("fp8", status="failed", reason="wrong result"))[0]
    assert "outside 50..100%" in problems(row(frac=0.3))[0]
    assert "outside 50..100%" in problems(row(frac=float("nan")))[0]
    assert "not measured" in problems(row(shape="4096x4096x4096"))[0]


def test_a_cpu_run_is_refused_as_bad_input(tmp_path, capsys):
    assert (
        main(
            [
                "run",
                "--device",
                "cpu",
                "--shape",
                "16x16x16",
                "--dtype",
                "fp32",
                "--timeout-s",
                "0.5",
                "--min-time-s",
                "0.02",
                "--warmup-s",
                "0.02",
                "--out",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gpu_check.py"),
            str(run_dir),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert done.returncode == 2 and "not on a GPU" in done.stderr


def test_power_rules_fire_on_implausible_energy():
    def energy(power, ratio=1.0):
        return {
            **row(),
            "energy.avg_power_w": power,
            "energy.energy_counter_vs_integral": ratio,
            "energy.ops_per_j": 1e12,
        }

    assert gpu_check.problems_of(pd.DataFrame([energy(650.0, 1.05)]), tdp_w=700.0) == []
    frame = pd.DataFrame([energy(0.0), energy(1200.0), energy(500.0, 1.3)])
    found = gpu_check.problems_of(frame, tdp_w=700.0)
    assert any("0.0 W measured" in f for f in found)
    assert any("above 1.5 x the 700 W TDP" in f for f in found)
    assert any("counter / power integral = 1.30" in f for f in found)


def test_a_run_without_the_anchor_shape_can_be_checked():
    frame = pd.DataFrame([row(shape="4096x4096x4096")])
    assert gpu_check.problems_of(frame, need_anchor=False) == []
    assert "not measured" in gpu_check.problems_of(frame)[0]


def test_the_gpu_fixture_reads_the_same_in_schema_1_and_2(tmp_path, capsys):
    from run_copies import DATA, schema_2_copy

    from bench.results.record import load_run

    printed = []
    for path in (DATA / "gpu-run", schema_2_copy(DATA / "gpu-run", tmp_path / "v2")):
        gpu_check.print_figures(load_run(path).cases, "H100 SXM5 80GB")
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and "best bf16" in printed[0]
