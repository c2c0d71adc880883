"""`history check` without the command line: which runs to judge, what to read for them, and
the verdicts, change points and attributions that come out (bench.history.verdicts,
changepoints, attribution).

The window read and the runs judged are bench.history.window's. The testbeds and their SKUs
(for the peers) come from the store's registry, and the runs table is opened only for the
runs an attribution names. Baselines are computed for the STREAK_DAYS before the judged runs
and for them, not for every row read: enough for a streak of violations, a quarter of the
work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.history import attribution, changepoints, verdicts
from bench.history.verdicts import INCONCLUSIVE, REGRESSION, STATES, WARN

STREAK_DAYS = 14  # rows judged before the judged runs: a streak is counted over these
EXIT_OK, EXIT_REGRESSION = 0, 1  # as `compare`; bad input is 2 (bench.cli)
NAGIOS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
VERDICT_FIELDS = (
    "value",
    "baseline",
    "change",
    "change_low",
    "change_high",
    "threshold",
    "sigma",
    "n",
    "state",
)


@dataclass
class CheckResult:
    """What `history check` found: one verdict per judged (run, case) and the evidence."""

    history: str
    judged_runs: list[str]
    verdicts: list[dict[str, Any]]
    change_points: list[changepoints.ChangePoint] = field(default_factory=list)
    attributions: list[attribution.Attribution] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for v in self.verdicts:
            out[v["state"]] += 1
        return out

    def testbeds_with(self, state: str) -> set[str]:
        return {v["testbed"] for v in self.verdicts if v["state"] == state}

    def exit_code(self) -> int:
        """1 when a case regressed, else 0 (warnings and improvements do not fail)."""
        return EXIT_REGRESSION if self.counts()[REGRESSION] else EXIT_OK

    def nagios(self) -> tuple[int, str]:
        """The monitoring convention: (0 OK | 1 WARNING | 2 CRITICAL | 3 UNKNOWN, status)."""
        counts = self.counts()
        judged = sum(counts.values()) - counts[INCONCLUSIVE]
        if counts[REGRESSION]:
            where = len(self.testbeds_with(REGRESSION))
            code, text = 2, f"{_n(counts[REGRESSION], 'regression')} on {_n(where, 'testbed')}"
        elif counts[WARN]:
            where = len(self.testbeds_with(WARN))
            code, text = 1, f"{_n(counts[WARN], 'warning')} on {_n(where, 'testbed')}"
        elif judged:
            where = len({v["testbed"] for v in self.verdicts})
            code, text = (
                0,
                f"{_n(judged, 'case')} judged, none regressed, on {_n(where, 'testbed')}",
            )
        else:
            code, text = 3, f"nothing could be judged ({counts[INCONCLUSIVE]} inconclusive)"
        perf = " ".join(f"{k}={n}" for k, n in counts.items())
        perf += f" changepoints={len(self.change_points)}"
        return code, f"FLOPWATT {NAGIOS[code]} - {text} | {perf}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "judged_runs": self.judged_runs,
            "counts": self.counts(),
            "exit_code": self.exit_code(),
            "verdicts": self.verdicts,
            "change_points": [c.as_dict() for c in self.change_points],
            "attributions": [a.as_dict() for a in self.attributions],
            "warnings": self.warnings,
        }


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def run_check(
    history: Path,
    testbeds: Sequence[str] | None = None,
    since: datetime | None = None,
    warn: Callable[[str], None] | None = None,
) -> CheckResult:
    """Judge the latest run of each testbed (or every run since `since`)."""
    from bench.history.query import check_history
    from bench.history.registry import testbed_skus
    from bench.history.window import read_window

    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    check_history(history)
    skus = testbed_skus(history)
    check_testbeds(skus, testbeds)
    scope = _with_peers(skus, testbeds) if testbeds else None
    window = read_window(history, testbeds, scope, since, note)
    if window.cases.empty:
        raise UsageError(f"{history}: the history holds no case rows to judge yet")
    skus = {**dict.fromkeys(window.cases["testbed"].unique(), "?"), **skus}
    result = CheckResult(str(history), sorted(window.judged["run_id"]), [], warnings=warnings)
    if window.judged.empty:
        return result
    first = window.judged["started_at"].min()
    frame = verdicts.judge(window.cases, first - timedelta(days=STREAK_DAYS))
    rows = frame.index[frame["run_id"].isin(result.judged_runs)]
    result.verdicts = _verdicts(frame, rows)
    series = frame.loc[rows, "series"].unique()
    result.change_points = changepoints.find(frame, series, since)
    result.attributions = _attribute(history, frame, rows, result, skus)
    result.verdicts.sort(
        key=lambda v: (-STATES.index(v["state"]), v["testbed"], v["case_key"], v["started_at"])
    )
    return result


def check_testbeds(skus: dict[str, Any], testbeds: Sequence[str] | None) -> None:
    """UsageError naming the first testbed the history does not have."""
    known = set(skus)
    unknown = [t for t in testbeds or () if t not in known]
    if unknown:
        some = ", ".join(sorted(known)[:3])
        raise UsageError(
            f"unknown testbed {unknown[0]!r}: the history has {len(known)} testbeds ({some}, ...)"
        )


def _with_peers(skus: dict[str, str], testbeds: Sequence[str]) -> list[str]:
    """The testbeds asked for and every testbed of the same SKU (their peers)."""
    wanted = {skus[t] for t in testbeds}
    return sorted(t for t, s in skus.items() if s in wanted)


def _verdicts(frame: Any, rows: Any) -> list[dict[str, Any]]:
    """The judged (run, case) rows as plain values, with the reason in words. Built a
    column at a time: a fleet's night is thousands of rows."""
    columns = ["testbed", "run_id", "case_key", "case_label", "family", "state", "metric"]
    sub = frame.loc[rows]
    top = {c: _plain_column(sub[c]) for c in [*columns, "ineligible"]}
    top["state"], top["metric"] = list(map(str, top["state"])), list(map(str, top["metric"]))
    top["started_at"] = _isoformat(sub["started_at"])
    top["rate_metric"] = [
        "busbw_bytes_per_s" if f == "collective" else "achieved_ops_per_s" for f in top["family"]
    ]
    names = ["testbed", "run_id", "started_at", "case_key", "case_label", "family", "state"]
    names += ["metric", "ineligible", "rate_metric"]
    out = [
        dict(zip(names, values, strict=True))
        for values in zip(*(top[n] for n in names), strict=True)
    ]
    for m in verdicts.METRICS:
        fields = {f: _plain_column(sub[f"{m.name}.{f}"]) for f in VERDICT_FIELDS}
        for end in ("first_bad", "last_good"):
            fields[f"{end}_run"] = _run_at(frame, sub[f"{m.name}.{end}_row"].to_numpy())
        keys = list(fields)
        for v, values in zip(out, zip(*fields.values(), strict=True), strict=True):
            v[m.name] = dict(zip(keys, values, strict=True))
    for v in out:
        v["reason"] = reason(v)
    return out


