"""A whole health check: every rank's device, then rank 0's verdicts and the run folder.

check_job() is what `flopwatt health` and the nightly suite's pre-flight both run. Each rank
checks its own device (bench.commands.health.device); the records reach rank 0 through the job's
store, so a rank that died costs only its own record (a FAIL row naming it). Rank 0 adds
the verdicts that need several devices (bench.commands.health.fleet) and the baseline's.

Storage: the measurements are ordinary cases in cases.jsonl (matmul and memcopy per rank,
the allreduce once), each with health_verdict = its device's verdict, so compare reads them
and baseline bless leaves out those of a device that FAILed; the check rows go to
health.jsonl (bench.results.record.HEALTH_FILE); run.json["health"] holds the summary, thresholds,
baselines used, the canary digests (the golden of a future baseline) and the raw NVML
readings per device.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.commands.health.amdsmi_checks import CHECK_NAMES as AMD_CHECK_NAMES
from bench.commands.health.baseline import load_refs
from bench.commands.health.device import check_device, failed_record
from bench.commands.health.fleet import (
    allreduce_rows,
    baseline_rows,
    canary_rows,
    canary_versions,
    peer_rows,
    version_rows,
)
from bench.commands.health.model import (
    FAIL,
    JOB,
    PASS,
    Check,
    DeviceRecord,
    Summary,
    Thresholds,
    device_key,
    worst,
)
from bench.commands.health.nvml_checks import CHECK_NAMES
from bench.commands.health.probe import ProbeSettings
from bench.devices.base import Backend
from bench.execution.job import Job
from bench.execution.outcome import CaseOutcome
from bench.results.record import CaseResult, RunWriter, leaves_of, write_health

ORDER = (
    *CHECK_NAMES,
    *(name for name in AMD_CHECK_NAMES if name not in CHECK_NAMES),
    "device runs work",
    "matmul known answer",
    "matmul vs peers",
    "matmul vs baseline",
    "copy bandwidth vs peers",
    "copy bandwidth vs baseline",
    "canary repeat",
    "canary vs peers",
    "canary vs baseline",
    "driver version",
    "cuda driver version",
    "libraries",
    "vbios version",
    "rank reported",
    "gpu count",
    "allreduce result",
    "allreduce busbw vs baseline",
)
EXCLUDED = "excluded from baselines: this device failed its health check (see health.jsonl)"


@dataclass
class Options:
    """How `flopwatt health` (or the nightly's pre-flight) was asked to check."""

    settings: ProbeSettings
    thresholds: Thresholds = field(default_factory=Thresholds)
    baseline: str = "auto"  # "auto" or a baseline folder
    baselines_root: Path = Path("results/baselines")
    flip_rank: int | None = None  # test seam: this rank's canary bytes get one bit flipped
    expect_gpus: int | None = None
    limit_s: float = 120.0  # how long rank 0 waits for the others' reports


@dataclass
class Outcome:
    """Rank 0's view of the check: every record, every row, and the verdicts."""

    records: list[DeviceRecord]
    rows: list[Check]
    summary: Summary
    world_size: int
    job_outcome: CaseOutcome | None
    baselines: dict[str, str]  # sku -> the baseline folder used, or why none
    canaries: list[dict[str, Any]]

    def verdict_of(self, record: DeviceRecord) -> str:
        rank = record.rank if self.world_size > 1 else None
        return self.summary.by_device.get(device_key(rank, record.device), PASS)

    def by_rank(self) -> dict[str, str]:
        """Each rank's device verdict (JSON keys), and "job" for the job-wide rows."""
        out = {str(r.rank): self.verdict_of(r) for r in self.records}
        out["job"] = worst(row.verdict for row in self.rows if row.device == JOB)
        return out

    def meta(self) -> dict[str, Any]:
        """run.json["health"]."""
        return {
            **asdict(self.summary),
            "baselines": self.baselines,
            "canaries": self.canaries,
            "devices": {
                device_key(r.rank if self.world_size > 1 else None, r.device): {
                    "host": r.host,
                    "sku": r.sku,
                    "versions": r.versions,
                    "canary": r.canary,
                    "nvml": r.readings,
                }
                for r in self.records
            },
        }


def _order(row: Check) -> tuple[Any, ...]:
    index = ORDER.index(row.name) if row.name in ORDER else len(ORDER)
    return (row.device == JOB, row.rank if row.rank is not None else -1, row.device, index)


def _goldens(records: list[DeviceRecord], verdicts: dict[str, str]) -> list[dict[str, Any]]:
    """Per set of versions, the bytes most healthy devices agreed on (more than half)."""
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for r in records:
        sha = r.canary.get("sha256")
        if sha and verdicts.get(str(r.rank)) != FAIL:
            versions = canary_versions(r.versions)
            key = repr(sorted(versions.items()))
            groups.setdefault(key, (versions, []))[1].append(sha)
    out = []
    for versions, hashes in groups.values():
        sha, n = Counter(hashes).most_common(1)[0]
        if 2 * n > len(hashes):
            out.append({"versions": versions, "sha256": sha, "devices": n})
    return out


def evaluate(
    records: list[DeviceRecord],
    job_outcome: CaseOutcome | None,
    skip: str | None,
    world_size: int,
    options: Options,
) -> Outcome:
    """Every row of the job: each rank's own, then peers, baseline, canary and versions."""
    t = options.thresholds
    skus = {r.sku for r in records if r.sku != "unknown"}
    refs, notes = load_refs(skus, options.baseline, options.baselines_root)
    measured = [r for r in records if r.sku != "unknown"]
    rows = [row for r in records for row in r.rows]
    rows += peer_rows(measured, t) + baseline_rows(measured, refs, t)
    rows += canary_rows(measured, refs) + version_rows(measured)
    job_case = job_outcome.result.leaves() if job_outcome is not None else None
    job_ref = refs[next(iter(skus))] if len(skus) == 1 else "several SKUs: no one baseline"
    rows += allreduce_rows(job_case, world_size, skip, job_ref, t)
    if world_size == 1:
        for row in rows:
            row.rank = None
    rows.sort(key=_order)
    summary = Summary.of(rows, t, notes)
    baselines = {sku: ref if isinstance(ref, str) else ref.path for sku, ref in refs.items()}
    outcome = Outcome(records, rows, summary, world_size, job_outcome, baselines, [])
    outcome.canaries = _goldens(records, outcome.by_rank())
    return outcome


def check_job(job: Job, backend: Backend, options: Options) -> Outcome | None:
    """Check this rank's device; on rank 0 the whole job's Outcome, elsewhere None."""
    flip = options.flip_rank is not None and options.flip_rank == job.ctx.rank
    record, job_outcome, skip = check_device(
        job,
        backend,
        options.settings,
        options.thresholds,
        flip_bit=flip,
        expect_gpus=options.expect_gpus,
        limit_s=options.limit_s,
    )
    posted = job.collect("health/report", record.as_dict(), options.limit_s)
    if not job.is_root:
        return None
    records = [
        DeviceRecord.from_dict(data)
        if data is not None
        else failed_record(
            rank, "unknown", f"sent no report within {options.limit_s:g} s (dead or hung)"
        )
        for rank, data in enumerate(posted)
    ]
    return evaluate(records, job_outcome, skip, job.world_size, options)


def write(writer: RunWriter, outcome: Outcome) -> None:
    """Rank 0: the measurements as cases (marked with their device's verdict), the rows as
    health.jsonl, the summary into run.json."""
    from bench.execution.session import safe_name

    index = 0
    for record in outcome.records:
        verdict = outcome.verdict_of(record)
        for case, samples in zip(record.cases, record.samples, strict=True):
            leaves = leaves_of(case)
            label = f"{index:04d}-{leaves['kernel']}-{leaves['dtype']}-"
            label += str(leaves["params"].get("shape_label"))
            case_id, rank = safe_name(label), leaves.get("rank")
            if outcome.world_size > 1:
                case_id, rank = f"{case_id}-r{record.rank}", record.rank
            warnings = [*leaves["warnings"], *([EXCLUDED] if verdict == FAIL else [])]
            marked = {"health_verdict": verdict, "warnings": warnings, "case_id": case_id}
            result = CaseResult.from_leaves({**leaves, **marked, "rank": rank})
            writer.append(result, samples)
            index += 1
    if outcome.job_outcome is not None:
        result = outcome.job_outcome.result
        label = f"{index:04d}-allreduce-{result.identity.dtype}-"
        label += str(result.identity.params["shape_label"])
        verdict = worst(outcome.by_rank().values())
        result = result.updated(health_verdict=verdict, case_id=safe_name(label))
        writer.append(result, outcome.job_outcome.sample_columns())
    write_rows(writer, outcome)


def write_rows(writer: RunWriter | Any, outcome: Outcome) -> None:
    """health.jsonl and run.json["health"]."""
    write_health(writer.run_dir, [row.as_dict() for row in outcome.rows])
    writer.update_meta(health=outcome.meta())


@dataclass
class Marks:
    """The nightly suite's view of its pre-flight: which rank's device failed."""

    by_rank: dict[str, str]
    rank: int
    line: str = ""  # the summary line rank 0 prints under the run's table

    @property
    def failed(self) -> bool:
        return FAIL in self.by_rank.values()

    def mark(self, result: CaseResult, collective: bool) -> CaseResult:
        """The result with the device's verdict; a FAILed device's result is marked so that
        no baseline takes it (it is kept, not dropped)."""
        if collective:
            verdict = worst(self.by_rank.values())
        else:
            verdict = self.by_rank.get(str(self.rank), PASS)
        extra = [EXCLUDED] if verdict == FAIL else []
        warnings = [*result.identity.warnings, *extra]
        return result.updated(health_verdict=verdict, warnings=warnings)


def preflight_settings(settings: ProbeSettings, backend: Backend, root: Path) -> ProbeSettings:
    """The pre-flight probes at the sizes of this SKU's blessed health baseline (a site may
    have blessed `flopwatt health --shape ...`), else at the defaults: a check of another
    size has nothing to compare with. An unreadable record leaves the defaults."""
    import json

    from bench.commands.health.baseline import SUITE
    from bench.commands.health.probe import blessed_sizes
    from bench.results.blessed.paths import sku_key

    path = root / sku_key(backend.facts().identity) / SUITE / "run.json"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["health_settings"]
        return blessed_sizes(settings, recorded)
    except (OSError, ValueError, KeyError, TypeError):
        return settings


def preflight(job: Job, backend: Backend, writer: Any, baselines: Path | None) -> Marks:
    """The nightly suite's health check, before its cases: the rows go to the run's
    health.jsonl, every rank learns its device's verdict to mark its results with."""
    from bench.commands.health.noise import spread_floor
    from bench.commands.health.probe import default_settings
    from bench.commands.health.render import summary_line

    thresholds = Thresholds(spread_floor=spread_floor(backend.kind))
    options = Options(default_settings(backend.kind), thresholds)
    if baselines is not None:
        options.baselines_root = baselines
    options.settings = preflight_settings(options.settings, backend, options.baselines_root)
    outcome = check_job(job, backend, options)
    by_rank, line = None, ""
    if outcome is not None:
        write_rows(writer, outcome)
        writer.update_meta(health_settings=asdict(options.settings))
        by_rank = outcome.by_rank()
        line = summary_line(asdict(outcome.summary)) + " (rows in health.jsonl)"
        if FAIL in by_rank.values():
            line += "; results of a device that FAILed are marked and kept out of baselines"
    by_rank = job.share("health/verdicts", by_rank, options.limit_s)
    return Marks(by_rank, job.ctx.rank, line)
