"""compare: every verdict on synthetic samples, clock normalisation, energy, identity, keys."""

import random
import shutil

import pytest
from run_copies import DATA, altered_copy, schema_2_copy

from bench.commands.compare import (
    AMBIGUOUS,
    BETTER,
    FASTER,
    MISSING,
    NEW,
    SAME,
    SLOWER,
    WORSE,
    CompareError,
    compare_runs,
    confirm_with_clocks,
    decide,
    spread,
)
from bench.results.frame import case_dicts, case_key
from bench.results.record import load_run
from bench.versions import METHOD_VERSION

GPU = DATA / "gpu-run"
CPU = DATA / "cpu-run"
EARLY = DATA / "cpu-run-early-1.0"


def draws(median: float, sigma: float = 0.005, n: int = 200, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [median * rng.lognormvariate(0, sigma) for _ in range(n)]


@pytest.mark.parametrize(
    ("cand_median", "sigma", "verdict"),
    [
        (1.00, 0.005, SAME),  # the same distribution, another draw
        (1.02, 0.005, SAME),  # separated, but under the 3% minimum effect
        (1.10, 0.005, SLOWER),
        (0.90, 0.005, FASTER),
        (1.10, 0.40, AMBIGUOUS),  # 10% but the CIs overlap: too noisy to confirm
    ],
)
def test_decide_on_synthetic_samples(cand_median, sigma, verdict):
    base = spread(draws(1.0, sigma, seed=1))
    cand = spread(draws(cand_median, sigma, seed=2))
    assert decide(base, cand, 0.03).verdict == verdict


def test_a_separated_change_on_an_unstable_measurement_is_ambiguous():
    # 20% slower and the medians' CIs are far apart (n is large), but a quarter of each
    # measurement's calls took 3x: IQR > 10% of the median, no verdict.
    base = spread(draws(1.0, n=3000, seed=1) + [3.0] * 1000)
    cand = spread(draws(1.2, n=3000, seed=2) + [3.6] * 1000)
    d = decide(base, cand, 0.03)
    assert d.separated and d.verdict == AMBIGUOUS and "unstable" in d.reason


def test_min_effect_is_the_boundary():
    base, cand = spread([1.0] * 50), spread([1.05] * 50)
    assert decide(base, cand, 0.03).verdict == SLOWER
    assert decide(base, cand, 0.06).verdict == SAME


def test_higher_is_better_names_the_verdicts_for_energy():
    base, cand = spread(draws(100.0, seed=1)), spread(draws(80.0, seed=2))
    assert decide(base, cand, 0.03, True, (WORSE, BETTER)).verdict == WORSE
    assert decide(cand, base, 0.03, True, (WORSE, BETTER)).verdict == BETTER


def test_clock_confirmation():
    slower = decide(spread([1.0] * 20), spread([1.1] * 20))
    same_cycles = decide(spread([1.0] * 20), spread([1.0] * 20))
    assert confirm_with_clocks(slower, same_cycles) == SAME
    assert confirm_with_clocks(slower, slower) == SLOWER
    assert confirm_with_clocks(slower, None) == SLOWER
    noisy = decide(spread(draws(1.0, 0.4, seed=1)), spread(draws(1.1, 0.4, seed=2)))
    assert confirm_with_clocks(slower, noisy) == AMBIGUOUS
    assert confirm_with_clocks(noisy, same_cycles) == SAME  # the clock explains it


def test_the_spread_line_is_stricter_without_a_pressure_reading():
    # a 10% slowdown measured with a 15% IQR: a verdict where the CPU pressure was recorded
    # (and low), none where the spread must also stand in for the missing pressure
    base = spread(draws(1.0, 0.11, n=4000, seed=1))
    cand = spread(draws(1.1, 0.11, n=4000, seed=2))
    assert 0.10 < base.rel_iqr < 0.25
    assert decide(base, cand, max_rel_iqr=0.25).verdict == SLOWER
    assert decide(base, cand, max_rel_iqr=0.10).verdict == AMBIGUOUS


def test_a_run_against_itself_is_all_same():
    for path in (GPU, CPU, EARLY):
        run = load_run(path)
        comparison = compare_runs(run, run)
        ok = [c for c in comparison.cases if c.time is not None]
        assert ok and all(c.verdict == SAME for c in comparison.cases), path
        assert comparison.exit_code() == 0 and not comparison.warnings


def test_ten_percent_slower_samples_are_slower_and_exit_1(tmp_path):
    slow = load_run(altered_copy(GPU, tmp_path / "slow", time=1.10))
    comparison = compare_runs(load_run(GPU), slow)
    timed = [c for c in comparison.cases if c.time is not None]
    assert timed and all(c.verdict == SLOWER for c in timed)
    assert all(c.time.effect == pytest.approx(0.10, abs=1e-9) for c in timed)
    assert comparison.exit_code() == 1
    back = compare_runs(slow, load_run(GPU))
    assert {c.verdict for c in back.cases} == {FASTER} and back.exit_code() == 0


def test_slower_because_the_clock_was_lower_is_same_with_a_note(tmp_path):
    slow = load_run(altered_copy(GPU, tmp_path / "slow", time=1.10, clock=0.90))
    comparison = compare_runs(load_run(GPU), slow)
    clocked = [c for c in comparison.cases if c.cycles is not None]
    assert clocked and all(c.verdict == SAME for c in clocked)
    for c in clocked:
        assert c.time.verdict == SLOWER and c.cycles.verdict == SAME
        assert c.clock_change == pytest.approx(-0.10)
        assert any("in cycles" in note and "clock -10.0%" in note for note in c.notes)
    assert comparison.exit_code() == 0


def test_lower_ops_per_joule_is_worse_and_fails(tmp_path):
    hot = load_run(altered_copy(GPU, tmp_path / "hot", power=1.10))
    comparison = compare_runs(load_run(GPU), hot)
    with_energy = [c for c in comparison.cases if c.energy is not None]
    assert with_energy and all(c.energy_verdict == WORSE for c in with_energy)
    assert all(c.verdict == SAME for c in comparison.cases)
    assert comparison.exit_code() == 1


def test_a_busy_machine_gives_no_verdict(tmp_path):
    busy = load_run(altered_copy(GPU, tmp_path / "busy", time=1.10, case={"cpu_pressure": 0.6}))
    comparison = compare_runs(load_run(GPU), busy)
    timed = [c for c in comparison.cases if c.time is not None]
    assert all(c.verdict == AMBIGUOUS for c in timed)
    assert all(any("busy machine" in n for n in c.notes) for c in timed)
    assert comparison.exit_code() == 0 and comparison.exit_code(strict=True) == 1


def test_new_missing_and_skipped_in_both(tmp_path):
    fewer = load_run(altered_copy(CPU, tmp_path / "fewer", keep=3))
    forward = compare_runs(load_run(CPU), fewer)
    counts = forward.counts()
    assert counts[MISSING] == len(load_run(CPU).cases) - 3 and counts[NEW] == 0
    backward = compare_runs(fewer, load_run(CPU))
    assert backward.counts()[NEW] == counts[MISSING]
    skipped = [c for c in compare_runs(load_run(CPU), load_run(CPU)).cases if not c.time]
    assert skipped and all(c.verdict == SAME and "skipped in both" in c.notes[0] for c in skipped)


def test_a_failed_candidate_case_is_missing_and_fails_the_comparison(tmp_path):
    failed = altered_copy(GPU, tmp_path / "failed", case={"status": "failed", "reason": "wrong"})
    comparison = compare_runs(load_run(GPU), load_run(failed))
    assert {c.verdict for c in comparison.cases} == {MISSING}
    assert "failed in the candidate: wrong" in comparison.cases[0].notes
    assert all(c.broken for c in comparison.cases) and comparison.exit_code() == 1
    fewer = compare_runs(load_run(CPU), load_run(altered_copy(CPU, tmp_path / "f", keep=3)))
    assert fewer.exit_code() == 0  # merely absent cases are not failures


def test_identity_differences_are_warnings(tmp_path):
    env = load_run(GPU).meta["environment"]
    env = {**env, "nvml": {**env["nvml"], "driver_version": "560.1"}}
    other = load_run(altered_copy(GPU, tmp_path / "other", meta={"environment": env}))
    comparison = compare_runs(load_run(GPU), other)
    assert comparison.warnings == ["driver differs: baseline '550.54.15', candidate '560.1'"]


def test_method_versions_are_never_mixed(tmp_path):
    newer = load_run(altered_copy(GPU, tmp_path / "m2", meta={"method_version": 2}))
    with pytest.raises(CompareError, match="METHOD_VERSION differs"):
        compare_runs(load_run(GPU), newer)


def test_runs_with_nothing_in_common_are_refused():
    with pytest.raises(CompareError, match="no case in common"):
        compare_runs(load_run(GPU), load_run(CPU))


def test_case_key_ignores_seed_label_and_index_but_not_init():
    run = load_run(CPU)
    a = case_dicts(run)[0]
    b = {**a, "case_id": "0099-other", "params": {**a["params"], "seed": 7, "shape_label": "x"}}
    assert case_key(a) == case_key(b)
    assert case_key(a) != case_key({**a, "params": {**a["params"], "init": "zeros"}})
    assert case_key(a) != case_key({**a, "device": "cuda:0"})
    assert case_key(a) == case_key({**a, "device": "cpu"})
    assert a["params"]["m"] == 64 and isinstance(a["params"]["m"], int)  # not 64.0


def test_old_schema_runs_compare_with_new_ones():
    comparison = compare_runs(load_run(EARLY), load_run(CPU))
    timed = [c for c in comparison.cases if c.time is not None]
    assert len(timed) == 4  # the four matmul cases both runs have
    assert comparison.counts()[NEW] == 4  # tf32 and attention came later


def test_a_schema_2_run_compares_with_a_1x_run(tmp_path):
    same = schema_2_copy(GPU, tmp_path / "same")
    assert '"identity": {' in (same / "cases.jsonl").read_text()
    old, new = load_run(GPU), load_run(same)
    assert (old.meta["schema_version"], new.meta["schema_version"]) == ("1.1", "2.0")
    assert set(old.cases.columns) <= set(new.cases.columns)  # a 2.0 line has every field
    comparison = compare_runs(old, new)
    assert [c.verdict for c in comparison.cases] == [
        c.verdict for c in compare_runs(old, old).cases
    ]
    assert all(c.verdict == SAME for c in comparison.cases) and comparison.exit_code() == 0
    slow = load_run(
        schema_2_copy(altered_copy(GPU, tmp_path / "slow1", time=1.10), tmp_path / "slow2")
    )
    timed = [c for c in compare_runs(old, slow).cases if c.time is not None]
    assert timed and all(c.verdict == SLOWER for c in timed)
    back = compare_runs(slow, old)
    assert {c.verdict for c in back.cases} == {FASTER}


def test_without_raw_samples_the_stored_summary_decides(tmp_path):
    bare = altered_copy(GPU, tmp_path / "bare")
    shutil.rmtree(bare / "samples")
    comparison = compare_runs(load_run(GPU), load_run(bare))
    timed = [c for c in comparison.cases if c.time is not None]
    assert timed and all(c.verdict == SAME for c in timed)
    assert all(any("used the summary" in n for n in c.notes) for c in timed)


def test_a_baseline_of_the_old_method_is_refused_with_a_call_to_re_bless(tmp_path):
    """The fixture runs were measured by METHOD_VERSION 1 (L2-sized write-only flush, windows
    not aligned to counter ticks); a run of this flopwatt cannot be held against them."""
    assert load_run(GPU).meta["method_version"] == 1 < METHOD_VERSION
    stamp = {"method_version": METHOD_VERSION}
    current = load_run(altered_copy(GPU, tmp_path / "now", meta=stamp, case=stamp))
    with pytest.raises(
        CompareError, match=r"METHOD_VERSION differs \(baseline \[1\], candidate \[2\]\)"
    ) as err:
        compare_runs(load_run(GPU), current)
    assert "re-bless it (flopwatt baseline bless RUN_DIR)" in str(err.value)
