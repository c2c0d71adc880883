"""`flopwatt health` end to end on this CPU, and the nightly suite that runs it first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_copies import altered_copy

from bench.cli import main
from bench.commands.health import probe
from bench.commands.health.model import FAIL, NA, Check
from bench.commands.health.nvml_checks import CHECK_NAMES
from bench.measuring.timing import Policy
from bench.results.record import load_run
from bench.versions import METHOD_VERSION

ROOT = Path(__file__).resolve().parents[1]
GPU_RUN = ROOT / "tests" / "data" / "gpu-run"  # an H100 run: a baseline of another SKU here
QUICK = Policy(mode="hot", min_time_s=0.02, timeout_s=0.2, warmup_min_s=0.01, warmup_max_s=0.05)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Health's CPU probe at toy sizes: the code path, not the numbers, is under test."""
    settings = probe.ProbeSettings((96, 96, 96), "fp32", 2**20, 2**16, QUICK, QUICK, 0.01)
    monkeypatch.setattr(probe, "default_settings", lambda kind: settings)


@pytest.fixture
def quiet_psi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A /proc/pressure/cpu that never moves: nothing else wants the CPUs (the hardware seam;
    the test suite itself keeps the real machine busy, and a busy baseline decides nothing)."""
    from bench.measuring import pressure

    fake = tmp_path / "pressure-cpu"
    fake.write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n")
    real = pressure.read_some_us
    monkeypatch.setattr(pressure, "read_some_us", lambda path=fake: real(fake))


def health(tmp_path: Path, *args: str) -> int:
    return main(["health", "--device", "cpu", "--out", str(tmp_path / "runs"), *args])


def only_run(parent: Path) -> Path:
    (run,) = [p for p in parent.iterdir() if p.is_dir()]
    return run


def test_on_a_cpu_every_nvml_check_is_na_the_probes_run_and_it_exits_0(tmp_path, tiny, capsys):
    code = health(tmp_path, "--baselines", str(tmp_path / "none"), "--format", "json")
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["verdict"] == "PASS"
    rows = {r["name"]: r for r in doc["checks"]}
    for name in CHECK_NAMES:
        assert rows[name]["verdict"] == NA
        assert "NVML checks need an NVIDIA GPU" in rows[name]["reason"]
    assert rows["matmul known answer"]["verdict"] == "PASS"
    assert rows["canary repeat"]["verdict"] == "PASS"
    assert rows["matmul vs peers"]["verdict"] == NA  # one device
    for name in ("matmul vs baseline", "copy bandwidth vs baseline", "canary vs baseline"):
        assert rows[name]["verdict"] == NA  # the first run of a SKU is informational
        assert rows[name]["reason"].startswith("first run on this SKU (cpu-")
        assert "informational" in rows[name]["reason"]
        assert "flopwatt baseline bless RUN_DIR" in rows[name]["reason"]
    run = load_run(doc["run_dir"])
    assert run.meta["status"] == "complete" and run.meta["suite"] == "health"
    assert [r["name"] for r in run.health] == [r["name"] for r in doc["checks"]]
    assert sorted(run.cases["identity.kernel"]) == ["matmul", "memcopy"]
    assert set(run.cases["identity.health_verdict"]) == {"PASS"}
    for repeats in run.cases["timing.repeats"]:  # each reading is the median of 5 short repeats
        assert len(repeats) == 5 and all(r["time_median_s"] > 0 for r in repeats)
    (golden,) = run.meta["health"]["canaries"]  # what a baseline blessed from it holds
    assert golden["sha256"].startswith(rows["canary repeat"]["value"])


def test_a_blessed_health_run_becomes_the_baseline(tmp_path, tiny, quiet_psi, capsys):
    root = tmp_path / "baselines"
    assert health(tmp_path, "--baselines", str(root)) == 0
    assert main(["baseline", "bless", str(only_run(tmp_path / "runs")), "--root", str(root)]) == 0
    capsys.readouterr()
    code = health(tmp_path, "--baselines", str(root), "--baseline-min", "0.01", "--format", "json")
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["checks"]}
    assert code == 0, [
        (n, r["verdict"], r["reason"])
        for n, r in rows.items()
        if r["verdict"] not in ("PASS", "N/A")
    ]
    assert rows["matmul vs baseline"]["verdict"] == "PASS"
    assert rows["copy bandwidth vs baseline"]["verdict"] == "PASS"
    assert rows["canary vs baseline"]["verdict"] == "PASS"
    # both sides are medians of 5 quiet repeats, and the row says so
    assert "median of 5" in rows["matmul vs baseline"]["expected"]
    assert "this run: median of 5" in rows["matmul vs baseline"]["reason"]


def test_a_baseline_of_another_sku_is_ignored_with_a_warning(tmp_path, tiny, capsys):
    stamp = {"method_version": METHOD_VERSION}  # the fixture predates the current method
    h100 = altered_copy(GPU_RUN, tmp_path / "h100", meta=stamp, case=stamp)
    code = health(tmp_path, "--baseline", str(h100), "--format", "md")
    out = capsys.readouterr().out
    assert code == 0
    assert "warning: baseline" in out and "is for h100-sxm5-80gb, not cpu-" in out
    run = load_run(only_run(tmp_path / "runs"))
    baseline = [r for r in run.health if r["name"].endswith("vs baseline")]
    assert {r["verdict"] for r in baseline} == {NA} and "ignored" in baseline[0]["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "gpu0"], "--device"),
        (["--device", "cpu,cuda:0"], "all, cpu, or a list"),
        (["--baseline", "/nonexistent"], "not a run folder"),
        (["--peer-warn", "0.2", "--peer-fail", "0.1"], "--peer-warn"),
        (["--peer-fail", "1.5"], "[0, 1)"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, args, message):
    assert health(tmp_path, *args) == 2
    assert message in capsys.readouterr().err


def test_the_nightly_marks_a_failed_gpus_results_and_bless_leaves_them_out(
    tmp_path, tiny, monkeypatch, capsys
):
    def faulty(device: str, reason: str) -> list[Check]:
        return [Check(device, "scripted fault", 1, "0", FAIL, "a scripted fault")]

    monkeypatch.setattr("bench.commands.health.device.unavailable", faulty)
    fast = ["--timeout-s", "0.2", "--min-time-s", "0.02", "--warmup-s", "0.01", "--idle-s", "0"]
    args = ["--suite", "nightly", "--device", "cpu", "--shape", "64x64x64", "--dtype", "fp32"]
    code = main(["run", *args, *fast, "--out", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 1 and "health: FAIL" in out
    run_dir = only_run(tmp_path / "runs")
    run = load_run(run_dir)
    assert run.meta["status"] == "complete" and run.meta["health"]["verdict"] == FAIL
    assert list(run.cases["identity.health_verdict"]) == [FAIL]  # measured and kept, but marked
    assert "excluded from baselines" in run.cases["identity.warnings"][0][-1]
    assert any(r["name"] == "scripted fault" for r in run.health)
    root = tmp_path / "baselines"
    assert main(["baseline", "bless", str(run_dir), "--root", str(root)]) == 2
    assert "failed its health check" in capsys.readouterr().err
    # one healthy case beside the failed one: bless copies only the healthy one
    lines = (run_dir / "cases.jsonl").read_text().splitlines()
    failed = json.loads(lines[0])
    marked = {"case_id": "healthy", "health_verdict": "PASS"}
    healthy = failed | {"identity": failed["identity"] | marked}
    (run_dir / "cases.jsonl").write_text("\n".join([*lines, json.dumps(healthy)]) + "\n")
    assert main(["baseline", "bless", str(run_dir), "--root", str(root)]) == 0
    assert "left out 1 cases" in capsys.readouterr().out
    (blessed,) = root.glob("*/nightly/cases.jsonl")
    kept = [json.loads(x)["identity"]["case_id"] for x in blessed.read_text().splitlines()]
    assert kept == ["healthy"]
    assert main(["report", str(run_dir), "--no-plots"]) == 0
    report = (run_dir / "report.md").read_text()
    assert "## Hardware health" in report and "scripted fault" in report


def test_two_ranks_check_at_once_and_the_canary_catches_a_flipped_bit(tmp_path):
    # rank 1 flips one bit of its canary result: the two ranks disagree, nobody can tell
    # which is right, both FAIL and the exit code is 1; the allreduce across them is exact
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "runs"
    args = ["--nproc", "2", "--device", "cpu", "--canary-flip-rank", "1", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "health", *args, "--baselines", str(tmp_path / "no")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = load_run(only_run(out))
    assert run.meta["world_size"] == 2 and run.meta["status"] == "complete"
    rows = {(r["rank"], r["name"]): r for r in run.health}
    assert {rows[(rank, "canary vs peers")]["verdict"] for rank in (0, 1)} == {FAIL}
    assert rows[(1, "canary repeat")]["verdict"] == "PASS"  # flipped the same way both times
    assert rows[(None, "allreduce result")]["verdict"] == "PASS"
    assert sorted(run.cases["identity.kernel"]) == [
        "allreduce",
        "matmul",
        "matmul",
        "memcopy",
        "memcopy",
    ]
    assert sorted(run.cases["identity.rank"].dropna()) == [0, 0, 1, 1]
    shutil.rmtree(out)
