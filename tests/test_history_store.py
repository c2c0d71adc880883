"""The history store on real parquet files and DuckDB: adding runs (once), markers, damaged
files, testbeds and GPU swaps, compaction and retention, concurrent writers, the CLI."""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from history_helpers import CPU, CPU_1X, GPU, add_each, files_state, night
from run_copies import altered_copy, schema_2_copy
from vendor_runs import DEVICES, write_run

from bench.cli import main
from bench.errors import UsageError
from bench.history.columns import CASE_COLUMNS, RUN_COLUMNS
from bench.history.compact import compact
from bench.history.layout import MARKER
from bench.history.query import check_history, load_cases, load_environment, load_runs
from bench.history.store import add_run_dir, write_table

FAST = ["--device", "cpu", "--timeout-s", "1", "--min-time-s", "0.05", "--warmup-s", "0.05"]


def sorted_cases(history: Path, **kw) -> pd.DataFrame:
    frame = load_cases(history, **kw)
    return frame.sort_values(["run_id", "case_key"]).reset_index(drop=True)


@pytest.fixture
def nights(tmp_path: Path) -> list[Path]:
    """The CPU run on three nights of two months, and its 1.x ancestor."""
    runs = tmp_path / "runs"
    return [
        night(CPU, runs / "n1", "2026-10-30T02:00:00+00:00"),
        night(CPU, runs / "n2", "2026-11-02T02:00:00+00:00"),
        night(CPU, runs / "n3", "2026-11-03T02:00:00+00:00"),
        night(CPU_1X, runs / "old", "2026-11-01T02:00:00+00:00"),
    ]


def test_a_run_becomes_rows_of_the_three_tables(tmp_path: Path) -> None:
    history = tmp_path / "h"
    assert add_run_dir(history, GPU)
    runs, cases = load_runs(history), load_cases(history)
    assert list(runs.columns) == list(RUN_COLUMNS) and list(cases.columns) == list(CASE_COLUMNS)
    run = runs.iloc[0]
    assert (run.host, run.sku, run.gpu_uuid) == ("h100-node", "h100-sxm5-80gb", "GPU-fixture")
    assert run.testbed.startswith("h100-node/h100-sxm5-80gb/") and pd.isna(run.health_failed)
    assert str(runs["started_at"].dt.tz) == "UTC"
    assert run.started_at == pd.Timestamp("2026-11-20T01:02:03Z")
    assert set(cases["family"]) == {"matmul", "collective"}  # the fixture has an allreduce
    assert cases.loc[cases["kernel"] == "matmul", "clock_hz"].notna().all()
    assert len(cases) == len((GPU / "cases.jsonl").read_text().splitlines())
    env = load_environment(history, [run.run_id])
    assert dict(zip(env["key"], env["value"], strict=True))["nvml.driver_version"] == "550.54.15"


def test_throttle_family_and_health_marks(tmp_path: Path) -> None:
    env = {**DEVICES["mi300x"]["environment"], "host": {"hostname": "mi-node"}}
    when = "2026-12-04T12:00:00+00:00"
    mi = write_run("mi300x", tmp_path / "runs", environment=env, started_at=when)  # 2.x
    sick = night(CPU, tmp_path / "runs" / "sick", "2026-11-05T02:00:00+00:00")
    sick = altered_copy(sick, tmp_path / "runs" / "sick2", case={"health_verdict": "FAIL"})
    history = tmp_path / "h"
    add_run_dir(history, mi)
    add_run_dir(history, sick)
    cases = load_cases(history)
    amd = cases[cases["run_id"] == "20261204-120000-mi300x"]
    assert set(amd["family"]) == {"matmul", "collective"}
    assert amd["throttled"].all()
    failed = cases[cases["run_id"] == "sick"]
    assert failed["health_failed"].all()
    runs = load_runs(history).set_index("run_id")
    assert runs.loc["sick", "health_failed"] and runs.loc["20261204-120000-mi300x", "synthetic"]


def test_adding_a_run_twice_changes_nothing(tmp_path: Path, nights: list[Path]) -> None:
    history = tmp_path / "h"
    assert add_run_dir(history, nights[0])
    before = files_state(history)
    assert not add_run_dir(history, nights[0])
    assert files_state(history) == before
    assert len(load_runs(history)) == 1


