"""`flopwatt history check` end to end on small real histories (parquet files read through
DuckDB): the table, JSON and Markdown, exit codes, --nagios, --testbed, --since, bad input."""

import json
import re

import pytest
from history_frames import Fleet, cases_frame, environment_frame, runs_frame, write_history

from bench.cli import main

SLOW = "node0000/GPU-00000000/H100"
PEER = "node0001/GPU-00000001/H100"


def _history(root, stop=None, **kw):
    """4 testbeds x 3 cases x 30 nights; node 0's torch changes on night 27; `stop`: the
    night from which node 3 no longer runs."""
    fleet = Fleet(testbeds=4, cases=3, nights=30, noise=0.01, seed=21, **kw)
    cases = cases_frame(fleet)
    if stop is not None:
        gone = cases["run_id"].str.startswith("r0003") & (
            cases["run_id"].str[-4:].astype(int) >= stop
        )
        cases = cases[~gone]
    runs = runs_frame(cases)
    newer = {
        r: {"software.torch": "2.6.0"}
        for r in runs["run_id"]
        if r.startswith("r0000") and int(r[-4:]) >= 27
    }
    return write_history(root, cases, runs, environment_frame(runs, newer))


@pytest.fixture(scope="module")
def regressed(tmp_path_factory):
    """Node 0 lost 20% from night 27 on, when its torch changed; its 3 peers did not."""
    return _history(
        tmp_path_factory.mktemp("regressed"), step_night=27, step=-0.2, changed_testbeds=1
    )


@pytest.fixture(scope="module")
def dipped(tmp_path_factory):
    """Node 0 lost 20% on the last night only; node 3 stopped running 10 nights ago."""
    return _history(
        tmp_path_factory.mktemp("dipped"), stop=20, step_night=29, step=-0.2, changed_testbeds=1
    )


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    return _history(tmp_path_factory.mktemp("quiet"))


def _run(capsys, *argv):
    code = main(["history", "check", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_regression_fails_the_night_and_says_where_when_and_why(regressed, capsys):
    code, out, _ = _run(capsys, "--history", regressed)
    assert code == 1
    assert "3 regression, 0 warn, 0 inconclusive, 0 improvement, 9 ok" in out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if "regression" in line and SLOW in line)
    assert "since r0000-0027" in lines[first] and "-2" in lines[first]
    assert "software.torch: 2.5.1 → 2.6.0" in out
    assert "node: peers moved" in out


def test_a_log_gets_plain_columns_and_a_terminal_rich_tables(regressed, capsys, monkeypatch):
    _, plain, _ = _run(capsys, "--history", regressed)
    lines = plain.splitlines()
    header = next(line for line in lines if line.startswith("state "))
    rule = lines[lines.index(header) + 1]
    row = next(line for line in lines if line.startswith("regression "))
    assert set(rule) <= {"-", " "} and "│" not in plain and "\x1b[" not in plain
    assert row.index(SLOW) == header.index("testbed")  # the columns line up
    assert row.index("rate -") == header.index("why") and row.endswith("since r0000-0027")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "300")  # rich's width in a terminal
    _, rich, _ = _run(capsys, "--history", regressed)
    rich = re.sub(r"\x1b\[[0-9;]*m", "", rich)  # the colours
    assert "┃ state " in rich and "software.torch: 2.5.1 → 2.6.0" in rich


