"""`flopwatt ceiling` and the ceilings a run divides by, end to end on this CPU (tiny budgets)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_ceiling import make_ceiling

from bench.cli import main
from bench.devices.cpu import CpuBackend
from bench.results.blessed.ceiling import read_ceiling, save_ceiling
from bench.results.blessed.paths import sku_key
from bench.results.record import load_run

ROOT = Path(__file__).resolve().parents[1]
FAST_RUN = ["--device", "cpu", "--timeout-s", "0.5", "--min-time-s", "0.02", "--warmup-s", "0.02"]
TINY = [
    "--device",
    "cpu",
    "--max-dim",
    "256",
    "--budget-s",
    "0.2",
    "--warmup-s",
    "0",
    "--no-memory",
]


@pytest.fixture(scope="module")
def sku():
    backend = CpuBackend()
    yield sku_key(backend.facts().identity)
    backend.close()


def only_run(parent: Path) -> Path:
    (run,) = [p for p in parent.iterdir() if p.is_dir()]
    return run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ceiling", "--dtype", "fp4"], "unknown dtype 'fp4'"),
        (["ceiling", "--dtype", "bf16,,fp8"], "unknown dtype ''"),
        (["ceiling", "--quick", "--thorough"], "not allowed with argument --quick"),
        (["ceiling", "--budget-s", "0"], "must be a positive"),
        (["ceiling", "--device", "cuda"], "no CUDA device"),
        (["ceiling", "--device", "cpu", "--max-dim", "32"], "--max-dim 32: at least 64"),
        (["ceiling", "--max-dim", "0"], "--max-dim: '0' must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    code = main([*args, "--baselines", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("flopwatt: error: ") and message in err
    assert err.count("\n") == 1 and not any(tmp_path.iterdir())


def test_an_unwritable_baselines_folder_is_refused_before_measuring(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["ceiling", *TINY, "--baselines", str(blocker / "b")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_ceiling_measures_what_the_cpu_runs_and_skips_the_rest_with_reasons(tmp_path, capsys, sku):
    code = main(["ceiling", *TINY, "--dtype", "fp32,tf32", "--baselines", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    ceiling, why = read_ceiling(tmp_path / sku / "ceiling.json", sku)
    assert why == "" and ceiling.sku == sku
    fp32 = ceiling.matmul["fp32"]
    assert fp32.ops_per_s > 0 and fp32.timing_mode == "cold" and fp32.correctness["ok"]
    assert fp32.ops_per_s == max(p.median_ops_per_s for p in fp32.points)
    assert "tf32" not in ceiling.matmul and "tensor-core" in ceiling.skipped["tf32"]
    assert ceiling.memory is None and ceiling.environment["software"]["torch"]
    assert "fp32" in out and "skipped" in out and "ceiling.json" in out


def test_sigterm_mid_search_keeps_the_best_so_far_writes_it_and_exits_130(tmp_path, sku):
    # a real interruption: the command runs in its own process and gets SIGTERM once its
    # progress line shows a measured shape (rich draws it where TTY_* say a terminal is)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    args = ["--device", "cpu", "--max-dim", "256", "--warmup-s", "0", "--dtype", "fp32,fp16"]
    args += ["--budget-s", "120", "--baselines", str(tmp_path)]  # memory too, if it got there
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", "ceiling", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 60
            while "shapes, best" not in log.read_text(errors="replace"):
                assert proc.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "the search never reported a shape"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "interrupted: the best found so far is kept" in log.read_text(errors="replace")
    data = json.loads((tmp_path / sku / "ceiling.json").read_text())
    fp32 = data["matmul"]["fp32"]
    assert fp32["interrupted"] is True and fp32["stop_reason"] == "interrupted"
    assert fp32["points"] and fp32["ops_per_s"] > 0
    assert "fp16" not in data["matmul"] and data["memory"] is None  # nothing after SIGTERM


def test_a_run_divides_by_the_stored_ceiling_of_its_sku(tmp_path, capsys, sku):
    stored = make_ceiling(sku=sku, dtypes=("fp32",))
    save_ceiling(stored, tmp_path / "baselines")
    code = main(
        [
            "run",
            *FAST_RUN,
            "--shape",
            "64x64x64",
            "--dtype",
            "fp32,bf16",
            "--baselines",
            str(tmp_path / "baselines"),
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    run = load_run(only_run(tmp_path / "runs"))
    cases = run.cases.set_index("identity.dtype")
    fp32, bf16 = cases.loc["fp32"], cases.loc["bf16"]
    assert (
        fp32["rates.measured_peak_ops_per_s"] == 80e9
        and fp32["rates.measured_peak_source"] == "stored"
    )
    assert fp32["rates.frac_of_measured_peak"] == pytest.approx(
        fp32["rates.achieved_ops_per_s"] / 80e9
    )
    assert "1024x1024x1024" in fp32["rates.measured_peak_detail"]
    assert pd.isna(bf16["rates.frac_of_measured_peak"])  # None in JSON
    assert "no measured bf16 ceiling" in bf16["rates.measured_peak_detail"]
    assert run.meta["ceiling"]["source"] == "stored" and "% of ceiling" in out
    from bench.devices.cpu import running_clock_hz

    clock, why = running_clock_hz()
    if clock is None:  # a VM: cpuinfo's MHz is a fixed figure, no clock to scale the peak by
        assert pd.isna(fp32["rates.frac_of_clock_peak"]) and why in fp32["rates.clock_peak_detail"]
    else:
        assert fp32["rates.frac_of_clock_peak"] == pytest.approx(
            fp32["rates.achieved_ops_per_s"] / fp32["rates.clock_peak_ops_per_s"]
        )


def test_without_a_usable_ceiling_the_fraction_is_none_with_the_reason(tmp_path, capsys, sku):
    bad = tmp_path / "baselines" / sku / "ceiling.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{ not json")
    runs = tmp_path / "runs"
    args = ["run", *FAST_RUN, "--shape", "64x64x64", "--dtype", "fp32", "--out", str(runs)]
    assert main([*args, "--baselines", str(tmp_path / "baselines")]) == 0
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())  # rich wraps lines at 80 columns
    assert "ignored" in err and "not used as a denominator" in err
    assert "% of ceiling" not in captured.out
    case = load_run(only_run(runs)).cases.iloc[0]
    assert pd.isna(case["rates.frac_of_measured_peak"])  # None in JSON
    assert "corrupt" in case["rates.measured_peak_detail"]


def test_suite_full_measures_the_ceilings_first_and_stores_them_in_the_run(tmp_path, capsys):
    args = ["run", "--suite", "full", *FAST_RUN, "--kernel", "matmul", "--shape", "128x128x128"]
    args += ["--ceiling-budget-s", "0.6", "--ceiling-max-dim", "256", "--ceiling-warmup-s", "0"]
    args += ["--ceiling-no-memory"]  # a CPU memory ceiling takes about a minute here
    code = main([*args, "--dtype", "fp32", "--idle-s", "0", "--out", str(tmp_path)])
    assert code == 0
    run = load_run(only_run(tmp_path))
    meta = run.meta["ceiling"]
    assert meta["source"] == "this run" and "fp32" in meta["matmul"]
    assert not (meta.get("memory") or {}).get("kernels")  # --ceiling-no-memory
    assert "128x128x128" in [p["shape"] for p in meta["matmul"]["fp32"]["points"]]  # the seed
    case = run.cases.iloc[0]
    assert case["timing.timing_mode"] == "cold" and case["rates.measured_peak_source"] == "this run"
    assert case["rates.frac_of_measured_peak"] > 0
    assert "measured in this run" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ceiling-max-dim", "16"], "--ceiling-max-dim 16: at least"),
        (["--suite", "quick", "--ceiling-budget-s", "1"], "suite 'quick' reads stored ones"),
    ],
)
def test_bad_in_run_ceiling_limits_exit_2(tmp_path, capsys, args, message):
    base = ["run", "--device", "cpu", "--kernel", "matmul", "--shape", "64x64x64"]
    suite = [] if "--suite" in args else ["--suite", "full"]
    assert main([*base, *suite, *args, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
