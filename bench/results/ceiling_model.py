"""What a measured ceiling is, as plain data that round-trips through JSON.

A matmul ceiling per dtype is the best *median* rate over the shapes searched, because the
median is the statistic every case reports (`achieved_ops_per_s`): a case and its ceiling
are then compared like with like. The mean and max (MAMF's other two statistics) are kept
for every shape, with the geometric mean over all shapes, so nothing the search saw is lost.
The memory ceiling is the bandwidth of a device-to-device copy and of a read-only reduction
over buffers far larger than the last-level cache: the measured memory roof of a roofline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, int, int]


def shape_label(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def parse_label(text: str) -> Shape:
    """(m, n, k) from "MxNxK"; ValueError otherwise (a stored file may be corrupt)."""
    parts = str(text).split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"{text!r} is not MxNxK")
    m, n, k = (int(p) for p in parts)
    return m, n, k


def _positive(data: dict[str, Any], key: str) -> float:
    value = data.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{key} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{key} = {value!r} is not a positive finite number")
    return float(value)


@dataclass(frozen=True)
class ShapeStats:
    """One shape's rates from one measurement: ops / mean, / median and / min time."""

    shape: Shape
    mean_ops_per_s: float
    median_ops_per_s: float
    max_ops_per_s: float  # from the fastest sample (MAMF's "max")
    n_samples: int
    rel_noise: float
    stop_reason: str

    @property
    def label(self) -> str:
        return shape_label(self.shape)

    def as_dict(self) -> dict[str, Any]:
        return {
            "shape": self.label,
            "mean_ops_per_s": self.mean_ops_per_s,
            "median_ops_per_s": self.median_ops_per_s,
            "max_ops_per_s": self.max_ops_per_s,
            "n_samples": self.n_samples,
            "rel_noise": self.rel_noise,
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeStats:
        return cls(
            shape=parse_label(data["shape"]),
            mean_ops_per_s=_positive(data, "mean_ops_per_s"),
            median_ops_per_s=_positive(data, "median_ops_per_s"),
            max_ops_per_s=_positive(data, "max_ops_per_s"),
            n_samples=int(data.get("n_samples") or 0),
            rel_noise=float(data.get("rel_noise") or 0.0),
            stop_reason=str(data.get("stop_reason") or ""),
        )


def geomean(values: list[float]) -> float | None:
    positive = [v for v in values if v > 0]
    if not positive:
        return None
    return math.exp(math.fsum(math.log(v) for v in positive) / len(positive))


@dataclass(frozen=True)
class DtypeCeiling:
    """The best sustained matmul rate of one dtype on this device, and how it was found."""

    dtype: str
    best: ShapeStats  # highest median rate: the ceiling
    best_mean_shape: str
    best_max_shape: str
    geomean_ops_per_s: float  # geometric mean of the median rates of every shape tried
    points: tuple[ShapeStats, ...]
    preset: str  # quick | thorough
    budget_s: float
    search_s: float
    stop_reason: str  # budget | exhausted | interrupted
    timing_mode: str  # always "cold": flushed cache, output re-randomised, per-call marks
    measured_at: str
    correctness: dict[str, Any] | None = None  # the best shape re-checked against fp64
    spec_peak_ops_per_s: float | None = None  # the datasheet/derived peak it is a fraction of
    spec_peak_source: str | None = None

    @property
    def frac_of_spec(self) -> float | None:
        if not self.spec_peak_ops_per_s:
            return None
        return self.ops_per_s / self.spec_peak_ops_per_s

    @property
    def ops_per_s(self) -> float:
        return self.best.median_ops_per_s

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == "interrupted"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ops_per_s": self.ops_per_s,
            "statistic": "median",
            "shape": self.best.label,
            "best": self.best.as_dict(),
            "best_mean_shape": self.best_mean_shape,
            "best_max_shape": self.best_max_shape,
            "geomean_ops_per_s": self.geomean_ops_per_s,
            "n_shapes": len(self.points),
            "preset": self.preset,
            "budget_s": self.budget_s,
            "search_s": self.search_s,
            "stop_reason": self.stop_reason,
            "interrupted": self.interrupted,
            "timing_mode": self.timing_mode,
            "measured_at": self.measured_at,
            "correctness": self.correctness,
            "spec_peak_ops_per_s": self.spec_peak_ops_per_s,
            "spec_peak_source": self.spec_peak_source,
            "frac_of_spec": self.frac_of_spec,
            "points": [p.as_dict() for p in self.points],
        }

    @classmethod
    def from_dict(cls, dtype: str, data: dict[str, Any]) -> DtypeCeiling:
        best = ShapeStats.from_dict(data["best"])
        if abs(_positive(data, "ops_per_s") - best.median_ops_per_s) > 1e-9 * best.median_ops_per_s:
            raise ValueError("ops_per_s differs from the best shape's median rate")
        return cls(
            dtype=dtype,
            best=best,
            best_mean_shape=str(data.get("best_mean_shape") or best.label),
            best_max_shape=str(data.get("best_max_shape") or best.label),
            geomean_ops_per_s=_positive(data, "geomean_ops_per_s"),
            points=tuple(ShapeStats.from_dict(p) for p in data.get("points") or [data["best"]]),
            preset=str(data.get("preset")),
            budget_s=float(data.get("budget_s") or 0.0),
            search_s=float(data.get("search_s") or 0.0),
            stop_reason=str(data.get("stop_reason")),
            timing_mode=str(data.get("timing_mode") or "cold"),
            measured_at=str(data.get("measured_at")),
            correctness=data.get("correctness"),
            spec_peak_ops_per_s=data.get("spec_peak_ops_per_s"),
            spec_peak_source=data.get("spec_peak_source"),
        )