def test_schema_1x_and_2x_runs_read_together(tmp_path: Path) -> None:
    history = tmp_path / "h"
    gpu1 = night(GPU, tmp_path / "gpu-1x", "2026-11-21T01:02:03+00:00")
    gpu2 = schema_2_copy(gpu1, tmp_path / "gpu-2x")
    (gpu2 / "run.json").write_text((gpu2 / "run.json").read_text().replace('"gpu-1x"', '"gpu-2x"'))
    for run in (CPU_1X, CPU, gpu1, gpu2):
        assert add_run_dir(history, run)
    runs = load_runs(history)
    assert sorted(runs["schema_version"]) == ["1.0", "1.1", "1.1", "2.0"]
    cases = load_cases(history)
    one, two = (cases[cases["run_id"] == r].drop(columns="run_id") for r in ("gpu-1x", "gpu-2x"))
    pd.testing.assert_frame_equal(one.reset_index(drop=True), two.reset_index(drop=True))
    assert set(cases["run_id"]) == set(runs["run_id"])  # every run has its case rows


def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    history = tmp_path / "h"
    add_run_dir(history, CPU)
    newer = altered_copy(CPU, tmp_path / "newer", meta={"schema_version": "3.0", "run_id": "x"})
    before = files_state(history)
    with pytest.raises(UsageError, match=r"schema version '3\.0'") as err:
        add_run_dir(history, newer)
    assert "\n" not in str(err.value)
    assert files_state(history) == before


