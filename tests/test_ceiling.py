"""Measured ceilings without a device: the search on scripted rates, ceiling.json, the ratios."""

import json
import math
import warnings

import pytest
import torch
from clock_backend import FakeClock

from bench.commands.ceiling.search import SearchSpace, search
from bench.devices.base import Unsupported
from bench.results.blessed.ceiling import (
    CeilingIgnored,
    ceiling_path,
    from_dict,
    read_ceiling,
    save_ceiling,
    to_dict,
)
from bench.results.ceiling_model import (
    Bandwidth,
    Ceiling,
    DtypeCeiling,
    MeasuredPeak,
    MemoryCeiling,
    ShapeStats,
    parse_label,
)
from bench.results.ratios import fill_ratios
from bench.results.record import CaseDraft
from bench.versions import METHOD_VERSION

OPTIMUM = (2048, 2304, 13312)
SPACE = SearchSpace(
    coarse=(1024, 2048, 4096, 8192, 12288, 16384),
    lo=256,
    hi=20480,
    min_step=256,
    refine_step=1024,
    seeds=((8192, 8192, 8192),),
)


def scripted_rate(shape):
    """A unimodal rate (in log space per dimension) whose best is OPTIMUM, at 800e12."""
    spread = sum(math.log(d / o) ** 2 for d, o in zip(shape, OPTIMUM, strict=True))
    return 800e12 * math.exp(-spread)


def stats(shape, rate):
    return ShapeStats(shape, rate * 0.99, rate, rate * 1.01, 20, 0.01, "noise_below_target")


class ScriptedMeasure:
    """measure_point on a fake clock: each shape costs `cost_s`; records what it was asked."""

    def __init__(self, clock, cost_s=0.3, rate=scripted_rate, interrupt_at=None, refuse=()):
        self.clock, self.cost_s, self.rate = clock, cost_s, rate
        self.interrupt_at, self.refuse, self.asked = interrupt_at, refuse, []

    def __call__(self, shape):
        if self.interrupt_at is not None and len(self.asked) == self.interrupt_at:
            raise KeyboardInterrupt
        self.asked.append(shape)
        self.clock.advance(self.cost_s)
        if shape[0] in self.refuse:
            raise Unsupported(f"M = {shape[0]} refused")
        return stats(shape, self.rate(shape))


def run_search(budget_s=60.0, space=SPACE, seeds=(), **kw):
    clock = FakeClock()
    probe = ScriptedMeasure(clock, **kw)
    return search(probe, space, budget_s, clock=clock, seeds=seeds), probe


# -- the search ------------------------------------------------------------------------------


def test_search_finds_the_best_of_a_scripted_rate_function_within_a_small_budget():
    result, probe = run_search(budget_s=30.0)
    assert result.best.shape == OPTIMUM
    assert result.stop_reason == "exhausted"
    assert len(probe.asked) == len(set(probe.asked)) == len(result.points)  # each shape once
    assert len(result.points) * 0.3 <= 30.0
    rates = [p.median_ops_per_s for p in result.points]
    assert result.geomean_ops_per_s == pytest.approx(
        math.exp(sum(map(math.log, rates)) / len(rates))
    )
    assert result.best_by("max").shape == OPTIMUM
    assert all(d % 256 == 0 for p in result.points for d in p.shape)


def test_a_budget_stops_the_search_within_one_shape():
    result, probe = run_search(budget_s=2.0, cost_s=0.5)
    assert result.stop_reason == "budget"
    assert len(probe.asked) == 4 and result.elapsed_s <= 2.0 + 0.5
    assert result.best is not None


def test_ctrl_c_keeps_every_shape_measured_so_far():
    result, probe = run_search(interrupt_at=7)
    assert result.stop_reason == "interrupted" and result.interrupted
    assert len(result.points) == 7
    assert result.best.median_ops_per_s == max(scripted_rate(s) for s in probe.asked)


def test_seeds_are_measured_first_and_exactly_and_refused_shapes_are_skipped_with_reasons():
    result, probe = run_search(seeds=((100, 200, 300),), refuse=(1024,))
    assert probe.asked[0] == (100, 200, 300)  # not snapped to the 256 lattice
    assert any("refused" in why for why in result.skipped.values())
    assert all(p.shape[0] != 1024 for p in result.points)


def test_shapes_predicted_too_slow_are_skipped_not_measured():
    space = SearchSpace(
        coarse=(1024, 16384), lo=256, hi=16384, min_step=256, refine_step=256, max_call_s=0.01
    )
    result, probe = run_search(space=space, seeds=((1024, 1024, 1024),))
    assert (16384, 1024, 1024) not in probe.asked
    assert "predicted" in result.skipped["1024x1024x16384"]


# -- ceiling.json ----------------------------------------------------------------------------


