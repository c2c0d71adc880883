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
from bench.commands.health.model import FAIL, NA
from bench.commands.health.nvml_checks import CHECK_NAMES
from bench.commands.health.probe import default_settings
from bench.results.record import load_run
from bench.versions import METHOD_VERSION

ROOT = Path(__file__).resolve().parents[1]
GPU_RUN = ROOT / "tests" / "data" / "gpu-run"  # an H100 run: a baseline of another SKU here
# health's probe at toy sizes, through its own flags: the code path, not the numbers, is tested
TINY = ["--shape", "96x96x96", "--copy-bytes", "1Mi", "--timeout-s", "0.1"]


@pytest.fixture
def quiet_psi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A /proc/pressure/cpu that never moves: nothing else wants the CPUs (the hardware seam;
    the test suite itself keeps the real machine busy, and a busy baseline decides nothing)."""
    fake = tmp_path / "pressure-cpu"
    fake.write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n")
    monkeypatch.setenv("FLOPWATT_PSI_PATH", str(fake))


@pytest.fixture
def keep_threads():
    """`--threads N` sets torch's process-wide thread count: put it back for later tests."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def health(tmp_path: Path, *args: str) -> int:
    return main(["health", "--device", "cpu", "--out", str(tmp_path / "runs"), *TINY, *args])


def only_run(parent: Path) -> Path:
    (run,) = [p for p in parent.iterdir() if p.is_dir()]
    return run


def test_on_a_cpu_every_nvml_check_is_na_the_probes_run_and_it_exits_0(tmp_path, capsys):
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
    sizes = run.meta["health_settings"]  # what --shape, --copy-bytes and --timeout-s asked
    assert sizes["matmul_shape"] == [96, 96, 96] and sizes["copy_bytes"] == 2**20
    assert sizes["matmul_policy"]["timeout_s"] == sizes["copy_policy"]["timeout_s"] == 0.1
    default = default_settings("cpu").matmul_policy  # a shorter check is the same check, shorter
    scaled = sizes["matmul_policy"]
    assert scaled["min_time_s"] / 0.1 == pytest.approx(default.min_time_s / default.timeout_s)
    assert scaled["warmup_max_s"] / 0.1 == pytest.approx(default.warmup_max_s / default.timeout_s)
    assert sorted(run.cases["identity.params.shape_label"]) == ["1Mi copy", "96x96x96"]
    assert [r["name"] for r in run.health] == [r["name"] for r in doc["checks"]]
    assert sorted(run.cases["identity.kernel"]) == ["matmul", "memcopy"]
    assert set(run.cases["identity.health_verdict"]) == {"PASS"}
    for repeats in run.cases["timing.repeats"]:  # each reading is the median of 5 short repeats
        assert len(repeats) == 5 and all(r["time_median_s"] > 0 for r in repeats)
    (golden,) = run.meta["health"]["canaries"]  # what a baseline blessed from it holds
    assert golden["sha256"].startswith(rows["canary repeat"]["value"])


def test_a_blessed_health_run_becomes_the_baseline(tmp_path, quiet_psi, capsys):
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


def test_a_baseline_of_another_sku_is_ignored_with_a_warning(tmp_path, capsys):
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
        (["--shape", "96x96"], "--shape: shape '96x96' is not MxNxK"),
        (["--shape", "0x96x96"], "every dimension must be positive"),
        (["--copy-bytes", "lots"], "--copy-bytes: size 'lots' is not a size like"),
        (["--copy-bytes", "2"], "at least 4"),
        (["--repeats", "0"], "--repeats: '0' must be at least 1"),
        (["--timeout-s", "0"], "--timeout-s: '0' must be a positive"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, args, message):
    assert health(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("flopwatt: error: ") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()  # refused before anything was measured


def test_the_nightly_marks_a_failed_devices_results_and_bless_leaves_them_out(
    tmp_path, quiet_psi, keep_threads, capsys
):
    # a health baseline that claims an exaflop on this CPU: the nightly's pre-flight (at
    # the baseline's own sizes) reads this CPU's matmul as far too slow, beyond any noise
    root = tmp_path / "baselines"
    one = ["--threads", "1"]  # no OpenMP barrier spinning against the suite's other work
    assert health(tmp_path / "check", *one, "--baselines", str(tmp_path / "none")) == 0
    checked = only_run(tmp_path / "check" / "runs")
    assert main(["baseline", "bless", str(checked), "--root", str(root)]) == 0
    (cases_file,) = root.glob("*/health/cases.jsonl")
    cases = [json.loads(line) for line in cases_file.read_text().splitlines()]
    for case in cases:  # schema 2: the parts of each record
        if case["identity"]["kernel"] == "matmul":
            timing, ops = case["timing"], case["work"]["ops"]
            for timed in [timing, *timing["repeats"]]:
                timed["time_median_s"] = ops / 1e18
    cases_file.write_text("".join(json.dumps(case) + "\n" for case in cases))
    capsys.readouterr()
    fast = ["--timeout-s", "0.2", "--min-time-s", "0.02", "--warmup-s", "0.01", "--idle-s", "0"]
    args = ["--suite", "nightly", "--device", "cpu", "--shape", "64x64x64", "--dtype", "fp32"]
    code = main(
        ["run", *args, *fast, *one, "--baselines", str(root), "--out", str(tmp_path / "runs")]
    )
    out = capsys.readouterr().out
    run_dir = only_run(tmp_path / "runs")
    run = load_run(run_dir)
    rows = {r["name"]: r for r in run.health}
    assert rows["matmul vs baseline"]["verdict"] == FAIL, rows["matmul vs baseline"]
    assert code == 1 and "health: FAIL" in out
    assert run.meta["status"] == "complete" and run.meta["health"]["verdict"] == FAIL
    assert run.meta["health_settings"]["matmul_shape"] == [96, 96, 96]  # the baseline's
    assert list(run.cases["identity.health_verdict"]) == [FAIL]  # measured and kept, but marked
    assert "excluded from baselines" in run.cases["identity.warnings"][0][-1]
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
    assert "## Hardware health" in report and "matmul vs baseline" in report


def test_two_ranks_check_at_once_and_the_canary_catches_a_flipped_bit(tmp_path):
    # rank 1 flips one bit of its canary result: the two ranks disagree, nobody can tell
    # which is right, both FAIL and the exit code is 1; the allreduce across them is exact
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "runs"
    args = ["--nproc", "2", "--device", "cpu", "--canary-flip-rank", "1", "--out", str(out), *TINY]
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