def _isoformat(times: Any) -> list[str]:
    """datetime.isoformat() of each time; the judged rows share a few run times, each
    formatted once."""
    import pandas as pd

    uniques, where = np.unique(times.to_numpy(), return_inverse=True)
    text = [t.isoformat() for t in pd.to_datetime(uniques, utc=True)]
    return [text[i] for i in where.ravel()]


def _run_at(frame: Any, at: np.ndarray) -> list[str | None]:
    """The run id of each frame row `at`, None where -1."""
    if not len(frame):
        return [None] * len(at)
    ids = frame["run_id"].take(np.maximum(at, 0)).to_numpy(dtype=object)
    return np.where(at >= 0, ids, None).tolist()


def _plain_column(column: Any) -> list[Any]:
    """JSON-able values: NaN and NA are None, numpy scalars Python numbers."""
    values = column.astype(object)
    return values.where(column.notna(), None).tolist()


def reason(v: dict[str, Any]) -> str:
    """The verdict in one line: what moved, by how much, against what."""
    m = v[v["metric"]]
    name = (
        "ops/J"
        if v["metric"] == "ops_per_j"
        else "busbw"
        if v["family"] == "collective"
        else "rate"
    )
    if v["state"] == INCONCLUSIVE:
        if v["ineligible"]:
            return f"the run is not eligible: {v['ineligible']}"
        if m["value"] is None:
            return f"no {name} recorded"
        return f"{m['n']} eligible runs before it, {verdicts.MIN_BASELINE_RUNS} needed"
    if m["change"] is None:
        return f"no {name} recorded"
    text = (
        f"{name} {m['change']:+.1%} vs the median of {m['n']} runs (threshold {m['threshold']:.1%})"
    )
    if m["first_bad_run"] and v["state"] != "ok":
        text += f"; since {m['first_bad_run']}"
    return text