def make_ceiling(sku="cpu-test", dtypes=("fp32",), torch_version="2.13.0", memory=True):
    points = (stats((512, 512, 512), 50e9), stats((1024, 1024, 1024), 80e9))
    entries = {
        dtype: DtypeCeiling(
            dtype=dtype,
            best=points[1],
            best_mean_shape="1024x1024x1024",
            best_max_shape="1024x1024x1024",
            geomean_ops_per_s=math.sqrt(50e9 * 80e9),
            points=points,
            preset="quick",
            budget_s=25.0,
            search_s=20.0,
            stop_reason="budget",
            timing_mode="cold",
            measured_at="2026-01-01T00:00:00+00:00",
            correctness={"ok": True},
            spec_peak_ops_per_s=160e9,
            spec_peak_source="derived",
        )
        for dtype in dtypes
    }
    bandwidth = Bandwidth("copy", 10e9, 12e9, 2**28, 2**29, "2 x", 10, 0.05, None)
    mem = MemoryCeiling({"copy": bandwidth}, None, "no CPU bandwidth", 2**25, "sysfs", "now")
    return Ceiling(
        sku=sku,
        device={"label": "cpu", "model": "Test CPU"},
        peak_table_sku=None,
        method_version=METHOD_VERSION,
        measured_at="2026-01-01T00:00:00+00:00",
        command="flopwatt ceiling",
        environment={"software": {"torch": torch_version}},
        software={"torch": torch_version},
        matmul=entries,
        memory=mem if memory else None,
        skipped={"tf32": "TF32 is a tensor-core math mode"},
    )


def test_a_ceiling_file_round_trips_and_is_keyed_by_sku(tmp_path):
    original = make_ceiling()
    path, notes = save_ceiling(original, tmp_path)
    assert path == ceiling_path(tmp_path, "cpu-test") == tmp_path / "cpu-test" / "ceiling.json"
    assert notes == []
    loaded, why = read_ceiling(path, "cpu-test")
    assert why == "" and to_dict(loaded) == to_dict(original)
    data = json.loads(path.read_text())
    assert data["method_version"] == METHOD_VERSION and data["sku"] == "cpu-test"
    assert (
        data["matmul"]["fp32"]["ops_per_s"] == 80e9 and data["memory"]["roof_bytes_per_s"] == 10e9
    )
    peak = loaded.lookup("fp32", "stored", str(path))
    assert peak.ops_per_s == 80e9 and "1024x1024x1024" in peak.detail and peak.timing_mode == "cold"
    missing = loaded.lookup("tf32", "stored", str(path))
    assert missing.ops_per_s is None and "tensor-core" in missing.detail
    assert parse_label("1x2x3") == (1, 2, 3)


def test_saving_merges_other_dtypes_only_when_the_software_is_the_same(tmp_path):
    save_ceiling(make_ceiling(dtypes=("fp32",)), tmp_path)
    path, notes = save_ceiling(make_ceiling(dtypes=("bf16",), memory=False), tmp_path)
    merged, _ = read_ceiling(path, "cpu-test")
    assert set(merged.matmul) == {"fp32", "bf16"} and merged.memory is not None
    assert any("kept fp32" in n for n in notes)
    path, notes = save_ceiling(make_ceiling(dtypes=("fp16",), torch_version="2.14"), tmp_path)
    replaced, _ = read_ceiling(path, "cpu-test")
    assert set(replaced.matmul) == {"fp16"} and any("other software" in n for n in notes)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.update(sku="h100-sxm5-80gb"), "measured on SKU 'h100-sxm5-80gb'"),
        (lambda d: d.update(method_version=METHOD_VERSION + 1), "method version"),
        (lambda d: d["matmul"]["fp32"].update(ops_per_s=-1.0), "corrupt"),
        (lambda d: d["matmul"]["fp32"]["best"].update(shape="12x"), "corrupt"),
        (lambda d: d.update(kind="something-else"), "not a flopwatt ceiling file"),
    ],
)
def test_a_file_of_another_sku_or_method_or_a_corrupt_one_is_ignored_with_a_warning(
    tmp_path, mutate, why
):
    path, _ = save_ceiling(make_ceiling(), tmp_path)
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.warns(CeilingIgnored, match="not used as a denominator") as caught:
        ceiling, reason = read_ceiling(path, "cpu-test")
    assert ceiling is None and why in reason and why in str(caught[0].message)


def test_unparseable_json_is_ignored_and_a_missing_file_is_not_a_warning(tmp_path):
    path = tmp_path / "cpu-test" / "ceiling.json"
    path.parent.mkdir()
    path.write_text('{"kind": "flopwatt-ceiling", "matmul": {')
    with pytest.warns(CeilingIgnored, match="corrupt"):
        assert read_ceiling(path, "cpu-test")[0] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ceiling, why = read_ceiling(tmp_path / "none" / "ceiling.json", "cpu-test")
    assert ceiling is None and "does not exist" in why
    with pytest.raises(ValueError, match="not a flopwatt ceiling"):
        from_dict([])


# -- the two fractions -----------------------------------------------------------------------


