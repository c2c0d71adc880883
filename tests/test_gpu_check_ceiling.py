"""scripts/gpu_check_ceiling.py: MAMF comparison and plausibility, on synthetic ceiling files."""

import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_ceiling import make_ceiling, stats

from bench.results.ceiling_model import Bandwidth, MemoryCeiling
from bench.results.blessed.ceiling import save_ceiling

ROOT = Path(__file__).resolve().parents[1]
H100 = "H100 SXM5 80GB"


@pytest.fixture(scope="module")
def check():
    sys.path.insert(0, str(ROOT / "scripts"))  # the script imports MAMF from gpu_check
    try:
        spec = importlib.util.spec_from_file_location(
            "gpu_check_ceiling", ROOT / "scripts" / "gpu_check_ceiling.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def h100_ceiling(bf16=780e12, copy=3.0e12, correct=True, stop="budget"):
    base = make_ceiling(sku="h100-sxm5-80gb", dtypes=("bf16", "fp8"))
    entries = {
        dtype: replace(
            entry,
            best=stats((2048, 2048, 13312), rate),
            points=(stats((2048, 2048, 13312), rate),),
            spec_peak_ops_per_s=peak,
            spec_peak_source="datasheet",
            correctness={"ok": True} if correct else None,
            stop_reason=stop,
        )
        for (dtype, entry), rate, peak in zip(
            base.matmul.items(), (bf16, 1.4e15), (989.4e12, 1978.9e12), strict=True
        )
    }
    kernels = {
        name: Bandwidth(name, rate, rate * 1.01, 2**30, n * 2**30, "x", 50, 0.01, rate / 3.35e12)
        for name, rate, n in (("copy", copy, 2), ("read", 3.1e12, 1))
    }
    memory = MemoryCeiling(kernels, 3.35e12, f"{H100} datasheet", 50 * 2**20, "device L2", "now")
    return replace(
        base,
        device={"label": "cuda:0", "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"},
        peak_table_sku=H100,
        matmul=entries,
        memory=memory,
        skipped={},
    )


def run_script(baselines, out):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check_ceiling.py"), str(baselines), str(out)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )


def test_a_plausible_ceiling_is_printed_beside_mamf_and_copied_for_the_baselines(tmp_path):
    save_ceiling(h100_ceiling(), tmp_path / "ceiling")
    done = run_script(tmp_path / "ceiling", tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    bf16 = next(line for line in done.stdout.splitlines() if line.startswith("bf16"))
    assert "780 TFLOP/s" in bf16 and "794 TFLOP/s" in bf16 and "0.982" in bf16
    assert "memory copy: 3 TB/s = 89.6% of 3.35 TB/s" in done.stdout
    assert (tmp_path / "out" / "h100-sxm5-80gb" / "ceiling.json").is_file()
    assert done.stdout.rstrip().endswith("plausible")


def test_each_rule_fires(check):
    assert check.problems_of(h100_ceiling(), ("bf16", "fp8")) == []
    assert "outside 75%..100%" in check.problems_of(h100_ceiling(bf16=400e12), ())[0]
    assert "of the spec peak" in check.problems_of(h100_ceiling(bf16=1000e12), ())[0]
    assert "under 85%" in check.problems_of(h100_ceiling(copy=1e12), ())[0]
    assert "of the spec bandwidth" in check.problems_of(h100_ceiling(copy=3.5e12), ())[0]
    assert "not re-checked" in check.problems_of(h100_ceiling(correct=False), ())[0]
    assert "interrupted" in check.problems_of(h100_ceiling(stop="interrupted"), ())[0]
    assert "int8: not measured" in check.problems_of(h100_ceiling(), ("int8",))
    failed = replace(h100_ceiling(), skipped={"fp16": "failed: wrong result at 1x1x1"})
    assert "fp16: failed" in check.problems_of(failed, ())[0]
    assert "memory: not measured" in check.problems_of(replace(h100_ceiling(), memory=None), ())


def test_a_cpu_ceiling_is_refused_as_bad_input(tmp_path):
    save_ceiling(make_ceiling(), tmp_path / "ceiling")
    done = run_script(tmp_path / "ceiling", tmp_path / "out")
    assert done.returncode == 2 and "not measured on a GPU" in done.stderr
