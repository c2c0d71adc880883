"""Results on disk: the case record, the run folder writer, and the loader.

A run is a folder holding `run.json` (environment, command, versions, status), `cases.jsonl`
(one JSON object per finished case, appended, flushed and fsynced as each case ends, so a
crash, Ctrl-C or kill -9 loses nothing already measured), `samples/<case_id>.parquet` (every
raw sample) and `summary.csv` (a rendered view, rewritten after each case). Readers validate
the schema version and never unpickle anything.

A case record is frozen and made of parts (identity, work, timing, rates, energy,
collective), each a cases.jsonl line's nested object. Every leaf field keeps its 1.x name, and
PART_OF, one table, says which part holds it: that is how 1.x (flat) lines load into the same
dotted DataFrame columns as 2.x lines. Runners fill a CaseDraft and freeze it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.versions import METHOD_VERSION, SCHEMA_VERSION

STATUSES = ("ok", "skipped", "failed")

SUMMARY_COLUMNS = (
    "case_id",
    "kernel",
    "shape",
    "dtype",
    "device",
    "status",
    "reason",
    "time_median_s",
    "achieved_ops_per_s",
    "peak_ops_per_s",
    "peak_source",
    "frac_of_peak",
    "frac_of_measured_peak",
    "frac_of_clock_peak",
    "rel_noise",
    "n_samples",
    "timing_mode",
    "stop_reason",
    "avg_power_w",
    "ops_per_j",
    "energy_source",
)


@dataclass(frozen=True)
class Identity:
    """Which case this is, on what, and how it ended."""

    case_id: str
    kernel: str
    params: dict[str, Any]
    dtype: str
    device: str
    world_size: int
    status: str  # ok | skipped | failed
    reason: str | None = None  # why skipped/failed; None when ok
    math_mode: str | None = None
    rank: int | None = None  # the rank a per-rank line describes; None for job-wide figures
    warnings: list[str] = field(default_factory=list)
    # the verdict of the health check of the device this ran on (commands.health), when one ran
    # first: "FAIL" keeps the case out of baselines (bench.results.blessed.runs.bless)
    health_verdict: str | None = None
    started_at: str | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class Work:
    """What one call does: its operation count and bytes, and whether its answer was right."""

    ops: int | None = None
    ops_convention: str | None = None
    bytes: int | None = None
    arithmetic_intensity: float | None = None
    correctness: dict[str, Any] | None = None
    kernel_details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    """Per-call seconds derived from every raw sample (bench.measuring.stats), and how."""

    time_median_s: float | None = None
    time_mean_s: float | None = None
    time_min_s: float | None = None
    time_max_s: float | None = None
    time_p10_s: float | None = None
    time_p90_s: float | None = None
    time_iqr_s: float | None = None
    time_ci95_low_s: float | None = None
    time_ci95_high_s: float | None = None
    ci95_method: str | None = None
    rel_noise: float | None = None  # stdev / mean (nvbench "Noise")
    rel_iqr: float | None = None
    n_samples: int | None = None
    timing_mode: str | None = None
    timing_mode_reason: str | None = None
    stop_reason: str | None = None
    first_call_s: float | None = None
    warmup_s: float | None = None
    warmup_calls: int | None = None
    warmup_stable: bool | None = None
    measured_time_s: float | None = None
    wall_time_s: float | None = None
    # clocks around the measurement
    clock_hz_before: float | None = None
    clock_hz_after: float | None = None
    clock_source: str | None = None
    # fraction of the timing some task waited for a CPU (Linux PSI); see bench.measuring.pressure
    cpu_pressure: float | None = None
    cpu_pressure_source: str | None = None  # where it came from, or why it is None
    # a health case: the short repeats it is the median of, {time_median_s, cpu_pressure}
    # each (bench.commands.health.noise); empty for a case timed once
    repeats: list[dict[str, Any]] = field(default_factory=list)
    samples_file: str | None = None


@dataclass(frozen=True)
class Rates:
    """Achieved rates, the peaks they are compared with (and where those came from), ratios."""

    achieved_ops_per_s: float | None = None  # ops / time_median_s
    best_ops_per_s: float | None = None  # ops / time_min_s (MAMF's "max")
    peak_ops_per_s: float | None = None
    peak_source: str | None = None  # datasheet | derived | user | None
    peak_detail: str | None = None  # provenance, or why the peak is unknown
    peak_clock_hz: float | None = None
    frac_of_peak: float | None = None
    peak_exceeded: bool | None = None  # above metrics.PEAK_MARGIN x the peak: the peak is wrong
    # the measured ceiling of this device and math mode (bench.commands.ceiling), and the clock peak
    measured_peak_ops_per_s: float | None = None  # best matmul median measured here
    measured_peak_source: str | None = None  # "this run" | "stored" | None
    measured_peak_detail: str | None = None  # file, shape and date, or why there is none
    frac_of_measured_peak: float | None = None
    clock_peak_ops_per_s: float | None = None  # peak x measured SM clock / spec clock
    clock_peak_detail: str | None = None  # the factors, or why it is unknown
    frac_of_clock_peak: float | None = None


@dataclass(frozen=True)
class Energy:
    """The energy phase: back-to-back calls in a window the power source measured."""

    energy_j: float | None = None
    energy_source: str | None = (
        None  # nvml_/amdsmi_energy_counter | _power_integral | rapl | estimate
    )
    energy_reason: str | None = None  # why energy_j is None, or the caveat that applies
    energy_scope: str | None = None  # what the sensor covers
    window_s: float | None = None
    iterations: int | None = None
    avg_power_w: float | None = None  # energy_j / window_s
    idle_power_w: float | None = None  # the run's idle baseline, the denominator of net_*
    net_power_w: float | None = None
    ops_per_j: float | None = None  # iterations * ops / energy_j (TOPS/W scaled)
    net_ops_per_j: float | None = None  # iterations * ops / (energy_j - idle_power_w * window_s)
    energy_integral_j: float | None = None  # trapezoid of the sampled power
    energy_counter_vs_integral: float | None = None  # counter / integral
    sm_clock_hz_median: float | None = None
    mem_clock_hz_median: float | None = None
    temp_c_max: float | None = None
    throttle: list[str] = field(default_factory=list)  # clock-event reasons seen in the window
    throttle_time_s: dict[str, float] = field(default_factory=dict)
    trace_file: str | None = None


@dataclass(frozen=True)
class Collective:
    """Collectives (nccl-tests definitions) and multi-rank figures; empty for a compute case."""

    rank_reduction: str | None = None  # how per-rank figures became one ("max" for a collective)
    time_by_rank_s: list[float] = field(default_factory=list)
    time_p50_s: float | None = None  # per-iteration times, max across ranks
    time_p99_s: float | None = None
    algbw_bytes_per_s: float | None = None  # bytes / time_median_s
    busbw_bytes_per_s: float | None = None  # algbw x bus_factor
    bus_factor: float | None = None
    link_peak_bytes_per_s: float | None = None  # unidirectional: link_utilisation's denominator
    link_peak_source: str | None = None
    link_peak_detail: str | None = None
    link_utilisation: float | None = None
    wrong_elements: int | None = None  # nccl-tests' #wrong, summed over ranks
    scaling_efficiency: float | None = None  # E(N) at the job's world size (kernels/scaling.py)
    scaling: list[dict[str, Any]] = field(default_factory=list)  # one row per N


# The parts of a record, in the order of a cases.jsonl line.
PARTS: dict[str, type] = {
    "identity": Identity,
    "work": Work,
    "timing": Timing,
    "rates": Rates,
    "energy": Energy,
    "collective": Collective,
}
# Stamped on every line beside the parts, so a reader knows the shape before reading it.
VERSION_FIELDS = ("schema_version", "method_version")
# The one table from a leaf field (its 1.x flat name, unchanged) to the part holding it.
PART_OF: dict[str, str] = {f.name: part for part, cls in PARTS.items() for f in fields(cls)}
# The dotted column of each leaf in a loaded run's DataFrame ("timing.time_median_s").
DOTTED: dict[str, str] = {leaf: f"{part}.{leaf}" for leaf, part in PART_OF.items()}


@dataclass(frozen=True)
class CaseResult:
    """One line of cases.jsonl, in parts. SI units, unit in the name; None means unknown."""

    identity: Identity
    work: Work = field(default_factory=Work)
    timing: Timing = field(default_factory=Timing)
    rates: Rates = field(default_factory=Rates)
    energy: Energy = field(default_factory=Energy)
    collective: Collective = field(default_factory=Collective)
    schema_version: str = SCHEMA_VERSION
    method_version: int = METHOD_VERSION

    @classmethod
    def from_leaves(cls, leaves: dict[str, Any]) -> CaseResult:
        """Build the parts from leaf fields by name (a runner's draft, a 1.x line)."""
        unknown = sorted(set(leaves) - set(PART_OF) - set(VERSION_FIELDS))
        if unknown:
            raise TypeError(f"not a case field: {', '.join(unknown)}")
        grouped: dict[str, dict[str, Any]] = {part: {} for part in PARTS}
        for leaf, value in leaves.items():
            if leaf in PART_OF:
                grouped[PART_OF[leaf]][leaf] = value
        parts = {part: PARTS[part](**values) for part, values in grouped.items()}
        versions = {k: leaves[k] for k in VERSION_FIELDS if k in leaves}
        return cls(**parts, **versions)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> CaseResult:
        """A case from a JSON object: nested (2.x) or flat (1.x)."""
        return cls.from_leaves(leaves_of(obj))

    def leaves(self) -> dict[str, Any]:
        """Every leaf field by its name, flat (the readers' view of a case)."""
        out: dict[str, Any] = {}
        for part in PARTS:
            out.update(asdict(getattr(self, part)))
        out.update({k: getattr(self, k) for k in VERSION_FIELDS})
        return out

    def updated(self, **leaves: Any) -> CaseResult:
        """A copy with some leaf fields changed, each in its part."""
        return CaseResult.from_leaves({**self.leaves(), **leaves})

    def to_json(self) -> str:
        return json.dumps(_finite(asdict(self)), sort_keys=False, allow_nan=False)


class CaseDraft:
    """A case record being filled in by a runner: leaf fields by name, frozen by freeze().

    Only the leaf names of the parts are accepted, so a typo fails at once; a list or dict
    field read before it is set starts empty, so `draft.warnings.append(...)` works.
    """

    def __init__(self, **leaves: Any) -> None:
        object.__setattr__(self, "_values", {})
        for name, value in leaves.items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__["_values"]
        if name in values:
            return values[name]
        if name not in PART_OF:
            raise AttributeError(f"a case has no field {name!r}")
        values[name] = _default(name)
        return values[name]

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in PART_OF:
            raise AttributeError(f"a case has no field {name!r}")
        self._values[name] = value

    def freeze(self) -> CaseResult:
        return CaseResult.from_leaves(self._values)


def _default(leaf: str) -> Any:
    spec = PARTS[PART_OF[leaf]].__dataclass_fields__[leaf]
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    if spec.default is not MISSING:
        return spec.default
    raise AttributeError(f"required case field {leaf!r} was never set")


def leaves_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The leaf fields of a cases.jsonl object, nested (2.x) or flat (1.x), by leaf name."""
    if not isinstance(obj.get("identity"), dict):
        return dict(obj)
    out = {k: v for k, v in obj.items() if k not in PARTS}
    for part in PARTS:
        out.update(obj.get(part) or {})
    return out


def nested(obj: dict[str, Any]) -> dict[str, Any]:
    """A cases.jsonl object in the 2.x shape; a 1.x field this flopwatt lacks stays on top."""
    if isinstance(obj.get("identity"), dict):
        return obj
    out: dict[str, Any] = {part: {} for part in PARTS}
    for leaf, value in obj.items():
        if leaf in PART_OF:
            out[PART_OF[leaf]][leaf] = value
        else:
            out[leaf] = value
    return out


# Leaf fields every reader may rely on (in 1.x and 2.x); fields added later are optional.
REQUIRED_FIELDS = (
    "case_id",
    "kernel",
    "params",
    "dtype",
    "device",
    "status",
    "reason",
    "ops",
    "bytes",
    "time_median_s",
    "achieved_ops_per_s",
    "peak_ops_per_s",
    "peak_source",
    "frac_of_peak",
    "timing_mode",
    "stop_reason",
    "n_samples",
    "rel_noise",
    "schema_version",
    "method_version",
)


def _finite(value: Any) -> Any:
    """JSON has no NaN or inf: store them as None (unknown), which is what they mean here."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


HEALTH_FILE = (
    "health.jsonl"  # a health run's check rows (bench.commands.health), one JSON object each
)


def write_health(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """The check rows of a health check, written at once when the verdicts are known."""
    tmp = run_dir / (HEALTH_FILE + ".tmp")
    tmp.write_text("".join(json.dumps(_finite(row), allow_nan=False) + "\n" for row in rows))
    os.replace(tmp, run_dir / HEALTH_FILE)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite(payload), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block; deliver them, in order, once it ends.

    The handlers are swapped rather than the signals masked: a process-directed signal can
    land on any thread (torch and pyarrow keep pools), and Python still runs its handler on
    the main thread mid-block, so a per-thread mask does not hold it back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda n, _f: held.append(n)) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


class RunWriter:
    """Writes one run folder as the run goes; every finished case is on disk at once."""

    def __init__(self, run_dir: Path, meta: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.meta = {"schema_version": SCHEMA_VERSION, "method_version": METHOD_VERSION, **meta}
        self.meta.setdefault("status", "running")
        self.results: list[CaseResult] = []
        try:
            (run_dir / "samples").mkdir(parents=True, exist_ok=False)
            write_json_atomic(run_dir / "run.json", self.meta)
            self._cases = open(run_dir / "cases.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        except FileExistsError as exc:
            raise UsageError(f"run folder {run_dir} already exists; choose another --out") from exc
        except OSError as exc:
            raise UsageError(
                f"cannot write results to {run_dir} ({exc.strerror}); choose a writable --out"
            ) from exc

    def append(
        self,
        result: CaseResult,
        samples: dict[str, list[Any]] | None,
        trace: dict[str, list[Any]] | None = None,
    ) -> None:
        """Tables first, then the case line (flushed and fsynced), then the summary view.

        Ctrl-C and SIGTERM wait until the case is written and counted, so that an interrupted
        run's `n_cases` always equals the lines in cases.jsonl.
        """
        with _signals_deferred():
            case_id = result.identity.case_id
            if samples is not None:
                result = result.updated(samples_file=self._write_table("samples", case_id, samples))
            if trace is not None:
                result = result.updated(trace_file=self._write_table("traces", case_id, trace))
            self._cases.write(result.to_json() + "\n")
            self._cases.flush()
            os.fsync(self._cases.fileno())
            self.results.append(result)
            self._write_summary()

    def _write_table(self, folder: str, case_id: str, columns: dict[str, list[Any]]) -> str:
        import pyarrow as pa
        import pyarrow.parquet as pq

        (self.run_dir / folder).mkdir(exist_ok=True)
        name = f"{folder}/{case_id}.parquet"
        pq.write_table(pa.table(columns), self.run_dir / name)
        return name

    def update_meta(self, **fields: Any) -> None:
        """Add facts learned after the start (e.g. the idle baseline) to run.json."""
        self.meta.update(fields)
        write_json_atomic(self.run_dir / "run.json", self.meta)

    def finish(self, status: str, **extra: Any) -> None:
        self.meta.update(status=status, n_cases=len(self.results), **extra)
        write_json_atomic(self.run_dir / "run.json", self.meta)
        self._cases.close()

    def _write_summary(self) -> None:
        import csv

        tmp = self.run_dir / "summary.csv.tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(SUMMARY_COLUMNS)
            for r in self.results:
                row = {**r.leaves(), "shape": r.identity.params.get("shape_label")}
                writer.writerow(["" if row[c] is None else row[c] for c in SUMMARY_COLUMNS])
        os.replace(tmp, self.run_dir / "summary.csv")


@dataclass
class Run:
    """A loaded run: its metadata, one DataFrame row per case, and what was odd on reading."""

    path: Path
    meta: dict[str, Any]
    cases: Any  # pandas.DataFrame
    problems: list[str]
    health: list[dict[str, Any]] = field(default_factory=list)  # health.jsonl rows, if any

    def samples(self, case_id: str) -> Any:
        """The raw samples of one case as a DataFrame."""
        import pandas as pd

        return pd.read_parquet(self.path / "samples" / f"{case_id}.parquet")

    def trace(self, case_id: str) -> Any:
        """The power trace of one case's energy window as a DataFrame."""
        import pandas as pd

        return pd.read_parquet(self.path / "traces" / f"{case_id}.parquet")


# Major versions this flopwatt reads: 1.x lines are flat, 2.x lines nested in parts; both
# load into the same dotted columns (`nested` maps a 1.x line through PART_OF).
READABLE_MAJORS = ("1", SCHEMA_VERSION.split(".")[0])


def check_schema(version: Any, where: str) -> None:
    """Refuse data of a major schema version not read here: its fields may mean other things."""
    if not isinstance(version, str) or version.split(".")[0] not in READABLE_MAJORS:
        majors = " and ".join(f"{m}.x" for m in READABLE_MAJORS)
        raise ValueError(f"{where}: schema version {version!r}, this flopwatt reads {majors}")


def read_case_lines(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Valid case objects from cases.jsonl in the 2.x shape (1.x lines nested through PART_OF),
    skipping (and reporting) lines a crash truncated."""
    cases, problems = [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                problems.append(f"{path.name}:{number}: not valid JSON (truncated write?), skipped")
                continue
            if not isinstance(obj, dict) or any(f not in leaves_of(obj) for f in REQUIRED_FIELDS):
                problems.append(f"{path.name}:{number}: missing required fields, skipped")
                continue
            check_schema(obj.get("schema_version"), f"{path.name}:{number}")
            cases.append(nested(obj))
    return cases, problems


def load_run(run_dir: str | Path) -> Run:
    """Load a run folder; ValueError with a one-line reason if it is not a readable run.

    `cases` has one row per case and dotted columns, one per leaf field of a part
    ("timing.time_median_s") and per key of a nested dict ("identity.params.m"), whichever
    schema version (1.x flat or 2.x nested) the run was written in.
    """
    import pandas as pd

    path = Path(run_dir)
    meta_path, cases_path = path / "run.json", path / "cases.jsonl"
    if not meta_path.is_file() or not cases_path.is_file():
        raise ValueError(f"{path} is not a flopwatt run folder (needs run.json and cases.jsonl)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({exc.msg})") from exc
    check_schema(meta.get("schema_version"), str(meta_path))
    cases, problems = read_case_lines(cases_path)
    for problem in problems:
        warnings.warn(problem, stacklevel=2)
    empty = pd.DataFrame(columns=[DOTTED.get(f, f) for f in REQUIRED_FIELDS])
    frame = pd.json_normalize(cases) if cases else empty
    health: list[dict[str, Any]] = []
    if (path / HEALTH_FILE).is_file():
        with open(path / HEALTH_FILE, encoding="utf-8") as fh:
            health = [json.loads(line) for line in fh if line.strip()]
    return Run(path=path, meta=meta, cases=frame, problems=problems, health=health)