def case_result(**kw):
    base = dict(
        case_id="c",
        kernel="matmul",
        params={"shape_label": "8x8x8"},
        dtype="bf16",
        device="cuda:0",
        world_size=1,
        status="ok",
        math_mode="bf16",
        achieved_ops_per_s=600e12,
        peak_ops_per_s=989e12,
        peak_source="datasheet",
        peak_clock_hz=1.83e9,
        timing_mode="cold",
        clock_hz_before=1.70e9,
        clock_hz_after=1.50e9,
        clock_source="nvml current SM clock",
    )
    return CaseDraft(**{**base, **kw})


def test_frac_of_clock_peak_scales_the_peak_by_the_measured_clock():
    r = case_result()
    fill_ratios(r, None)
    assert r.clock_peak_ops_per_s == pytest.approx(989e12 * 1.6e9 / 1.83e9)
    assert r.frac_of_clock_peak == pytest.approx(600e12 / r.clock_peak_ops_per_s)
    assert "mean of the clocks before and after" in r.clock_peak_detail
    windowed = case_result(sm_clock_hz_median=1.755e9)
    fill_ratios(windowed, None)
    assert windowed.clock_peak_ops_per_s == pytest.approx(989e12 * 1.755 / 1.83)
    assert "energy window" in windowed.clock_peak_detail


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"clock_hz_after": None, "clock_source": "NVML unavailable"}, "NVML unavailable"),
        ({"peak_clock_hz": None, "peak_source": "user"}, "names no spec clock"),
        ({"peak_ops_per_s": None}, "no spec peak"),
    ],
)
def test_frac_of_clock_peak_is_none_with_the_reason_when_a_clock_is_unknown(fields, why):
    r = case_result(**fields)
    fill_ratios(r, None)
    assert r.frac_of_clock_peak is None and r.clock_peak_ops_per_s is None
    assert why in r.clock_peak_detail


def test_frac_of_measured_peak_divides_by_the_ceiling_or_says_why_not():
    r = case_result()
    fill_ratios(r, MeasuredPeak(750e12, "stored", "ceiling.json: best median at 2048x2048x13312"))
    assert r.frac_of_measured_peak == pytest.approx(0.8)
    assert r.measured_peak_source == "stored" and "13312" in r.measured_peak_detail
    assert r.warnings == []
    none = case_result()
    fill_ratios(none, MeasuredPeak(None, None, "no measured bf16 ceiling in x"))
    assert none.frac_of_measured_peak is None and none.measured_peak_source is None
    assert none.measured_peak_detail == "no measured bf16 ceiling in x"


def test_a_case_above_its_ceiling_is_flagged_and_a_timing_mismatch_named():
    r = case_result(timing_mode="hot")
    fill_ratios(r, MeasuredPeak(500e12, "stored", "x", "cold"))
    assert r.frac_of_measured_peak == pytest.approx(1.2)
    assert "not like with like" in r.warnings[0] and "120.0%" in r.warnings[0]


# -- the re-randomised output, outside the timed interval ---------------------------------


@pytest.mark.parametrize("dtype", ["fp32", "int8"])
def test_refresh_rewrites_the_output_in_place_and_the_next_call_overwrites_it(dtype):
    from kernels import matmul

    case = matmul.make_case({"m": 32, "n": 48, "k": 64}, dtype, "cpu")
    prepared = matmul.prepare(case, "cpu")
    out = prepared.run()
    product = out.clone()
    prepared.refresh()
    assert not torch.equal(out, product)
    prepared.run()
    assert torch.equal(out, product)


def test_before_each_runs_before_every_cold_call_outside_the_interval():
    from clock_backend import ClockBackend, ScriptedCall

    from bench.measuring.timing import Policy, measure

    clock = FakeClock()
    backend = ClockBackend(clock, default_mode="cold", flush_s=1e-3)
    refreshes = []

    def refresh():
        refreshes.append(clock.now)
        clock.advance(5e-3)

    policy = Policy(mode="cold", warmup_min_s=0.05, warmup_max_s=1.0)
    timings = measure(
        ScriptedCall(clock, lambda i: 2e-3), backend, policy, clock, before_each=refresh
    )
    assert len(refreshes) == len(timings.samples_s) == backend.flushes
    assert all(s == pytest.approx(2e-3) for s in timings.samples_s)
    with pytest.raises(ValueError, match="cold"):
        measure(lambda: None, backend, Policy(mode="hot"), clock, before_each=refresh)


def test_suite_full_times_cold_unless_told_otherwise_and_measures_ceilings_first():
    from bench.execution.plan import PolicyOverrides, RunPlan
    from bench.execution.suites import get_suite

    assert (
        get_suite("full", "cpu").measures_ceilings
        and not get_suite("quick", "cpu").measures_ceilings
    )
    assert RunPlan(suite="full").policy("cpu").mode == "cold"
    assert RunPlan(suite="quick").policy("cpu").mode == "auto"
    hot = RunPlan(suite="full", overrides=PolicyOverrides(mode="hot"))
    assert hot.policy("cuda").mode == "hot"
