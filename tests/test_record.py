"""Run folders: schema round trip, crash-truncated lines, schema refusal."""

import json
import os
import signal
import threading
import time

import pytest

from bench.errors import UsageError
from bench.results.record import (
    DOTTED,
    PART_OF,
    PARTS,
    REQUIRED_FIELDS,
    CaseDraft,
    CaseResult,
    RunWriter,
    _signals_deferred,
    check_schema,
    load_run,
)
from bench.versions import SCHEMA_VERSION


def result(case_id="0000-matmul-fp32-8x8x8", **fields):
    base = dict(
        case_id=case_id,
        kernel="matmul",
        params={"m": 8, "n": 8, "k": 8, "shape_label": "8x8x8"},
        dtype="fp32",
        device="cpu",
        world_size=1,
        status="ok",
    )
    return CaseResult.from_leaves({**base, **fields})


def test_round_trip_keeps_every_field_and_nests_params(tmp_path):
    writer = RunWriter(tmp_path / "run", {"run_id": "r1"})
    original = result(
        time_median_s=1.5e-3,
        achieved_ops_per_s=2e12,
        peak_ops_per_s=4e12,
        peak_source="datasheet",
        frac_of_peak=0.5,
        warnings=["w"],
        rel_noise=float("inf"),
    )
    writer.append(
        original, {"sample": [0, 1], "time_s": [1e-3, 2e-3], "calls": [1, 1], "round": [0, 0]}
    )
    writer.finish("complete")
    run = load_run(tmp_path / "run")
    row = run.cases.iloc[0]
    assert row["rates.frac_of_peak"] == 0.5 and row["rates.peak_source"] == "datasheet"
    assert row["identity.params.m"] == 8 and row["identity.warnings"] == ["w"]
    noise = row["timing.rel_noise"]
    assert noise is None or noise != noise  # inf stored as null
    assert {DOTTED.get(f, f) for f in REQUIRED_FIELDS} - {"identity.params"} <= set(run.cases)
    assert run.meta["status"] == "complete" and run.meta["n_cases"] == 1
    assert run.meta["schema_version"] == SCHEMA_VERSION
    samples = run.samples(original.identity.case_id)
    assert list(samples["time_s"]) == [1e-3, 2e-3]
    summary = (tmp_path / "run" / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("case_id,kernel,shape") and "8x8x8" in summary[1]


def test_power_traces_are_stored_beside_the_samples(tmp_path):
    writer = RunWriter(tmp_path / "run", {})
    r = result()
    writer.append(r, None, {"t_s": [0.0, 0.05], "power_w": [300.0, 310.0]})
    writer.update_meta(idle={"power_w": 70.0})
    writer.finish("complete")
    run = load_run(tmp_path / "run")
    assert writer.results[0].energy.trace_file == "traces/0000-matmul-fp32-8x8x8.parquet"
    assert run.cases["energy.trace_file"][0] == "traces/0000-matmul-fp32-8x8x8.parquet"
    assert list(run.trace(r.identity.case_id)["power_w"]) == [300.0, 310.0]
    assert run.meta["idle"] == {"power_w": 70.0}


def test_stored_json_has_no_nan_or_infinity(tmp_path):
    line = result(rel_noise=float("nan"), time_median_s=float("inf")).to_json()
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line)["timing"]["rel_noise"] is None


def test_a_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    writer = RunWriter(tmp_path / "run", {})
    writer.append(result("a"), None)
    writer.append(result("b"), None)
    writer.finish("running")
    path = tmp_path / "run" / "cases.jsonl"
    path.write_text(path.read_text() + result("c").to_json()[:40])
    with pytest.warns(UserWarning, match="truncated"):
        run = load_run(tmp_path / "run")
    assert list(run.cases["identity.case_id"]) == ["a", "b"]
    assert len(run.problems) == 1


def test_other_schema_major_is_refused(tmp_path):
    writer = RunWriter(tmp_path / "run", {})
    writer.finish("complete")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["schema_version"] = "3.0"
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(
        ValueError, match=r"schema version '3\.0', this flopwatt reads 1\.x and 2\.x"
    ):
        load_run(tmp_path / "run")
    check_schema("1.7", "a 1.x minor is readable")
    check_schema("2.9", "a newer 2.x minor is readable")


def test_a_line_is_nested_in_parts_and_every_leaf_has_exactly_one_part():
    obj = json.loads(result(time_median_s=1e-3, energy_j=2.0, bus_factor=1.5).to_json())
    assert list(obj) == [*PARTS, "schema_version", "method_version"]
    assert obj["schema_version"] == SCHEMA_VERSION == "2.0"
    assert obj["identity"]["case_id"] == "0000-matmul-fp32-8x8x8"
    assert obj["timing"]["time_median_s"] == 1e-3 and obj["energy"]["energy_j"] == 2.0
    assert obj["collective"]["bus_factor"] == 1.5 and "time_median_s" not in obj
    leaves = [name for part in PARTS.values() for name in part.__dataclass_fields__]
    assert len(leaves) == len(set(leaves)) == len(PART_OF)


def test_a_record_is_frozen_and_updated_by_copy():
    r = result(time_median_s=1e-3)
    with pytest.raises(AttributeError):
        r.timing.time_median_s = 2e-3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        r.timing = r.timing  # type: ignore[misc]
    changed = r.updated(time_median_s=2e-3, health_verdict="FAIL")
    assert changed.timing.time_median_s == 2e-3 and changed.identity.health_verdict == "FAIL"
    assert r.timing.time_median_s == 1e-3 and r.identity.health_verdict is None
    with pytest.raises(TypeError, match="not a case field: time_s"):
        r.updated(time_s=1.0)


def test_a_draft_takes_leaf_fields_only_and_freezes_into_parts():
    draft = CaseDraft(case_id="a", kernel="k", params={}, dtype="fp32", device="cpu")
    draft.world_size, draft.status = 1, "ok"
    draft.warnings.append("w")  # list fields start empty
    draft.ops_per_j = 3.0
    with pytest.raises(AttributeError, match="no field 'ops_per_watt'"):
        draft.ops_per_watt = 3.0
    frozen = draft.freeze()
    assert frozen.identity.warnings == ["w"] and frozen.energy.ops_per_j == 3.0
    assert frozen.timing.time_median_s is None
    assert CaseResult.from_dict(json.loads(frozen.to_json())) == frozen


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ValueError, match="not a flopwatt run folder"):
        load_run(tmp_path)


def test_writer_refuses_an_existing_or_unwritable_folder(tmp_path):
    RunWriter(tmp_path / "run", {}).finish("complete")
    with pytest.raises(UsageError, match="already exists"):
        RunWriter(tmp_path / "run", {})
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot write"):
        RunWriter(blocker / "run", {})


def test_a_signal_from_another_thread_waits_until_the_case_is_written():
    """A process-directed SIGINT can land on any thread; it must still wait for the block."""
    finished = []
    with pytest.raises(KeyboardInterrupt), _signals_deferred():
        sender = threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGINT))
        sender.start()
        sender.join()
        time.sleep(0.05)  # bytecode boundaries where Python would run a pending handler
        finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_held_during_the_block_reaches_the_runs_own_handler():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda n, _f: seen.append(n))
    try:
        with _signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert seen == []
        time.sleep(0.01)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