@dataclass(frozen=True)
class Bandwidth:
    """One memory kernel's bandwidth over a buffer far larger than the last-level cache."""

    kernel: str  # copy | read
    bytes_per_s: float  # bytes per call / median time
    max_bytes_per_s: float  # from the fastest sample
    buffer_bytes: int
    bytes_per_call: int
    convention: str
    n_samples: int
    rel_noise: float
    frac_of_spec: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bandwidth:
        return cls(
            kernel=str(data["kernel"]),
            bytes_per_s=_positive(data, "bytes_per_s"),
            max_bytes_per_s=_positive(data, "max_bytes_per_s"),
            buffer_bytes=int(data["buffer_bytes"]),
            bytes_per_call=int(data["bytes_per_call"]),
            convention=str(data.get("convention")),
            n_samples=int(data.get("n_samples") or 0),
            rel_noise=float(data.get("rel_noise") or 0.0),
            frac_of_spec=data.get("frac_of_spec"),
        )


@dataclass(frozen=True)
class MemoryCeiling:
    """Copy and read bandwidth beside the spec bandwidth they are a fraction of."""

    kernels: dict[str, Bandwidth]
    spec_bytes_per_s: float | None
    spec_detail: str  # the peak-table row, or why there is no spec bandwidth
    cache_bytes: int | None
    cache_source: str
    measured_at: str

    @property
    def roof_bytes_per_s(self) -> float:
        """The memory roof of a roofline: the faster of the two kernels."""
        return max(b.bytes_per_s for b in self.kernels.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "roof_bytes_per_s": self.roof_bytes_per_s,
            "kernels": {name: b.as_dict() for name, b in self.kernels.items()},
            "spec_bytes_per_s": self.spec_bytes_per_s,
            "spec_detail": self.spec_detail,
            "cache_bytes": self.cache_bytes,
            "cache_source": self.cache_source,
            "measured_at": self.measured_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryCeiling:
        kernels = {name: Bandwidth.from_dict(b) for name, b in dict(data["kernels"]).items()}
        if not kernels:
            raise ValueError("memory ceiling without kernels")
        return cls(
            kernels=kernels,
            spec_bytes_per_s=data.get("spec_bytes_per_s"),
            spec_detail=str(data.get("spec_detail")),
            cache_bytes=data.get("cache_bytes"),
            cache_source=str(data.get("cache_source")),
            measured_at=str(data.get("measured_at")),
        )


@dataclass(frozen=True)
class MeasuredPeak:
    """The denominator of frac_of_measured_peak, with where it came from or why it is None."""

    ops_per_s: float | None
    source: str | None  # "this run" | "stored" | None
    detail: str  # provenance (file, shape, date) or the reason there is none
    timing_mode: str | None = None  # how the ceiling was timed, to compare like with like


@dataclass
class Ceiling:
    """Everything ceiling.json holds for one SKU: matmul per dtype, memory, environment."""

    sku: str
    device: dict[str, Any]
    peak_table_sku: str | None
    method_version: int
    measured_at: str
    command: str
    environment: dict[str, Any]
    software: dict[str, Any]  # the versions a merge must agree on
    matmul: dict[str, DtypeCeiling] = field(default_factory=dict)
    memory: MemoryCeiling | None = None
    warmup: dict[str, Any] | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # dtype -> why it was not measured

    def lookup(self, math_mode: str, source: str, where: str) -> MeasuredPeak:
        entry = self.matmul.get(math_mode)
        if entry is None:
            why = self.skipped.get(math_mode)
            reason = f"no measured {math_mode} ceiling in {where}" + (
                f" ({why})" if why else f"; `flopwatt ceiling --dtype {math_mode}` measures it"
            )
            return MeasuredPeak(None, None, reason)
        detail = (
            f"{where}: best median of {len(entry.points)} matmul shapes at {entry.best.label}, "
            f"{entry.preset} search, measured {entry.measured_at}"
        )
        if entry.interrupted:
            detail += " (search interrupted: best found so far)"
        return MeasuredPeak(entry.ops_per_s, source, detail, entry.timing_mode)
