"""The Python API (bench.measure, power_window, run, load_runs) on this machine's real CPU."""

import dataclasses
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import bench
from bench.api.inputs import device_spec, math_mode_of
from bench.devices.cpu import CpuBackend
from bench.peaks.lookup import resolve_peak
from bench.peaks.table import MATH_MODES
from bench.power.estimate import EstimatePowerSource
from bench.results.record import PART_OF, VERSION_FIELDS

ROOT = Path(__file__).resolve().parents[1]
N = 48
OPS = 2 * N**3
QUICK = 0.2  # max_time_s: enough samples for statistics, short enough for the suite


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two OpenMP threads wait on each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cpu_identity(one_thread):
    """The CPU as measure() sees it: its peak counts the cores torch's threads use."""
    return CpuBackend().facts().identity


def mm():
    a = torch.randn(N, N)
    return lambda: torch.mm(a, a)


def test_import_bench_is_cheap_and_its_public_names_resolve():
    code = (
        "import sys, bench; assert 'torch' not in sys.modules, 'import bench imported torch'; "
        "[getattr(bench, name) for name in bench.__all__]; print(sorted(bench.__all__))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "'measure'" in done.stdout and "'power_window'" in done.stdout
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bench.nope  # noqa: B018


def test_measure_times_a_real_matmul_and_rates_it_against_the_cpu_peak(cpu_identity):
    m = bench.measure(
        mm(),
        ops=OPS,
        bytes=3 * N * N * 4,
        dtype="fp32",
        device="cpu",
        max_time_s=QUICK,
        power="none",
    )
    assert m.device == "cpu" and m.dtype == m.math_mode == "fp32" and m.timing_mode == "hot"
    assert m.n_samples == len(m.samples_s) >= 10
    assert m.time_median_s == pytest.approx(statistics.median(m.samples_s), rel=1e-12)
    assert min(m.samples_s) == m.time_min_s <= m.time_median_s <= m.time_max_s
    assert m.achieved_ops_per_s == pytest.approx(OPS / m.time_median_s, rel=1e-12)
    assert m.arithmetic_intensity == pytest.approx(OPS / (3 * N * N * 4))
    peak = resolve_peak(cpu_identity, "fp32")
    assert (m.peak_ops_per_s, m.peak_source, m.peak_detail) == (
        peak.ops_per_s,
        peak.source,
        peak.detail,
    )
    assert m.frac_of_peak == pytest.approx(m.achieved_ops_per_s / peak.ops_per_s)
    # The same call timed here, independently: the best of a few 200-call blocks.
    fn = mm()
    blocks = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            fn()
        blocks.append((time.perf_counter() - start) / 200)
    assert min(blocks) / 10 < m.time_median_s < max(blocks) * 10
    assert "frac_of_peak" not in m.reasons and "achieved_ops_per_s" not in m.reasons


def test_every_measurement_field_is_named_as_in_cases_jsonl():
    case_fields = {*PART_OF, "schema_version", "method_version"}
    ours = {f.name for f in dataclasses.fields(bench.Measurement)} - {"reasons", "samples_s"}
    assert ours <= case_fields, ours - case_fields


def test_a_math_mode_without_a_peak_here_is_none_with_the_reason(cpu_identity):
    missing = [mode for mode in MATH_MODES if resolve_peak(cpu_identity, mode).ops_per_s is None]
    if not missing:
        pytest.skip("this CPU has a peak for every math mode")
    m = bench.measure(mm(), ops=OPS, dtype=missing[0], device="cpu", max_time_s=QUICK, power="none")
    why = resolve_peak(cpu_identity, missing[0]).detail
    assert m.achieved_ops_per_s is not None
    assert m.peak_ops_per_s is None and m.frac_of_peak is None
    assert m.reasons["frac_of_peak"] == m.reasons["peak_ops_per_s"] == why


def test_without_ops_or_dtype_every_rate_is_none_with_a_reason():
    m = bench.measure(mm(), device="cpu", max_time_s=QUICK, power="none")
    assert m.time_median_s > 0
    for name in ("achieved_ops_per_s", "frac_of_peak", "ops_per_j", "frac_of_measured_peak"):
        assert getattr(m, name) is None
        assert "ops=" in m.reasons[name]
    assert m.peak_ops_per_s is None and "dtype=" in m.reasons["peak_ops_per_s"]


def test_power_none_skips_the_energy_window():
    m = bench.measure(mm(), ops=OPS, device="cpu", max_time_s=QUICK, power="none")
    assert m.energy_j is None and m.window_s is None and m.iterations is None
    assert m.reasons["energy_j"] == m.energy_reason == "power='none' was passed"


def test_a_power_source_runs_the_energy_window_after_the_timing():
    source = EstimatePowerSource(100.0, "a test TDP", "cpu")
    m = bench.measure(mm(), ops=OPS, device="cpu", max_time_s=QUICK, power=source)
    assert m.energy_source == "estimate" and m.energy_j > 0
    assert 0 < m.window_s < 1.0  # capped at max_time_s (plus the last block of calls)
    assert m.iterations > 0
    assert m.avg_power_w == pytest.approx(m.energy_j / m.window_s)
    assert m.ops_per_j == pytest.approx(OPS * m.iterations / m.energy_j)
    assert "estimate" in m.energy_reason


def test_flush_times_each_call_cold():
    m = bench.measure(mm(), ops=OPS, device="cpu", flush=True, max_time_s=QUICK, power="none")
    assert m.timing_mode == "cold" and m.n_samples == len(m.samples_s)


def test_a_stored_ceiling_gives_the_fraction_of_the_measured_peak(tmp_path, cpu_identity):
    from test_ceiling import make_ceiling

    from bench.results.blessed.ceiling import save_ceiling
    from bench.results.blessed.paths import sku_key

    save_ceiling(make_ceiling(sku=sku_key(cpu_identity)), tmp_path)  # fp32: 80e9 op/s
    m = bench.measure(
        mm(),
        ops=OPS,
        dtype="fp32",
        device="cpu",
        max_time_s=QUICK,
        power="none",
        baselines=tmp_path,
    )
    assert m.measured_peak_source == "stored" and m.measured_peak_ops_per_s == 80e9
    assert m.frac_of_measured_peak == pytest.approx(m.achieved_ops_per_s / 80e9)
    none = bench.measure(
        mm(),
        ops=OPS,
        dtype="fp32",
        device="cpu",
        max_time_s=QUICK,
        power="none",
        baselines=tmp_path / "empty",
    )
    assert none.frac_of_measured_peak is None
    assert "no stored ceiling" in none.reasons["frac_of_measured_peak"]


def test_what_the_function_raises_on_its_first_call_reaches_the_caller():
    def broken():
        raise ZeroDivisionError("the caller's own bug")

    with pytest.raises(ZeroDivisionError, match="the caller's own bug"):
        bench.measure(broken, device="cpu", max_time_s=QUICK, power="none")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"fn": 42}, "needs a callable"),
        ({"ops": -1}, "ops= must be a positive"),
        ({"ops": "1e9"}, "ops= must be a number"),
        ({"bytes": 0}, "bytes= must be a positive"),
        ({"dtype": "fp13"}, "unknown dtype 'fp13'"),
        ({"device": "tpu"}, "'cpu', 'cuda' or 'cuda:N'"),
        ({"max_time_s": 0}, "max_time_s= must be a positive"),
        ({"power": "sun"}, "power='sun' is not one of"),
        ({"power": 3}, "power= must be one of"),
    ],
)
def test_bad_input_is_a_one_line_value_error(args, message):
    fn = args.pop("fn", lambda: None)
    with pytest.raises(ValueError, match=message) as caught:
        bench.measure(fn, **{"device": "cpu", **args})
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is absent")
def test_asking_for_cuda_without_one_says_what_to_pass():
    with pytest.raises(ValueError, match="no CUDA device here; pass device='cpu'"):
        bench.measure(lambda: None, device="cuda:0")


