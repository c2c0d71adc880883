"""Vendors' and others' published "achievable" matmul rates: reference notes, never denominators.

A published achievable rate was measured on someone else's board, software and shapes; it
tells a reader what the best-known tuning reaches, not what this device should have reached,
so the report prints it beside the table and never divides by it. Matched to a run by the
peak table's SKU.
"""

from __future__ import annotations

from dataclasses import dataclass

AMD_MAF = (
    "AMD ROCm blog 'Measuring Max-Achievable FLOPs, part 2' (Feb 2025): hipBLASLt, "
    "median engine clock during the run"
)
MAMF = "ml-engineering MAMF finder table (Stas Bekman): best median over a shape search"


@dataclass(frozen=True)
class Published:
    sku: str  # the peak table's SKU
    dtype: str
    ops_per_s: float
    what: str  # the conditions
    source: str


PUBLISHED: tuple[Published, ...] = (
    Published("Instinct MI300X", "bf16", 708e12, "AMD MAF at 1207 MHz median", AMD_MAF),
    Published("Instinct MI300X", "fp16", 654e12, "AMD MAF at 1115 MHz median", AMD_MAF),
    Published("Instinct MI300X", "fp8", 1273e12, "AMD MAF at 1230 MHz median", AMD_MAF),
    Published("Instinct MI300X", "bf16", 668.4e12, "MAMF, ROCm 6.3, TunableOp on", MAMF),
    Published("Instinct MI325X", "bf16", 843e12, "AMD MAF at 1447 MHz median", AMD_MAF),
    Published("Instinct MI325X", "fp16", 794e12, "AMD MAF at 1354 MHz median", AMD_MAF),
    Published("Instinct MI325X", "fp8", 1519e12, "AMD MAF at 1464 MHz median", AMD_MAF),
    Published("Instinct MI325X", "bf16", 784.9e12, "MAMF", MAMF),
    Published("Instinct MI355X", "bf16", 1565e12, "MAMF", MAMF),
    Published("H100 SXM5 80GB", "bf16", 794.5e12, "MAMF", MAMF),
)


def published_for(sku: str | None, dtypes: set[str]) -> list[Published]:
    """The published figures of this SKU (peak-table name) for these dtypes."""
    return [p for p in PUBLISHED if p.sku == sku and p.dtype in dtypes]
