"""The peak table: one row per SKU in bench/peaks/peaks.csv, read into SI units, and the
exact-name lookup of a device's row.

Lookup is by exact device name and compute capability: substring matching has put A100
numbers on A10s and A10 numbers on A10Gs in other tools. Two matching rows are an error,
never a guess. No I/O at import time: the packaged CSV is read on first use, once.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from bench.devices.base import CpuIdentity, GpuIdentity

MATH_MODES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")
"""Math modes a peak exists for; fp8 = e4m3 with fp32 accumulation, int8 counts ops."""

_MODE_COLUMNS = {
    "fp64": "fp64_tflops",
    "fp32": "fp32_tflops",
    "tf32": "tf32_tflops",
    "bf16": "bf16_tflops",
    "fp16": "fp16_tflops",
    "fp8": "fp8_tflops",
    "int8": "int8_tops",
}
_CSV_COLUMNS = (
    "vendor",
    "sku",
    "match_names",
    "arch",
    "compute_capability",
    "gcn_arch",
    "sm_count",
    "boost_clock_mhz",
    "fp64_tflops",
    "fp64_tensor_tflops",
    "fp32_tflops",
    "tf32_tflops",
    "bf16_tflops",
    "fp16_tflops",
    "fp8_tflops",
    "int8_tops",
    "mem_gb",
    "mem_bw_gbs",
    "tdp_w",
    "link_bidir_gbs",
    "source",
)


@dataclass(frozen=True)
class PeakRow:
    """One SKU as the runtime names it, in SI units (ops/s, bytes/s, bytes, W)."""

    vendor: str
    sku: str
    match_names: tuple[str, ...]
    arch: str
    compute_capability: str | None
    gcn_arch: str | None
    sm_count: int | None
    boost_clock_hz: float | None
    ops_per_s: Mapping[str, float]  # math mode -> dense ops/s; modes without a rate are absent
    fp64_tensor_ops_per_s: float | None  # FP64 tensor-core / matrix rate (what DGEMM uses)
    mem_bytes_per_s: float | None
    mem_bytes: float | None
    tdp_w: float | None
    link_bidir_bytes_per_s: float | None
    source: str


class AmbiguousPeakError(ValueError):
    """Two rows match one device: the table is wrong, and guessing would hide it."""


# ---------------------------------------------------------------------------------------------
# Loading


def _scaled(text: str, exponent: int, column: str, line: int) -> float | None:
    """Parse a decimal cell and scale it by 10**exponent; empty means unknown (None).

    Scaling by appending the exponent to the text keeps 66.9 TFLOPS exactly equal to 66.9e12.
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
        scaled = float(f"{text}e{exponent}")
    except ValueError:
        raise ValueError(f"peaks table line {line}: {column}={text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"peaks table line {line}: {column}={text!r} must be positive")
    return scaled


def _optional_int(text: str, column: str, line: int) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"peaks table line {line}: {column}={text!r} is not a positive integer")
    return int(text)


def _parse_row(raw: Mapping[str, str], line: int) -> PeakRow:
    """One CSV record -> PeakRow, converting TFLOPS/GB/GB/s to SI units."""
    ops = {}
    for mode, column in _MODE_COLUMNS.items():
        value = _scaled(raw[column], 12, column, line)
        if value is not None:
            ops[mode] = value
    boost_mhz = _scaled(raw["boost_clock_mhz"], 6, "boost_clock_mhz", line)
    return PeakRow(
        vendor=raw["vendor"].strip(),
        sku=raw["sku"].strip(),
        match_names=tuple(n.strip() for n in raw["match_names"].split("|") if n.strip()),
        arch=raw["arch"].strip(),
        compute_capability=raw["compute_capability"].strip() or None,
        gcn_arch=raw["gcn_arch"].strip() or None,
        sm_count=_optional_int(raw["sm_count"], "sm_count", line),
        boost_clock_hz=boost_mhz,
        ops_per_s=MappingProxyType(ops),
        fp64_tensor_ops_per_s=_scaled(raw["fp64_tensor_tflops"], 12, "fp64_tensor_tflops", line),
        mem_bytes_per_s=_scaled(raw["mem_bw_gbs"], 9, "mem_bw_gbs", line),
        mem_bytes=_scaled(raw["mem_gb"], 9, "mem_gb", line),
        tdp_w=_scaled(raw["tdp_w"], 0, "tdp_w", line),
        link_bidir_bytes_per_s=_scaled(raw["link_bidir_gbs"], 9, "link_bidir_gbs", line),
        source=raw["source"].strip(),
    )


