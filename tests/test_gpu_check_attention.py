"""scripts/gpu_check_attention.py's plausibility rules, on synthetic case tables."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "gpu_check_attention", ROOT / "scripts" / "gpu_check_attention.py"
)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

ANCHOR = "2x32x8x8192x128 none fwd flash"


def row(label=ANCHOR, status="ok", frac=0.3, ran="flash", measured=1.0, wall=1.5, reason=None):
    return {
        "identity.kernel": "attention",
        "identity.dtype": "bf16",
        "identity.params.shape_label": label,
        "identity.params.backend": label.split()[-1],
        "work.kernel_details.sdpa_backend": ran,
        "identity.status": status,
        "identity.reason": reason,
        "rates.frac_of_peak": frac,
        "timing.measured_time_s": measured,
        "timing.wall_time_s": wall,
        "rates.peak_source": "datasheet",
    }


def problems(*rows):
    return check.problems_of(pd.DataFrame(list(rows)))


def test_a_plausible_run_has_no_problems():
    assert problems(row(), row("4x32x8x4096x128 causal bwd cudnn", ran="cudnn", frac=0.4)) == []


def test_skipped_backends_are_not_problems():
    skipped = row("4x32x8x4096x128 none fwd cudnn", "skipped", None, None, reason="no cudnn")
    assert problems(row(), skipped) == []
    assert problems(row(status="skipped", frac=None, reason="sm75")) == []


def test_each_rule_fires():
    assert "failed" in problems(row(), row("x none bwd flash", "failed", reason="wrong"))[0]
    assert "exceeds wall" in problems(row(measured=2.0, wall=1.0))[0]
    assert "of the datasheet peak" in problems(row(), row("x none bwd flash", frac=1.3))[0]
    assert "asked for cudnn, flash ran" in problems(row(), row("x none fwd cudnn"))[0]
    assert "outside 28%..100%" in problems(row(frac=0.05))[0]
    assert "not in this run" in problems(row("4x32x8x4096x128 none fwd flash"))[0]


def test_figures_print_every_case_and_the_published_flash_figure(capsys):
    timed = {
        "timing.time_median_s": 0.007,
        "rates.achieved_ops_per_s": 3.1e14,
        "timing.stop_reason": "timeout",
    }
    skipped = row("4x32x8x4096x128 none fwd cudnn", "skipped", None, None, reason="no cudnn")
    check.print_figures(pd.DataFrame([{**row(), **timed}, skipped]), "H100 SXM5 80GB")
    out = capsys.readouterr().out
    assert "2x32x8x8192x128 none fwd flash" in out and "310 TFLOP/s" in out
    assert "skipped: no cudnn" in out and "-> 1.05" in out


def test_a_cpu_run_is_refused_as_bad_input(tmp_path, capsys):
    args = ["--device", "cpu", "--attn", "1,2,2,16,16", "--mask", "none", "--pass", "fwd"]
    fast = ["--timeout-s", "0.3", "--min-time-s", "0.02", "--warmup-s", "0.02"]
    assert main(["run", *args, *fast, "--dtype", "fp32", "--out", str(tmp_path / "runs")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check_attention.py"), str(run_dir), "x"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert done.returncode == 2 and "not on a GPU" in done.stderr