def test_dtype_names_a_math_mode_or_a_torch_dtype():
    assert math_mode_of(torch.bfloat16) == "bf16"
    assert math_mode_of(torch.float32) == "fp32"
    assert math_mode_of("TF32") == "tf32"
    assert math_mode_of(None) is None


def test_device_none_is_the_current_device_decided_by_torch():
    expected = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    assert device_spec(None) == expected
    with torch.device("cpu"):
        assert device_spec(None) == expected
    assert device_spec(torch.device("cpu")) == "cpu"


def test_power_window_measures_a_block_or_says_why_not():
    with bench.power_window("cpu") as w:
        assert w.energy_j is None and w.reason  # still open, or nothing can measure
        sum(range(100_000))
    if w.energy_j is None:  # no readable RAPL here: the reason names what was tried
        assert w.avg_power_w is None and w.source is None and "rapl" in w.reason
    else:
        assert w.source == "rapl" and w.avg_power_w == pytest.approx(w.energy_j / w.window_s)


def test_power_window_with_a_source_gives_joules_and_watts():
    source = EstimatePowerSource(50.0, "a test TDP", "cpu")
    with bench.power_window("cpu", power=source) as w:
        deadline = time.perf_counter() + 0.1
        while time.perf_counter() < deadline:
            pass
    assert w.source == "estimate" and w.energy_j > 0 and w.window_s >= 0.1
    assert w.avg_power_w == pytest.approx(w.energy_j / w.window_s)
    with bench.power_window("cpu", power=source) as w:
        assert w.energy_j is None and "still open" in w.reason
    with pytest.raises(KeyError), bench.power_window("cpu", power=source) as w:
        raise KeyError("inside the block")
    assert w.energy_j is None  # a failed block measures nothing


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    plan = bench.RunPlan(
        axes={"matmul": {"shape": ("32x32x32",)}},
        dtypes=("fp32",),
        overrides=bench.PolicyOverrides(timeout_s=0.3),
    )
    torch.set_num_threads(1)
    return [bench.run(plan, device="cpu", out=out, idle_s=0) for _ in range(2)]