def _parse_table(text: str) -> tuple[PeakRow, ...]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _CSV_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"peaks table lacks columns: {', '.join(missing)}")
    # line 1 is the header, so the first record is on line 2
    return tuple(_parse_row(raw, line) for line, raw in enumerate(reader, start=2))


@functools.lru_cache(maxsize=1)
def _packaged_table() -> tuple[PeakRow, ...]:
    text = resources.files("bench.peaks").joinpath("peaks.csv").read_text(encoding="utf-8")
    return _parse_table(text)


def load_table(path: Path | None = None) -> tuple[PeakRow, ...]:
    """The peak table: the packaged bench/peaks/peaks.csv (read once, cached) or the CSV at path."""
    if path is None:
        return _packaged_table()
    return _parse_table(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Lookup


def _normalise_name(name: str) -> str:
    """Strip, collapse whitespace, casefold: drivers differ in case and spacing, not in words."""
    return " ".join(name.split()).casefold()


def _normalise_cc(cc: str | None) -> str | None:
    return (cc or "").strip() or None


def row_for(
    device: GpuIdentity | CpuIdentity, table: Sequence[PeakRow] | None = None
) -> tuple[PeakRow | None, str]:
    """The device's table row, or (None, why it has none): a CPU, an ambiguous or unknown name."""
    if isinstance(device, CpuIdentity):
        return None, "the peak table lists GPUs, not CPUs"
    try:
        row, _vf = find_row_vf(device.name, device.compute_capability, table)
    except AmbiguousPeakError as exc:
        return None, str(exc)
    if row is None:
        return None, f"{device.name} (cc {device.compute_capability}) is not in the peak table"
    return row, row.sku


VF_SUFFIX = " vf"  # normalised (casefolded), as find_row compares names


def find_row(
    name: str, compute_capability: str | None, table: Sequence[PeakRow] | None = None
) -> PeakRow | None:
    """The row whose match_names holds this exact (normalised) name and whose cc is equal.

    Exact matching only: "NVIDIA L4" must never find the L40S row, nor "NVIDIA T400" the T4;
    the one exception is an SR-IOV virtual function's " VF" suffix, tried without it.
    Raises AmbiguousPeakError when two rows match, since picking one would be a silent guess.
    """
    rows = load_table() if table is None else table
    key = _normalise_name(name)
    cc = _normalise_cc(compute_capability)
    hits = [
        row
        for row in rows
        if _normalise_cc(row.compute_capability) == cc
        and any(_normalise_name(n) == key for n in row.match_names)
    ]
    if len(hits) > 1:
        skus = ", ".join(repr(row.sku) for row in hits)
        raise AmbiguousPeakError(f"{name!r} (cc {cc}) matches several peak rows: {skus}")
    if not hits and key.endswith(VF_SUFFIX):
        # An SR-IOV guest's "AMD Instinct MI300X VF" is the whole physical GPU in a VM.
        return find_row(key[: -len(VF_SUFFIX)], compute_capability, rows)
    return hits[0] if hits else None


def find_row_vf(
    name: str, compute_capability: str | None, table: Sequence[PeakRow] | None
) -> tuple[PeakRow | None, bool]:
    """find_row, and whether the row was found only through the name's VF suffix."""
    row = find_row(name, compute_capability, table)
    exact = row is not None and any(
        _normalise_name(n) == _normalise_name(name) for n in row.match_names
    )
    return row, row is not None and not exact