def _suspects(frame: Any, rows: Any, points: list[Any]) -> list[tuple[int, str, int]]:
    """(first bad row, metric, last good row or -1) of each regression among the judged rows
    and of each change point, each once."""
    rows = np.asarray(rows)
    regressed = rows[frame["state"].cat.codes.to_numpy()[rows] == STATES.index(REGRESSION)]
    decided = frame["metric"].cat.codes.to_numpy()[regressed]
    energy = decided == verdicts.METRICS_NAMES.index(verdicts.ENERGY.name)  # else the rate
    metrics = np.where(energy, verdicts.ENERGY.name, verdicts.RATE.name)
    ends = {}
    for end in ("first_bad_row", "last_good_row"):
        rate, joules = (frame[f"{m.name}.{end}"].to_numpy()[regressed] for m in verdicts.METRICS)
        ends[end] = np.where(energy, joules, rate)
    out = list(zip(ends["first_bad_row"], metrics.tolist(), ends["last_good_row"], strict=True))
    out += [(cp.rows[0], cp.metric, cp.rows[1]) for cp in points]
    return list(dict.fromkeys((int(b), m, int(g)) for b, m, g in out))


def _attribute(
    history: Path, frame: Any, rows: Any, result: CheckResult, skus: dict[str, str]
) -> list[attribution.Attribution]:
    """Environment diff and peers for each regression and each change point."""
    from bench.history.query import load_environment, load_run_rows

    suspects = _suspects(frame, rows, result.change_points)
    if not suspects:
        return []
    named = sorted({i for b, _, g in suspects for i in (b, g) if i >= 0})
    run_ids = dict(zip(named, frame["run_id"].take(named).tolist(), strict=True))
    opts = {"since": frame["started_at"].take(named).min(), "warn": result.warnings.append}
    wanted = sorted(set(run_ids.values()))
    env = load_environment(history, wanted, **opts)
    runs = load_run_rows(history, wanted, **opts)
    envs = attribution.environments(_environment(env, runs))
    table = attribution.peer_table(frame, skus, [b for b, _, _ in suspects])
    out = []
    for bad, metric, good in suspects:
        good_run = run_ids[good] if good >= 0 else None
        if good_run is None:
            diff, note = [], "no eligible run before the first bad one"
        else:
            diff, note = attribution.environment_diff(envs, good_run, run_ids[bad])
        out.append(
            attribution.Attribution(
                testbed=frame["testbed"].iat[bad],
                case_key=frame["case_key"].iat[bad],
                metric=metric,
                last_good_run=good_run,
                first_bad_run=run_ids[bad],
                environment=diff,
                environment_note=note,
                peers=attribution.peers(table, bad, metric),
            )
        )
    return out


def _environment(env: Any, runs: Any) -> Any:
    """The environment rows plus each run's flopwatt and METHOD_VERSION from the runs table."""
    import pandas as pd

    extra = [
        pd.DataFrame({"run_id": runs["run_id"], "key": key, "value": runs[key].astype("object")})
        for key in ("flopwatt_version", "method_version")
    ]
    keep = runs["run_id"].isin(set(env["run_id"])).to_numpy()  # no environment: no versions
    extra = [e[keep] for e in extra]
    return pd.concat([env, *extra], ignore_index=True)
