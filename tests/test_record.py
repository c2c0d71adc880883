"""Run folders: schema round trip, crash-truncated lines, schema refusal."""

import json
import os
import signal
import threading
import time

import pytest

from bench.errors import UsageError
from bench.results.record import (
    REQUIRED_FIELDS,
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
    return CaseResult(**{**base, **fields})


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
    assert row["frac_of_peak"] == 0.5 and row["peak_source"] == "datasheet"
    assert row["params.m"] == 8 and row["warnings"] == ["w"]
    assert row["rel_noise"] is None or row["rel_noise"] != row["rel_noise"]  # inf stored as null
    assert set(REQUIRED_FIELDS) <= set(run.cases.columns) | {"params"}
    assert run.meta["status"] == "complete" and run.meta["n_cases"] == 1
    assert run.meta["schema_version"] == SCHEMA_VERSION
    samples = run.samples(original.case_id)
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
    assert r.trace_file == "traces/0000-matmul-fp32-8x8x8.parquet"
    assert list(run.trace(r.case_id)["power_w"]) == [300.0, 310.0]
    assert run.meta["idle"] == {"power_w": 70.0}


def test_stored_json_has_no_nan_or_infinity(tmp_path):
    line = result(rel_noise=float("nan"), time_median_s=float("inf")).to_json()
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line)["rel_noise"] is None


def test_a_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    writer = RunWriter(tmp_path / "run", {})
    writer.append(result("a"), None)
    writer.append(result("b"), None)
    writer.finish("running")
    path = tmp_path / "run" / "cases.jsonl"
    path.write_text(path.read_text() + result("c").to_json()[:40])
    with pytest.warns(UserWarning, match="truncated"):
        run = load_run(tmp_path / "run")
    assert list(run.cases["case_id"]) == ["a", "b"]
    assert len(run.problems) == 1


def test_other_schema_major_is_refused(tmp_path):
    writer = RunWriter(tmp_path / "run", {})
    writer.finish("complete")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["schema_version"] = "2.0"
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"schema version '2\.0'"):
        load_run(tmp_path / "run")
    check_schema("1.7", "newer minor is readable")


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