def test_run_writes_the_run_folder_of_flopwatt_run(two_runs):
    run = two_runs[0]
    assert run.meta["status"] == "complete"
    assert run.meta["command"].startswith("bench.run(RunPlan(")
    assert (run.path / "cases.jsonl").is_file() and run.path.name == run.meta["run_id"]
    (case,) = run.cases.to_dict("records")
    assert case["identity.kernel"] == "matmul" and case["identity.status"] == "ok"


def test_load_runs_concatenates_runs_with_a_run_id(two_runs):
    frame = bench.load_runs([two_runs[0].path, str(two_runs[1].path)])
    assert list(frame["run_id"]) == [r.meta["run_id"] for r in two_runs]
    assert frame.columns[0] == "run_id" and len(set(frame["run_id"])) == 2
    assert frame["rates.achieved_ops_per_s"].notna().all()
    assert len(bench.load_runs(two_runs[0])) == 1


def test_load_runs_reads_a_1x_run_into_the_same_dotted_columns(two_runs):
    old = Path(__file__).parent / "data" / "cpu-run"  # schema 1.1: flat lines
    frame = bench.load_runs([two_runs[0].path, old])
    assert not [c for c in frame.columns if "." not in c and c not in ("run_id", *VERSION_FIELDS)]
    rows = frame[frame["run_id"] != two_runs[0].meta["run_id"]]
    ok = rows["identity.status"] == "ok"
    assert 0 < ok.sum() < len(rows) and rows["identity.kernel"].notna().all()
    assert rows.loc[ok, "timing.time_median_s"].notna().all()
    assert set(rows["schema_version"]) == {"1.1"}
    assert set(frame["schema_version"]) == {"1.1", "2.0"}


def test_run_and_load_runs_refuse_bad_input_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="unknown kernel"):
        bench.run(bench.RunPlan(kernels=("nope",)), device="cpu", out=tmp_path)
    with pytest.raises(ValueError, match=r"needs a bench\.RunPlan"):
        bench.run({"kernels": ["matmul"]}, device="cpu", out=tmp_path)
    with pytest.raises(ValueError, match="not a flopwatt run folder"):
        bench.load_runs([tmp_path])
    with pytest.raises(ValueError, match="at least one run folder"):
        bench.load_runs([])


def test_a_measurement_is_frozen_and_hashable():
    m = bench.measure(mm(), device="cpu", max_time_s=QUICK, power="none")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.time_median_s = 0.0
    assert hash(m) == hash(dataclasses.replace(m))
