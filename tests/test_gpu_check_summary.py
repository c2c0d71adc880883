"""The GPU check's figures against their floors (numbers in, verdicts out), and
gpu-check.json assembled from real run folders written on this CPU."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_ceiling import make_ceiling, stats

from bench.cli import main as flopwatt
from bench.commands.plausibility import supported_dtypes
from bench.peaks.table import find_row
from bench.results.blessed.ceiling import save_ceiling
from bench.results.ceiling_model import Bandwidth, MemoryCeiling

ROOT = Path(__file__).resolve().parents[1]
H200 = find_row("NVIDIA H200", "9.0")
BF16_SPEC, MEM_SPEC = 989.4e12, 4.8e12  # the H200 SXM datasheet row, read independently


@pytest.fixture(scope="module")
def fig():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gpu_check_figures

        yield gpu_check_figures
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def by_name(figures):
    return {f.name: f for f in figures}


def ceiling_json(tmp_path, bf16=788e12, copy=4.3e12, means=(700e12, 760e12)):
    base = make_ceiling(sku="h200-sxm-141gb", dtypes=("bf16",))
    points = tuple(
        replace(stats((4096 * (i + 1), 4096, 4096), bf16), mean_ops_per_s=mean)
        for i, mean in enumerate(means)
    )
    entry = replace(base.matmul["bf16"], best=points[0], points=points, correctness={"ok": True})
    kernels = {
        "copy": Bandwidth("copy", copy, copy, 2**30, 2**31, "2 x buffer bytes", 50, 0.01, None)
    }
    memory = MemoryCeiling(kernels, MEM_SPEC, "H200 datasheet", 50 * 2**20, "L2", "now")
    ceiling = replace(base, matmul={"bf16": entry}, memory=memory, skipped={})
    path, _ = save_ceiling(ceiling, tmp_path / "ceiling")
    return json.loads(path.read_text())


def test_the_datasheet_row_has_the_h200_figures_the_floors_divide():
    assert H200.ops_per_s["bf16"] == BF16_SPEC and H200.mem_bytes_per_s == MEM_SPEC


def test_bf16_ceiling_floor_mamf_statistic_and_copy_bandwidth(fig, tmp_path):
    figures = by_name(fig.ceiling_figures(ceiling_json(tmp_path), H200, ""))
    bf16 = figures["bf16 ceiling (best median, quick search)"]
    assert bf16.verdict == "PASS" and bf16.value == 788e12 and "742 TFLOP/s" in bf16.floor
    assert "788 TFLOP/s" in bf16.anchor
    mamf = figures["bf16 MAMF statistic (max over shapes of the mean)"]
    assert mamf.value == 760e12 and mamf.verdict == "INFO" and "788 TFLOP/s" in mamf.floor
    copy = figures["device copy bandwidth (read + write counted)"]
    assert copy.verdict == "PASS" and copy.value == 4.3e12 and "4.08 TB/s" in copy.floor

    low = by_name(fig.ceiling_figures(ceiling_json(tmp_path, 700e12, 4.0e12), H200, ""))
    assert low["bf16 ceiling (best median, quick search)"].verdict == "FAIL"  # 0.71 of spec
    assert low["device copy bandwidth (read + write counted)"].verdict == "FAIL"  # 0.83
    above = fig.ceiling_figures(ceiling_json(tmp_path, copy=5.0e12), H200, "")
    assert by_name(above)["device copy bandwidth (read + write counted)"].verdict == "FAIL"


def test_without_a_ceiling_every_figure_is_missing_with_the_reason(fig):
    figures = fig.ceiling_figures(None, H200, "the ceiling step timed out")
    assert {f.verdict for f in figures} == {"MISSING"}
    assert all(f.value is None and f.source == "the ceiling step timed out" for f in figures)


def test_supported_dtypes_follow_the_compute_capability():
    assert supported_dtypes("9.0") == ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")
    assert supported_dtypes("8.9") == supported_dtypes("9.0")
    assert supported_dtypes("8.0") == ("fp32", "tf32", "bf16", "fp16", "int8")
    assert supported_dtypes("7.5") == ("fp32", "fp16")
    assert supported_dtypes(None) == ("fp32", "fp16")


def matmul_case(dtype, frac=0.8, status="ok", reason=None):
    return {
        "dtype": dtype,
        "params.shape_label": "8192x8192x8192",
        "status": status,
        "reason": reason,
        "frac_of_peak": frac,
        "achieved_ops_per_s": 1e12,
        "peak_source": "datasheet",
    }


def test_every_supported_dtype_must_be_ok_at_8192(fig):
    cases = [matmul_case(d) for d in ("bf16", "fp16", "tf32", "fp32", "fp8", "int8")]
    assert {f.verdict for f in fig.matmul_figures(cases, "9.0", "")} == {"PASS"}
    cases[4] = matmul_case("fp8", None, "skipped", "no _scaled_mm")
    figures = by_name(fig.matmul_figures(cases, "9.0", ""))
    assert figures["matmul fp8 8192x8192x8192"].verdict == "FAIL"
    assert "no _scaled_mm" in figures["matmul fp8 8192x8192x8192"].note
    ampere = by_name(fig.matmul_figures(cases, "8.0", ""))
    assert ampere["matmul fp8 8192x8192x8192"].verdict == "INFO"  # A100: no fp8 path
    for frac in (0.45, None, 1.2):  # bf16 under half its peak, unknown, or above it
        cases[0] = matmul_case("bf16", frac)
        assert (
            by_name(fig.matmul_figures(cases, "9.0", ""))["matmul bf16 8192x8192x8192"].verdict
            == "FAIL"
        )


def attention_case(tail, rate=300e12, status="ok", reason=None):
    return {
        "dtype": "bf16",
        "params.shape_label": f"2x32x8x8192x128 {tail}",
        "status": status,
        "reason": reason,
        "achieved_ops_per_s": rate,
        "kernel_details.sdpa_backend": tail.split()[-1],
    }


def test_flash_forward_floor_and_the_other_sdpa_cases_printed(fig):
    cases = [
        attention_case("none fwd flash", 0.3 * BF16_SPEC),
        attention_case("causal bwd cudnn", None, "skipped", "torch has no cudnn SDPA kernel"),
    ]
    figures = by_name(fig.attention_figures(cases, H200, ""))
    assert figures["sdpa bf16 llama3-8b:8192 none fwd flash"].verdict == "PASS"
    cudnn = figures["sdpa bf16 llama3-8b:8192 causal bwd cudnn"]
    assert cudnn.verdict == "INFO" and "no cudnn SDPA kernel" in cudnn.note
    cases[0] = attention_case("none fwd flash", 0.27 * BF16_SPEC)
    figures = by_name(fig.attention_figures(cases, H200, ""))
    assert figures["sdpa bf16 llama3-8b:8192 none fwd flash"].verdict == "FAIL"
    missing = by_name(fig.attention_figures(cases[1:], H200, ""))
    assert missing["sdpa bf16 llama3-8b:8192 none fwd flash"].verdict == "MISSING"


def energy_case(dtype, ratio=1.01, ops_per_j=1.2e12, source="nvml_energy_counter"):
    return {
        "dtype": dtype,
        "params.shape_label": "8192x8192x8192",
        "status": "ok",
        "energy_counter_vs_integral": ratio,
        "ops_per_j": ops_per_j,
        "energy_source": source,
        "window_s": 5.02,
    }


def energy_meta(period=0.1, idle_w=95.0, idle_source="nvml_energy_counter"):
    return {
        "power_source": {"name": "nvml", "counter_update_period_s": period},
        "idle": {"power_w": idle_w, "energy_source": idle_source, "reason": None},
    }


def test_energy_figures_need_nvml_a_period_and_a_consistent_counter(fig):
    cases = [energy_case("bf16"), energy_case("fp8", None, 2.5e12)]
    figures = fig.energy_figures(energy_meta(), cases, "")
    assert {f.verdict for f in figures} == {"PASS"}
    named = by_name(figures)
    assert named["energy counter / power integral, bf16 8192^3"].note == "5.0 s window"
    assert "consistency check" in named["energy counter / power integral, bf16 8192^3"].floor
    assert named["fp8 TOPS/W"].value == 2.5e12 and named["idle power"].value == 95.0

    bad = by_name(
        fig.energy_figures(
            energy_meta(period=None, idle_source="estimate"),
            [energy_case("bf16", 1.04), energy_case("fp8", source="estimate")],
            "",
        )
    )
    for name in (
        "NVML energy counter update period",
        "energy counter / power integral, bf16 8192^3",
        "idle power",
        "fp8 TOPS/W",
    ):
        assert bad[name].verdict == "FAIL", name
    assert bad["bf16 TFLOP/s per W"].verdict == "PASS"


def test_timer_sampler_and_health_figures(fig):
    assert fig.timer_figure({"ratio": 1.02}, "").verdict == "PASS"
    assert fig.timer_figure({"ratio": 0.96}, "").verdict == "FAIL"
    none = fig.timer_figure({"ratio": None, "reason": "triton is not importable"}, "")
    assert none.verdict == "MISSING" and "triton is not importable" in none.source
    assert fig.sampler_figure({"ratio": 1.004, "per_call_s": 1e-3}, "").verdict == "PASS"
    assert fig.sampler_figure({"ratio": 1.02, "per_call_s": 1e-3}, "").verdict == "FAIL"
    rows = [{"verdict": "PASS", "reason": "ok"}, {"verdict": "N/A", "reason": "one GPU"}]
    assert fig.health_figure({"health": {"verdict": "PASS"}}, rows, "").verdict == "PASS"
    assert fig.health_figure({"health": {"verdict": "FAIL"}}, rows, "").verdict == "FAIL"
    no_reason = [*rows, {"verdict": "WARN", "reason": ""}]
    assert fig.health_figure({"health": {"verdict": "WARN"}}, no_reason, "").verdict == "FAIL"


def test_overall_verdict(fig):
    ok = fig.Figure("x", 1.0, "x", "", "PASS", "")
    assert fig.overall([ok], [{"verdict": "RETRIED-PASS"}]) == "PASS"
    assert fig.overall([ok], [{"verdict": "TIMEOUT"}]) == "FAIL"
    assert fig.overall([replace(ok, verdict="MISSING")], []) == "FAIL"


@pytest.mark.slow
def test_gpu_check_json_from_real_cpu_run_folders(tmp_path):
    """The summary reads what the steps write; on a CPU the GPU figures are MISSING with their
    reasons, and the health verdict and rows come through."""
    work, out = tmp_path / "work", tmp_path / "out"
    fast = ["--timeout-s", "0.3", "--min-time-s", "0.02", "--warmup-s", "0.02", "--idle-s", "0"]
    matmul = ["run", "--device", "cpu", "--shape", "16x16x16", "--dtype", "fp32", *fast]
    assert flopwatt([*matmul, "--power", "none", "--out", str(work / "matmul")]) == 0
    health = ["health", "--device", "cpu", "--out", str(work / "health")]
    assert flopwatt([*health, "--baselines", str(tmp_path / "none")]) in (0, 1)
    (work / "timers.json").write_text(json.dumps({"ratio": None, "reason": "no triton"}))
    (work / "sampler.json").write_text(json.dumps({"ratio": 1.004, "per_call_s": 1e-3}))
    verdict = {"step": "tests", "verdict": "PASS", "rc": 0, "seconds": 1.0, "limit_s": 75}
    (work / "verdicts.jsonl").write_text(json.dumps(verdict) + "\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check_summary.py"), str(work), str(out)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert done.returncode == 1, done.stdout + done.stderr  # GPU figures are missing here
    doc = json.loads((out / "gpu-check.json").read_text())
    figures = {f["name"]: f for f in doc["figures"]}
    assert doc["verdict"] == "FAIL" and doc["steps"] == [verdict]
    assert figures["bf16 ceiling (best median, quick search)"]["verdict"] == "MISSING"
    fp32 = figures["matmul fp32 8192x8192x8192"]  # required everywhere; only 16^3 ran here
    assert fp32["verdict"] == "MISSING" and fp32["source"].startswith("no fp32 8192x8192x8192")
    assert figures["bf16 8192^3 time: flopwatt / triton do_bench"]["source"] == "None: no triton"
    assert figures["sampler overhead at 20 Hz, ~1 ms kernel (with / without)"]["verdict"] == "PASS"
    health = figures["flopwatt health"]
    assert health["value"] in ("PASS", "WARN", "FAIL") and health["source"] == "health.jsonl"
    assert doc["health_rows"] and all(r["reason"] for r in doc["health_rows"])
    assert "remain unverified" in doc["unverified"]
    assert all(
        {"name", "value", "unit", "floor", "verdict", "source"} <= f.keys() for f in doc["figures"]
    )
    assert "gpu check: FAIL" in done.stdout and "verdict" in done.stdout.splitlines()[0]


def test_amd_floors_are_amds(fig):
    """An MI300X's bf16 ceiling floor and 8192^3 floor are AMD's (dense MFMA runs well below
    the peak clock), and tf32/fp8 are required where its arch has them."""
    mi300x = find_row("AMD Instinct MI300X", "9.4")
    ceiling = fig.ceiling_figures(None, mi300x, "not run")
    assert "0.45 x" in by_name(ceiling)["bf16 ceiling (best median, quick search)"].floor
    assert "0.75 x" in by_name(ceiling)["device copy bandwidth (read + write counted)"].floor
    identity = {
        "vendor": "amd",
        "name": "AMD Instinct MI300X",
        "compute_capability": "9.4",
        "sm_count": 304,
        "gcn_arch": "gfx942",
    }
    figures = by_name(fig.matmul_figures(None, "9.4", "not run", identity))
    assert ">= 0.4 of spec" in figures["matmul bf16 8192x8192x8192"].floor
    assert figures["matmul fp8 8192x8192x8192"].verdict == "MISSING"  # required on gfx942
    assert (
        ">= 0.5 of spec"
        in by_name(fig.matmul_figures(None, "9.0", "not run"))["matmul bf16 8192x8192x8192"].floor
    )
