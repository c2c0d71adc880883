"""report, compare and baseline from the command line: files, exit codes, bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_copies import DATA, altered_copy

from bench.cli import main

GPU = DATA / "gpu-run"
CPU = DATA / "cpu-run"
ROOT = Path(__file__).resolve().parents[1]


def test_report_writes_markdown_html_plots_and_pytest_benchmark_json(tmp_path, capsys):
    run = shutil.copytree(CPU, tmp_path / "run")
    assert main(["report", str(run), "--pue", "1.2", "--usd-per-kwh", "0.2"]) == 0
    assert "report.html" in capsys.readouterr().out
    text = (run / "report.md").read_text()
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "peak.png",
        "per_watt.png",
        "roofline.png",
    ]
    for plot in ("peak", "roofline", "per_watt"):
        assert f"](plots/{plot}.png)" in text
    # what a CPU run does not have is a note, not a faked plot
    assert "*Power, clock and temperature: not drawn. no case has a power trace*" in text
    assert "no allreduce in these runs" in text and "no scaling measurement" in text
    assert "memory-bandwidth roof not drawn (a CPU's memory bandwidth" in text
    assert "ops per joule (estimate)" in text and "estimate from your inputs: PUE 1.2" in text
    (export,) = (run / "pytest-benchmark").iterdir()
    assert export.name.startswith("0001_") and json.loads(export.read_text())["benchmarks"]


@pytest.mark.slow
def test_pytest_benchmarks_own_compare_reads_the_export_and_the_suite(tmp_path, suite_json):
    for name, src in (("a", GPU), ("b", altered_copy(GPU, tmp_path / "slow", time=1.1))):
        out = tmp_path / f"report-{name}"
        assert main(["report", str(src), "--out", str(out), "--no-plots"]) == 0
    files = sorted(str(p) for p in tmp_path.glob("report-*/pytest-benchmark/*.json"))
    files.append(str(suite_json))
    done = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", *files, "--group-by", "name"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [r for r in done.stdout.splitlines() if r.startswith("matmul[8192x8192x8192-bf16] ")]
    assert len(rows) == 2 and "(1.10)" in rows[1]  # the candidate, 10% slower than baseline
    assert "test_kernel[matmul-fp32-16x16x16]" in done.stdout


def test_compare_exit_codes_and_formats(tmp_path, capsys):
    slow = altered_copy(GPU, tmp_path / "slow", time=1.10)
    assert main(["compare", str(GPU), str(GPU)]) == 0
    assert "11 SAME -> exit 0" in capsys.readouterr().out
    assert main(["compare", str(GPU), str(slow), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 1 and doc["counts"]["SLOWER"] == 11
    assert {c["verdict"] for c in doc["cases"]} == {"SLOWER"}
    clocked = altered_copy(GPU, tmp_path / "clocked", time=1.10, clock=0.90)
    assert main(["compare", str(GPU), str(clocked)]) == 0
    out = capsys.readouterr().out
    assert "SLOWER in time (+10.0%) and the clock -10.0%: SAME in cycles" in out


def test_bless_then_compare_with_the_auto_baseline(tmp_path, capsys):
    root = tmp_path / "baselines"
    assert main(["baseline", "bless", str(GPU), "--root", str(root)]) == 0
    blessed = root / "h100-sxm5-80gb" / "quick"
    assert (blessed / "run.json").is_file() and (blessed / "samples").is_dir()
    assert (blessed / "traces").is_dir()
    assert main(["baseline", "bless", str(GPU), "--root", str(root)]) == 0  # re-bless replaces
    slow = altered_copy(GPU, tmp_path / "slow", time=1.10)
    args = ["compare", "--baseline", "auto", "--baselines-root", str(root), str(slow)]
    assert main(args) == 1
    assert str(blessed) in capsys.readouterr().out
    assert main(["compare", "--baseline", "auto", "--baselines-root", str(root), str(CPU)]) == 2
    assert "no baseline for this device and suite" in capsys.readouterr().err


def _corrupt_json(path):
    (path / "run.json").write_text("{not json")


def _newer_schema(path):
    doc = json.loads((path / "run.json").read_text())
    (path / "run.json").write_text(json.dumps({**doc, "schema_version": "3.0"}))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: shutil.rmtree(p), "is not a flopwatt run folder"),
        (_corrupt_json, "not valid JSON"),
        (_newer_schema, "schema version '3.0', this flopwatt reads 1.x and 2.x"),
    ],
)
def test_unreadable_runs_are_one_line_and_exit_2(tmp_path, capsys, damage, message):
    bad = shutil.copytree(GPU, tmp_path / "bad")
    damage(bad)
    for args in (["compare", str(GPU), str(bad)], ["report", str(bad), "--no-plots"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_nothing_in_common_and_mixed_methods_exit_2(tmp_path, capsys):
    assert main(["compare", str(GPU), str(CPU)]) == 2
    assert "no case in common" in capsys.readouterr().err
    newer = altered_copy(GPU, tmp_path / "m2", meta={"method_version": 2})
    assert main(["compare", str(GPU), str(newer)]) == 2
    assert "METHOD_VERSION differs" in capsys.readouterr().err


def test_a_truncated_case_line_is_a_warning_and_the_rest_is_compared(tmp_path, capsys):
    cut = shutil.copytree(GPU, tmp_path / "cut")
    lines = (cut / "cases.jsonl").read_text()
    (cut / "cases.jsonl").write_text(lines + lines.splitlines()[0][:50])
    assert main(["compare", str(GPU), str(cut)]) == 0
    captured = capsys.readouterr()
    assert "cases.jsonl:12: not valid JSON (truncated write?), skipped" in captured.err
    assert "11 SAME" in captured.out and "Traceback" not in captured.err


def test_bad_arguments_exit_2(capsys):
    assert main(["compare", str(GPU)]) == 2
    assert main(["compare", str(GPU), str(GPU), "--min-effect", "3"]) == 2
    assert main(["report", str(GPU), str(CPU)]) == 2  # several runs need --out
    assert main(["baseline"]) == 2
    err = capsys.readouterr().err
    assert err.count("flopwatt: error:") == 4 and "Traceback" not in err


@pytest.fixture(scope="module")
def suite_json(tmp_path_factory):
    """bench.nightly (the pytest-benchmark suite) on one tiny CPU case: its JSON."""
    env = {
        **os.environ,
        "FLOPWATT_DEVICE": "cpu",
        "FLOPWATT_KERNEL": "matmul",
        "FLOPWATT_DTYPE": "fp32",
        "FLOPWATT_SHAPE": "16x16x16",
        "FLOPWATT_TIMEOUT_S": "0.1",
    }
    out = tmp_path_factory.mktemp("suite") / "suite.json"
    args = ["--pyargs", "bench.nightly", "-q", "--benchmark-enable", f"--benchmark-json={out}"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.mark.slow
def test_the_pytest_benchmark_suite_measures_with_flopwatt(suite_json):
    doc = json.loads(suite_json.read_text())
    (bench,) = doc["benchmarks"]
    assert bench["name"] == "test_kernel[matmul-fp32-16x16x16]"
    assert doc["machine_info"]["flopwatt"]["identity"]["arch"]  # the device, via the hook
    assert bench["extra_info"]["timing_mode"] == "hot" and "tflop_per_s" in bench["extra_info"]
    assert bench["stats"]["rounds"] >= 1 and bench["stats"]["max"] < 0.1  # per-call samples
