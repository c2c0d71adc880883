"""A health check row, the verdicts, and how rows become a device verdict and an exit code.

Kept free of torch and NVML so that the report, the CLI's rendering and the tests can use
it anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, WARN, FAIL, NA = "PASS", "WARN", "FAIL", "N/A"
# A comparison that could not be decided: the machine was busy or the difference is within
# the noise (bench.commands.health.noise). Not a fault, but not a PASS either: it says so.
INCONCLUSIVE = "INCONCLUSIVE"
VERDICTS = (PASS, WARN, FAIL, NA, INCONCLUSIVE)
_SEVERITY = {NA: 0, PASS: 0, INCONCLUSIVE: 1, WARN: 2, FAIL: 3}
EXIT_OK, EXIT_FAIL = 0, 1
JOB = "job"  # the device name of rows about the whole job (allreduce, GPU count)


@dataclass
class Check:
    """One row: what was checked on which device, what was seen and expected, and why the
    verdict is what it is. `value` is in SI units (`unit` says which) or plain text; None
    when it could not be read (the reason says why)."""

    device: str  # "cuda:0", "cpu", or JOB
    name: str
    value: Any
    expected: str
    verdict: str
    reason: str
    unit: str = ""
    rank: int | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def na(device: str, name: str, reason: str, expected: str = "") -> Check:
    """A check that could not run here: N/A with the reason, never a FAIL."""
    return Check(device, name, None, expected, NA, reason)


def worst(verdicts: Iterable[str]) -> str:
    """FAIL over WARN over INCONCLUSIVE over PASS; N/A counts as PASS (a check that cannot
    run is no fault)."""
    out = PASS
    for verdict in verdicts:
        if _SEVERITY[verdict] > _SEVERITY[out]:
            out = verdict
    return out


def device_verdicts(rows: Iterable[Check]) -> dict[str, str]:
    """The worst verdict of each device's rows, keyed "rank/device" where ranks exist."""
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(device_key(row.rank, row.device), []).append(row.verdict)
    return {key: worst(verdicts) for key, verdicts in out.items()}


def device_key(rank: int | None, device: str) -> str:
    return device if rank is None else f"rank {rank} {device}"


def counts(rows: Iterable[Check]) -> dict[str, int]:
    out = dict.fromkeys(VERDICTS, 0)
    for row in rows:
        out[row.verdict] += 1
    return out


def exit_code(rows: Iterable[Check]) -> int:
    """0 when nothing FAILed (PASS, WARN, INCONCLUSIVE and N/A), 1 when something did."""
    return EXIT_FAIL if any(row.verdict == FAIL for row in rows) else EXIT_OK


@dataclass(frozen=True)
class Thresholds:
    """When a number is a fault. Defaults: DCGM fails targeted stress under 0.95 of its
    target; GCM warns on temperature at 80-85 C."""

    peer_warn: float = 0.05  # WARN when more than this fraction below the peer median
    peer_fail: float = 0.10  # FAIL when more than this fraction below
    baseline_min: float = 0.95  # FAIL under this x the baseline's median, beyond the noise
    temp_warn_c: float = 80.0  # idle temperature that WARNs (FAIL at the slowdown threshold)
    noise_z: float = (
        3.0  # FAIL only this many spreads below the baseline (bench.commands.health.noise)
    )
    spread_floor: float = 0.005  # the least spread a side is taken to have (by device kind)

    def __post_init__(self) -> None:
        if not 0 <= self.peer_warn <= self.peer_fail < 1:
            raise ValueError("need 0 <= --peer-warn <= --peer-fail < 1")
        if not 0 < self.baseline_min <= 1:
            raise ValueError("--baseline-min must be in (0, 1]")
        if self.noise_z < 0 or self.spread_floor < 0:
            raise ValueError("the noise multiple and the spread floor must not be negative")


@dataclass
class Summary:
    """What run.json records about a health run: the verdicts and what they were judged by."""

    verdict: str
    counts: dict[str, int]
    by_device: dict[str, str]
    thresholds: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, rows: list[Check], thresholds: Thresholds, warnings: list[str]) -> Summary:
        return cls(
            verdict=worst(r.verdict for r in rows),
            counts=counts(rows),
            by_device=device_verdicts(rows),
            thresholds=asdict(thresholds),
            warnings=list(warnings),
        )


@dataclass
class DeviceRecord:
    """What one rank reports about its device. JSON-able: it travels to rank 0 through the
    job's store (bench.execution.job.Job.collect), never pickled."""

    rank: int
    host: str
    device: str  # the rank's device label, "cuda:0" or "cpu"
    sku: str  # bench.results.blessed.paths.sku_key: the baseline folder, and who counts as a peer
    versions: dict[str, Any]  # driver, VBIOS, libraries: uniformity and the canary's groups
    rows: list[Check] = field(default_factory=list)  # judged on the rank itself
    cases: list[dict[str, Any]] = field(default_factory=list)  # CaseResult.leaves() dicts
    samples: list[dict[str, list[Any]] | None] = field(default_factory=list)
    canary: dict[str, Any] = field(default_factory=dict)  # bench.commands.health.probe.Canary
    facts: dict[str, Any] = field(default_factory=dict)  # identity, uuid, bus id
    readings: dict[str, Any] = field(default_factory=dict)  # raw NVML readings per phase

    def case(self, kernel: str) -> dict[str, Any] | None:
        """This device's case of a kernel ("matmul", "memcopy"), if it ran."""
        return next((c for c in self.cases if c.get("kernel") == kernel), None)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [r.as_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceRecord:
        rows = [Check(**r) for r in data.get("rows", [])]
        return cls(**{**data, "rows": rows})