def test_json_has_every_verdict_change_point_and_attribution(regressed, capsys):
    code, out, _ = _run(capsys, "--history", regressed, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["exit_code"] == 1
    assert len(doc["verdicts"]) == 12 and doc["counts"]["regression"] == 3
    worst = doc["verdicts"][0]
    assert worst["state"] == "regression" and worst["testbed"] == SLOW
    assert worst["rate"]["first_bad_run"] == "r0000-0027"
    assert worst["rate"]["last_good_run"] == "r0000-0026"
    assert worst["rate"]["change_low"] <= worst["rate"]["change"] <= worst["rate"]["change_high"]
    assert {c["first_bad_run"] for c in doc["change_points"]} == {"r0000-0027"}
    found = doc["attributions"][0]
    assert found["environment"] == [{"key": "software.torch", "before": "2.5.1", "after": "2.6.0"}]
    assert found["peers"]["verdict"] == "node" and found["peers"]["n"] == 3
    assert found["peers"]["percentile"] == 0.0


def test_nagios_status_line_first_and_monitoring_exit_codes(regressed, quiet, capsys):
    code, out, _ = _run(capsys, "--history", regressed, "--nagios", "--format", "md")
    assert code == 2
    assert out.splitlines()[0].startswith("FLOPWATT CRITICAL - 3 regressions on 1 testbed |")
    assert "regression=3" in out.splitlines()[0] and "## flopwatt history check" in out
    code, out, _ = _run(capsys, "--history", quiet, "--nagios")
    assert code == 0 and out.startswith("FLOPWATT OK - 12 cases judged")
    assert _run(capsys, "--history", quiet)[0] == 0


def test_one_bad_night_warns_and_a_testbed_that_stopped_is_named(dipped, capsys):
    code, out, err = _run(capsys, "--history", dipped, "--nagios")
    assert code == 1
    assert out.startswith("FLOPWATT WARNING - 3 warnings on 1 testbed |")
    assert "1 testbeds have not run in the 7 days before the newest run" in err
    assert "node0003" in err
    code, out, _ = _run(capsys, "--history", dipped, "--format", "json")
    doc = json.loads(out)
    assert code == 0  # a warning does not fail the nightly job
    assert len(doc["judged_runs"]) == 3 and not any("r0003" in r for r in doc["judged_runs"])
    assert "node0003" in doc["warnings"][0]


def test_a_run_whose_health_check_failed_is_inconclusive(tmp_path, capsys):
    fleet = Fleet(testbeds=1, cases=2, nights=15, noise=0.01, seed=22)
    cases = cases_frame(fleet)
    runs = runs_frame(cases)
    runs.loc[runs["run_id"] == "r0000-0014", "health_failed"] = True  # no per-case answer
    write_history(tmp_path, cases, runs, environment_frame(runs))
    code, out, _ = _run(capsys, "--history", tmp_path, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["counts"]["inconclusive"] == 2
    assert doc["verdicts"][0]["reason"] == "the run is not eligible: health failed"


def test_testbed_and_since_choose_what_is_judged(regressed, capsys):
    code, out, _ = _run(capsys, "--history", regressed, "--testbed", PEER, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and {v["testbed"] for v in doc["verdicts"]} == {PEER}
    code, out, _ = _run(
        capsys,
        "--history",
        regressed,
        "--testbed",
        SLOW,
        "--since",
        "2026-01-27",
        "--format",
        "json",
    )
    doc = json.loads(out)
    assert doc["judged_runs"] == ["r0000-0026", "r0000-0027", "r0000-0028", "r0000-0029"]
    by_run = {v["run_id"]: v["state"] for v in doc["verdicts"] if "case0" in v["case_key"]}
    assert by_run == {
        "r0000-0026": "ok",
        "r0000-0027": "warn",
        "r0000-0028": "regression",
        "r0000-0029": "regression",
    }
    assert doc["attributions"][0]["peers"]["verdict"] == "node"  # peers read though not asked


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--history", "{tmp}"], "not a flopwatt history"),
        (["--history", "{history}", "--testbed", "nope"], "unknown testbed 'nope'"),
        (["--history", "{history}", "--since", "last tuesday"], "--since 'last tuesday'"),
        ([], "needs --history DIR"),
    ],
)
def test_bad_input_is_one_line_exit_2_or_nagios_unknown(argv, message, regressed, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, history=regressed) for a in argv]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and message in err
    code, out, err = _run(capsys, *argv, "--nagios")
    assert code == 3 and out.startswith("FLOPWATT UNKNOWN - ") and message in out
