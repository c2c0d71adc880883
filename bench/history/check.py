"""`history check` without the command line: which runs to judge, what to read for them, and
the verdicts, change points and attributions that come out (bench.history.verdicts,
changepoints, attribution).

Only the cases table is read over the window, LOOKBACK_DAYS before the earliest judged run
(20 eligible nightly runs fit in it with room for ineligible nights, and the change-point
detector sees two months): a case row carries its run's id, testbed, time and health mark,
so the judged runs are found among them. The testbeds and their SKUs (for the peers) come
from the store's registry, and the runs table is opened only for the runs an attribution
names. Before `history compact` every run is one file per table, and opening files is most
of a check's time. Baselines are computed for the STREAK_DAYS before the judged runs and for
them, not for every row read: enough for a streak of violations, a quarter of the work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.history import attribution, changepoints, verdicts
from bench.history.verdicts import INCONCLUSIVE, REGRESSION, STATES, WARN

LOOKBACK_DAYS = 60
STREAK_DAYS = 14  # rows judged before the judged runs: a streak is counted over these
STALE_DAYS = 7  # without --since: testbeds whose latest run is older are named, not judged
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
    from bench.history.query import check_history, load_cases
    from bench.history.registry import testbed_skus

    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    check_history(history)
    skus = testbed_skus(history)
    check_testbeds(skus, testbeds)
    scope = _with_peers(skus, testbeds) if testbeds else None
    cases = load_cases(history, since=_window(history, since), testbeds=scope, warn=note)
    if cases.empty:
        raise UsageError(f"{history}: the history holds no case rows to judge yet")
    skus = {**dict.fromkeys(cases["testbed"].unique(), "?"), **skus}
    runs = cases.drop_duplicates("run_id")[["run_id", "testbed", "started_at"]]
    mine = runs[runs["testbed"].isin(testbeds)] if testbeds else runs
    judged = _judged_runs(mine, since, note)
    result = CheckResult(str(history), sorted(judged["run_id"]), [], warnings=warnings)
    if judged.empty:
        return result
    first = judged["started_at"].min()
    cases = cases[cases["started_at"] >= first - timedelta(days=LOOKBACK_DAYS)]
    frame = verdicts.judge(cases, first - timedelta(days=STREAK_DAYS))
    rows = frame.index[frame["run_id"].isin(result.judged_runs)]
    result.verdicts = _verdicts(frame, rows)
    series = frame.loc[rows, "series"].unique()
    result.change_points = changepoints.find(frame, series, since)
    result.attributions = _attribute(history, frame, rows, result, skus)
    result.verdicts.sort(
        key=lambda v: (-STATES.index(v["state"]), v["testbed"], v["case_key"], v["started_at"])
    )
    return result


def _window(history: Path, since: datetime | None) -> datetime | None:
    """The earliest case row a check can need: LOOKBACK_DAYS before the first run it may judge
    (with --since, that date; else STALE_DAYS before the newest month folder's first day)."""
    from datetime import timezone

    from bench.history.layout import months

    if since is not None:
        return since - timedelta(days=LOOKBACK_DAYS)
    found = months(history, "cases")
    if not found:
        return None
    year, month = (int(part) for part in found[-1].split("-"))
    newest_month = datetime(year, month, 1, tzinfo=timezone.utc)
    return newest_month - timedelta(days=LOOKBACK_DAYS + STALE_DAYS)


def check_testbeds(skus: dict[str, str], testbeds: Sequence[str] | None) -> None:
    """UsageError naming the first testbed the history does not have."""
    known = set(skus)
    unknown = [t for t in testbeds or () if t not in known]
    if unknown:
        some = ", ".join(sorted(known)[:3])
        raise UsageError(
            f"unknown testbed {unknown[0]!r}: the history has {len(known)} testbeds ({some}, ...)"
        )


def _judged_runs(runs: Any, since: datetime | None, warn: Callable[[str], None]) -> Any:
    """Every run since `since`; else the latest run of each testbed that ran in the
    STALE_DAYS before the history's newest run (the others are named in a warning: a
    testbed that stopped running is news, its last verdict is not)."""
    if since is not None:
        return runs[runs["started_at"] >= since]
    latest = runs.groupby("testbed")["started_at"].transform("max")
    judged = runs[runs["started_at"] == latest].drop_duplicates("testbed")
    fresh = judged["started_at"] >= judged["started_at"].max() - timedelta(days=STALE_DAYS)
    stale = judged.loc[~fresh, "testbed"].tolist()
    if stale:
        warn(
            f"{len(stale)} testbeds have not run in the {STALE_DAYS} days before the newest "
            f"run, not judged: {', '.join(sorted(stale)[:5])}" + (", ..." if len(stale) > 5 else "")
        )
    return judged[fresh]


def _with_peers(skus: dict[str, str], testbeds: Sequence[str]) -> list[str]:
    """The testbeds asked for and every testbed of the same SKU (their peers)."""
    wanted = {skus[t] for t in testbeds}
    return sorted(t for t, s in skus.items() if s in wanted)


def _verdicts(frame: Any, rows: Any) -> list[dict[str, Any]]:
    """The judged (run, case) rows as plain values, with the reason in words."""
    run_ids = frame["run_id"].to_numpy(dtype=object)
    columns = ["testbed", "run_id", "started_at", "case_key", "case_label", "family"]
    columns += ["state", "metric", "ineligible"]
    for m in verdicts.METRICS:
        columns += [f"{m.name}.{f}" for f in (*VERDICT_FIELDS, "first_bad_row", "last_good_row")]
    sub = frame.loc[rows, columns].astype(object)
    sub["started_at"] = [t.isoformat() for t in sub["started_at"]]
    out = []
    for record in sub.to_dict("records"):
        v = {k: _plain(record[k]) for k in columns[:9]}
        v["state"], v["metric"] = str(v["state"]), str(v["metric"])
        collective = v["family"] == "collective"
        v["rate_metric"] = "busbw_bytes_per_s" if collective else "achieved_ops_per_s"
        for m in verdicts.METRICS:
            one = {f: _plain(record[f"{m.name}.{f}"]) for f in VERDICT_FIELDS}
            first, last = record[f"{m.name}.first_bad_row"], record[f"{m.name}.last_good_row"]
            one["first_bad_run"] = run_ids[first] if first >= 0 else None
            one["last_good_run"] = run_ids[last] if last >= 0 else None
            v[m.name] = one
        v["reason"] = reason(v)
        out.append(v)
    return out


def _plain(value: Any) -> Any:
    """JSON-able: NaN and NA are None, numpy scalars are Python numbers."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and value != value else value


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
    mine = frame.loc[rows]
    mine = mine[mine["state"] == REGRESSION]
    out = [
        (r[f"{m}.first_bad_row"], m, r[f"{m}.last_good_row"])
        for m, r in zip(mine["metric"].astype(str), mine.to_dict("records"), strict=True)
    ]
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
    run_ids = frame["run_id"].to_numpy(dtype=object)
    named = [i for b, _, g in suspects for i in (b, g) if i >= 0]
    wanted = sorted({run_ids[i] for i in named})
    opts = {"since": frame["started_at"].iloc[named].min(), "warn": result.warnings.append}
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
