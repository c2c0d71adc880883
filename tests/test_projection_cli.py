"""`flopwatt project` end to end on real CPU runs: outputs, exports, the report, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from bench.cli import main
from bench.projection.from_runs import calibrate
from bench.results.record import load_run

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
FAST = ["--device", "cpu", "--timeout-s", "0.3", "--min-time-s", "0.02", "--warmup-s", "0.02"]
FAST += ["--idle-s", "0", "--dtype", "fp32"]


def _run(out: Path, *args: str) -> Path:
    cmd = [sys.executable, "-m", "bench", "run", *FAST, *args, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = out.iterdir()
    return run_dir


@pytest.fixture(scope="session")
def measured(tmp_path_factory) -> Path:
    """Matmul at three shapes, allreduce at three sizes and a weak-scaling step on 2 ranks."""
    return _run(
        tmp_path_factory.mktemp("measured"),
        "--nproc", "2", "--kernel", "matmul,allreduce,scaling",
        "--shape", "32x32x32,64x64x64,128x128x128",
        "--bytes", "64Ki,1Mi,4Mi", "--collective", "allreduce", "--place", "out",
        "--step", "64x64x64/256Ki", "--scaling", "weak", "--overlap", "seq",
        "--power", "estimate", "--tdp-w", "100", "--energy-window-s", "0.2",
    )  # fmt: skip


@pytest.fixture(scope="session")
def attention_only(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("attention")
    return _run(out, "--kernel", "attention", "--attn", "1,2,2,64,32", "--power", "none")


def project(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["project", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_calibration_reads_every_measured_shape_and_the_ranks(measured):
    cal = calibrate([load_run(measured)])
    assert cal.dtype == "fp32" and len(cal.matmul.points) == 3
    assert cal.max_world_size == 2 and cal.max_nodes == 1
    assert all(0 < e <= cal.matmul.top for _, e in cal.matmul.points)
    sources = {i.name: i.source for i in cal.inputs}
    assert sources["matmul_efficiency"] == "measured"
    assert sources["attention_efficiency"] == "assumed"


def test_project_writes_json_plot_and_exports(measured, tmp_path, capsys):
    out = tmp_path / "p"
    args = [str(measured), "--model", "gpt3-175b", "--pp", "8", "--gpus", "1024,2048,4096"]
    rc, text, err = project(
        capsys, *args, "--pue", "1.3", "--usd-per-kwh", "0.1", "--out", str(out)
    )
    assert rc == 0, err
    assert "knee" in text and "assumed" in text and "measured" in text and "extrapolated" in text
    doc = json.loads((out / "projection.json").read_text())
    assert {(r["band"], r["n_gpus"]) for r in doc["rows"]} == {
        (b, n) for b in ("optimistic", "nominal", "pessimistic") for n in (1024, 2048, 4096)
    }
    nominal = [r for r in doc["rows"] if r["band"] == "nominal"]
    assert nominal[0]["efficiency"] == 1.0 and all(r["extrapolated"] for r in nominal)
    assert all(r["dp_algorithm"] in ("ring", "tree", "hierarchical") for r in nominal)
    assert all(r["mfu"] <= r["hfu"] for r in nominal)
    assert all(r["usd_per_step"] > 0 and r["j_per_1e18_ops"] > 0 for r in nominal)
    assert set(doc["knee"]) == {"optimistic", "nominal", "pessimistic"}
    assert (out / "projection.png").read_bytes()[:4] == b"\x89PNG"
    sources = {i["name"]: i["source"] for i in doc["inputs"]}
    assert sources["host_w_per_gpu"] == "assumed" and sources["pue"] == "user"


def test_calculon_system_follows_calculons_format(measured, tmp_path, capsys):
    out = tmp_path / "p"
    assert project(capsys, str(measured), "--model", "gpt3-175b", "--out", str(out))[0] == 0
    system = json.loads((out / "calculon_system.json").read_text())
    # calculon/system.py, processor.py, memory.py, network.py: the keys and rules they assert
    assert set(system) == {"matrix", "vector", "mem1", "mem2", "processing_mode", "networks"}
    assert system["processing_mode"] in ("roofline", "no_overlap")
    for unit in ("matrix", "vector"):
        ((dtype, proc),) = system[unit].items()
        assert dtype in ("float8", "float16", "float32", "bfloat16") and proc["tflops"] > 0
        thresholds = [g for g, _ in proc["gflops_efficiency"]]
        assert thresholds == sorted(thresholds, reverse=True) and thresholds[-1] == 0
        assert len(set(thresholds)) == len(thresholds)
        assert all(0 < e <= 1 for _, e in proc["gflops_efficiency"])
    for mem in ("mem1", "mem2"):
        assert {"GiB", "GBps", "MB_efficiency"} == set(system[mem])
    keys = {
        "bandwidth",
        "efficiency",
        "size",
        "latency",
        "ops",
        "must_be_filled",
        "processor_usage",
    }
    for net in system["networks"]:
        assert set(net) == keys and net["bandwidth"] > 0 and 0 < net["efficiency"] <= 1
        assert set(net["ops"]) == {"p2p", "reduce_scatter", "all_gather", "all_reduce"}
        assert net["ops"]["p2p"][1] is None
        assert all(
            net["ops"][op][1] is not None for op in ("reduce_scatter", "all_gather", "all_reduce")
        )
        assert 0 <= net["processor_usage"] < 1


def test_simai_busbw_yaml_follows_simais_example(measured, tmp_path, capsys):
    out = tmp_path / "p"
    assert project(capsys, str(measured), "--model", "gpt3-175b", "--out", str(out))[0] == 0
    lines = (out / "busbw.yaml").read_text().splitlines()
    assert lines[0] == "flopwatt"  # SimAI's example starts with the setting's name
    groups = [line[:-1] for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert groups == ["TP", "DP", "EP", "PP"]
    entries = [line.strip() for line in lines if line.startswith("  ")]
    for op in ("allreduce", "allgather", "reducescatter", "alltoall"):
        assert sum(e.startswith(f"{op},: ") for e in entries) == 3
    values = [e.split(": ")[1] for e in entries]
    assert all(v == "null" or float(v) > 0 for v in values)
    assert lines[-1].strip().startswith("busbw: ")


def test_pure_dp_mode_projects_the_measured_scaling_case(measured, tmp_path, capsys):
    out = tmp_path / "dp"
    rc, _, err = project(
        capsys, str(measured), "--mode", "dp", "--gpus", "1,2,8,1024", "--out", str(out)
    )
    assert rc == 0, err
    (curve,) = json.loads((out / "projection.json").read_text())["curves"]
    assert [m["n"] for m in curve["measured"]] == [1, 2]
    assert [p["n"] for p in curve["projected"]] == [1, 2, 8, 1024]
    assert [p["extrapolated"] for p in curve["projected"]] == [False, False, True, True]
    effs = [p["efficiency"] for p in curve["projected"]]
    assert effs[0] == 1.0 and all(b <= a for a, b in pairwise(effs))
    assert (out / "projection.png").is_file()


def test_report_shows_the_projection_section(measured, tmp_path, capsys):
    run = shutil.copytree(measured, tmp_path / "run")
    assert (
        project(capsys, str(run), "--model", "llama3-70b", "--pp", "4", "--gpus", "1024,2048")[0]
        == 0
    )
    assert main(["report", str(run), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Scaling projection" in md and "llama3-70b" in md and "assumed" in md
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(tmp_path / "r2"), "--projection", str(bad)]) == 2
    assert "not written by flopwatt project" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "gpt5"], "presets: gpt3-175b, llama3-70b, llama3-405b"),
        (
            ["--model", "gpt3-175b", "--pp", "8", "--gpus", "1000"],
            "N=1000 is not divisible by TP x PP = 64",
        ),
        (
            ["--model", "gpt3-175b", "--pp", "8", "--global-batch", "1024", "--gpus", "1024,16384"],
            "N=16384: 4 microbatches",
        ),
        (["--model", "gpt3-175b", "--gpus", "0,1024"], "--gpus"),
        (["--model", "gpt3-175b", "--tp", "0"], "--tp"),
        (
            ["--layers", "4", "--hidden", "-64", "--heads", "2", "--seq", "8", "--vocab", "10"],
            "--hidden",
        ),
        (["--model", "gpt3-175b", "--global-batch", "-1"], "--global-batch"),
        (["--layers", "4"], "missing --hidden"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    measured, tmp_path, capsys, args, message
):
    out = tmp_path / "never"
    rc, _, err = project(capsys, str(measured), *args, "--out", str(out))
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not out.exists()


def test_a_run_without_matmul_cases_says_what_to_measure(attention_only, tmp_path, capsys):
    out = tmp_path / "never"
    rc, _, err = project(capsys, str(attention_only), "--model", "gpt3-175b", "--out", str(out))
    assert rc == 2 and "no finished matmul case" in err and "flopwatt run --kernel matmul" in err
    assert not out.exists()