def test_a_file_without_its_marker_is_not_read(tmp_path: Path, nights: list[Path]) -> None:
    history = tmp_path / "h"
    add_run_dir(history, nights[1])
    rows = sorted_cases(history)
    # an object store's copy still under way: the parquet is there, its marker is not
    stray = history / "cases" / "2026-11" / "20261102-999999-other.parquet"
    write_table(rows.assign(run_id="20261102-999999-other"), "cases", stray)
    pd.testing.assert_frame_equal(sorted_cases(history), rows)
    stray.with_suffix(".done").write_text("")
    assert len(load_cases(history)) == 2 * len(rows)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_file_is_skipped_with_one_warning(
    tmp_path: Path, nights: list[Path], damage: str
) -> None:
    history = tmp_path / "h"
    for run in nights[1:3]:
        add_run_dir(history, run)
    bad = history / "cases" / "2026-11" / "n2.parquet"
    data = bad.read_bytes()
    bad.write_bytes(b"not parquet at all" if damage == "garbage" else data[: len(data) // 2])
    said: list[str] = []
    cases = load_cases(history, warn=said.append)
    assert set(cases["run_id"]) == {"n3"}
    assert len(said) == 1 and str(bad) in said[0] and "\n" not in said[0]


def test_not_a_history(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("x")
    for call in (check_history, load_cases, lambda h: add_run_dir(h, CPU)):
        with pytest.raises(UsageError, match="not a flopwatt history"):
            call(folder)
    (folder / MARKER).write_text(json.dumps({"format": "flopwatt-history", "version": "9.0"}))
    with pytest.raises(UsageError, match=r"history format '9\.0'"):
        load_runs(folder)
    assert main(["history", "add", "--history", str(tmp_path / "notes"), str(CPU)]) == 2


def test_an_unknown_testbed_names_known_ones(tmp_path: Path, nights: list[Path]) -> None:
    history = tmp_path / "h"
    add_run_dir(history, nights[0])
    known = load_runs(history)["testbed"].iloc[0]
    assert len(load_cases(history, testbeds=[known])) > 0
    with pytest.raises(UsageError, match=f"unknown testbed 'nope/x/1'.*known: {known}"):
        load_cases(history, testbeds=["nope/x/1"])


def test_a_swapped_gpu_starts_a_new_testbed_linked_to_the_old(tmp_path: Path) -> None:
    history = tmp_path / "h"
    runs = tmp_path / "runs"
    add_run_dir(history, night(GPU, runs / "a", "2026-11-01T02:00:00+00:00"))
    add_run_dir(history, night(GPU, runs / "b", "2026-11-02T02:00:00+00:00", uuid="GPU-new"))
    add_run_dir(history, night(GPU, runs / "c", "2026-11-03T02:00:00+00:00", uuid="GPU-new"))
    add_run_dir(history, night(GPU, runs / "d", "2026-11-03T02:00:00+00:00", host="other"))
    table = load_runs(history).set_index("run_id")
    old, new = table.loc["a", "testbed"], table.loc["b", "testbed"]
    assert old != new and table.loc["c", "testbed"] == new
    assert table.loc[["b", "c"], "previous_testbed"].tolist() == [old, old]
    assert pd.isna(table.loc["a", "previous_testbed"])
    assert pd.isna(table.loc["d", "previous_testbed"])  # another host is no swap


def test_since_prunes_whole_months_unread(tmp_path: Path, nights: list[Path]) -> None:
    history = tmp_path / "h"
    for run in nights:
        add_run_dir(history, run)
    (history / "cases" / "2026-10" / "n1.parquet").write_bytes(b"damaged, but never opened")
    said: list[str] = []
    since = datetime(2026, 11, 2, tzinfo=timezone.utc)
    cases = load_cases(history, since=since, warn=said.append)
    assert set(cases["run_id"]) == {"n2", "n3"} and said == []


def test_files_read_in_batches_give_the_same_rows(
    tmp_path: Path, nights: list[Path], monkeypatch
) -> None:
    history = tmp_path / "h"
    for run in nights:  # schema 1.x and 2.x files: batches of either join by column name
        add_run_dir(history, run)
    whole = sorted_cases(history)
    monkeypatch.setattr("bench.history.query.BATCH", 1)
    pd.testing.assert_frame_equal(sorted_cases(history), whole)


def test_reads_that_typed_a_column_apart_join_as_the_store_types_it() -> None:
    import pyarrow as pa

    from bench.history.query import concat, typed

    older = pa.table({"run_id": ["a"], "method_version": ["3"]})  # typed as text by one read
    newer = pa.table({"run_id": ["b"], "method_version": [4], "throttled": [True]})
    both = typed(concat([older, newer], "cases"), "cases")
    assert (
        both["method_version"].tolist() == [3, 4] and str(both["method_version"].dtype) == "Int64"
    )
    assert pd.isna(both["throttled"].iat[0]) and bool(both["throttled"].iat[1])


def test_compact_keeps_the_answer_and_each_row_once(tmp_path: Path, nights: list[Path]) -> None:
    history = tmp_path / "h"
    for run in nights:
        add_run_dir(history, run)
    before = sorted_cases(history)
    small = {p: p.read_bytes() for p in (history / "cases").rglob("*") if p.is_file()}
    dead, alive = (history / "cases" / "2026-10" / f".n9.parquet.{i}.tmp" for i in (1, 2))
    dead.write_bytes(b"a writer died here")
    alive.write_bytes(b"a writer is busy here")
    os.utime(dead, (0, 0))
    report = compact(history, before="2026-12")
    assert not dead.exists() and alive.exists()
    alive.unlink()
    assert ("cases", "2026-11", 3, len(before[before.started_at >= "2026-11-01"])) in [
        (t, m, n, r) for t, m, n, r in report.merged
    ]
    after = sorted_cases(history)
    pd.testing.assert_frame_equal(after, before)
    assert sorted(p.suffix for p in (history / "cases" / "2026-11").iterdir()) == [
        ".done",
        ".parquet",
    ]
    # a reader between the merged marker and the deletes sees the small files too: never twice
    for path, data in small.items():
        path.write_bytes(data)
    pd.testing.assert_frame_equal(sorted_cases(history), before)
    assert not add_run_dir(history, nights[1])  # in a merged file: still there
    late = night(CPU, tmp_path / "runs" / "late", "2026-11-04T02:00:00+00:00")
    assert add_run_dir(history, late)  # a late run lands beside the merged file
    per_run = (before["run_id"] == "n2").sum()
    assert len(load_cases(history)) == len(before) + per_run
    compact(history, before="2026-12")
    with_late = sorted_cases(history)
    assert len(with_late) == len(before) + per_run
    assert len(list((history / "cases" / "2026-11").glob("*.parquet"))) == 1


def test_keep_days_drops_old_case_rows_and_keeps_the_runs(
    tmp_path: Path, nights: list[Path]
) -> None:
    history = tmp_path / "h"
    for run in nights:
        add_run_dir(history, run)
    now = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
    report = compact(history, keep_days=1, now=now, before="2026-10")
    assert report.dropped_runs == 3
    assert set(load_cases(history)["run_id"]) == {"n3"}
    assert set(load_environment(history, ["n1", "n2", "n3", "old"])["run_id"]) == {"n3"}
    assert set(load_runs(history)["run_id"]) == {"n1", "n2", "n3", "old"}
    assert not add_run_dir(history, nights[0])
    assert compact(history, keep_days=1, now=now, before="2026-10").lines() == [
        "nothing to compact"
    ]


def test_two_processes_adding_at_once_both_land(tmp_path: Path) -> None:
    runs = [
        str(night(CPU, tmp_path / "runs" / f"r{i}", f"2026-11-0{i + 1}T02:00:00+00:00"))
        for i in range(4)
    ]
    history = str(tmp_path / "h")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        done = pool.starmap(add_each, [(history, runs[:2]), (history, runs[2:])])
    assert done == [[True, True], [True, True]]
    assert sorted(load_runs(Path(history))["run_id"]) == ["r0", "r1", "r2", "r3"]
    assert not list(Path(history).rglob("*.tmp"))


def test_history_add_cli(tmp_path: Path, nights: list[Path], capsys) -> None:
    history = str(tmp_path / "h")
    assert main(["history", "add", "--history", history, str(nights[0]), str(nights[1])]) == 0
    code = main(["history", "add", "--history", history, str(tmp_path), str(nights[0])])
    out = capsys.readouterr().out.splitlines()
    assert code == 2
    assert out[-2].startswith(f"{tmp_path}: skipped: ") and "not a flopwatt run" in out[-2]
    assert out[-1] == f"{nights[0]}: already there"
    assert main(["history", "add", "--history", history, str(nights[2])]) == 0
    assert main(["history", "compact", "--history", history, "--before", "13-2026"]) == 2
    assert main(["history", "compact", "--history", history, "--before", "2026-12"]) == 0
    assert "cases/2026-11: 2 files -> 1" in capsys.readouterr().out


def test_run_with_history_end_to_end(tmp_path: Path, capsys) -> None:
    history = tmp_path / "h"
    args = ["run", *FAST, "--kernel", "matmul", "--shape", "8x8x8", "--dtype", "fp32"]
    args += ["--power", "none", "--idle-s", "0", "--out", str(tmp_path / "runs")]
    assert main([*args, "--history", str(history)]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    cases = load_cases(history)
    assert cases["run_id"].tolist() == [run_dir.name]
    assert cases["case_label"].tolist() == ["matmul 8x8x8 fp32"]
    # a history that cannot be written: a warning, and the run folder is kept
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "other.txt").write_text("x")
    assert main([*args, "--history", str(blocked)]) == 0
    assert "was not added to the history" in capsys.readouterr().err
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_health_with_history(tmp_path: Path, capsys) -> None:
    history = tmp_path / "h"
    tiny = ["--shape", "96x96x96", "--copy-bytes", "1Mi", "--timeout-s", "0.1"]
    args = ["health", "--device", "cpu", "--out", str(tmp_path / "runs"), *tiny]
    assert main([*args, "--format", "json", "--history", str(history)]) in (0, 1)
    json.loads(capsys.readouterr().out)  # the JSON report stays clean: the note is on stderr
    runs = load_runs(history)
    assert len(runs) == 1 and runs["health_failed"].notna().all()
    assert set(load_cases(history)["health_failed"].dropna()) <= {True, False}


def test_ceiling_with_history(tmp_path: Path) -> None:
    history = tmp_path / "h"
    tiny = ["--device", "cpu", "--max-dim", "256", "--budget-s", "0.2", "--warmup-s", "0"]
    args = ["ceiling", *tiny, "--no-memory", "--dtype", "fp32"]
    assert main([*args, "--baselines", str(tmp_path / "b"), "--history", str(history)]) == 0
    runs, cases = load_runs(history), load_cases(history)
    assert runs["suite"].tolist() == ["ceiling"]
    assert cases["case_label"].tolist() == ["matmul ceiling (quick search) fp32"]
    assert cases["achieved_ops_per_s"].iloc[0] > 0 and cases["family"].iloc[0] == "matmul"


@pytest.mark.parametrize("marker", ["", "0ld5chema000"])
def test_files_of_an_older_schema_read_with_the_new_column_null(
    tmp_path: Path, nights: list[Path], marker: str
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    history = tmp_path / "h"
    add_run_dir(history, nights[1])
    rows = load_cases(history)
    # written by an older flopwatt, before rel_iqr was a column (or with no fingerprint)
    old = rows.assign(run_id="older").drop(columns=["rel_iqr"])
    path = history / "cases" / "2026-11" / "older.parquet"
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False), path)
    path.with_suffix(".done").write_text(marker)
    cases = load_cases(history)
    assert len(cases) == 2 * len(rows)
    assert cases.loc[cases["run_id"] == "older", "rel_iqr"].isna().all()
    assert cases.loc[cases["run_id"] == "n2", "rel_iqr"].notna().any()


def test_testbed_names_the_gpu_by_uuid_else_serial_else_bdf() -> None:
    from bench.history.testbed import testbed_of

    meta = json.loads((GPU / "run.json").read_text())
    env = meta["environment"]
    by_uuid = testbed_of(meta)
    assert by_uuid.gpu_key == "uuid:GPU-fixture"
    env["gpu"] = {"uuid": None, "pci_bus_id": "0000:18:00.0"}
    assert testbed_of(meta).gpu_key == "bdf:0000:18:00.0"
    env["nvml"]["serial"] = "1652922001234"
    by_serial = testbed_of(meta)
    assert by_serial.gpu_key == "serial:1652922001234"
    assert len({by_uuid.id, by_serial.id}) == 2 and by_serial.id.startswith("h100-node/")
    # a multi-rank job: the set of its GPUs, whatever the rank order
    ranks = [{"host": "h100-node", "device_facts": {"uuid": u}} for u in ("GPU-b", "GPU-a")]
    job = testbed_of({**meta, "ranks": ranks})
    again = testbed_of({**meta, "ranks": ranks[::-1]})
    assert job.gpu_uuid == "GPU-a,GPU-b" and job.id == again.id
