"""Dense spec peaks: the denominator of every "fraction of peak" the harness reports.

A peak is only as good as its provenance, so every `Peak` carries where it came from: the
datasheet row of this exact SKU (`bench/peaks/peaks.csv`, read and matched by exact name in
bench/peaks/table.py), a formula from the device's own SM count and clock (`derived`), the
user (`--peak`), or `None` with the reason it is unknown. Never falls back to another SKU's
numbers.

Pure data and lookup: no torch, no NVML, no I/O at import time (the CSV is read on first use).
Rates per clock and the tensor-clock factors live in bench/peaks/arch_rates.py.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bench.devices.base import CpuIdentity, GpuIdentity
from bench.peaks.arch_rates import AMD_RATES, NVIDIA_RATES, TENSOR_CLOCK_FACTOR
from bench.peaks.table import MATH_MODES, PeakRow, find_row, find_row_vf

TENSOR_MODES = frozenset({"tf32", "bf16", "fp16", "fp8", "int8"})
"""Modes that run on tensor cores / matrix units (where Hopper/Blackwell use a lower clock)."""


@dataclass(frozen=True)
class Peak:
    """A peak rate with its provenance, so every fraction of peak can say what it divided by."""

    ops_per_s: float | None
    source: str | None  # "datasheet" | "derived" | "user" | None (unknown)
    detail: str  # provenance (sku + URL, or the formula with every factor), or why it is None
    spec_clock_hz: float | None  # the clock the peak assumes, for clock-adjusted fractions


def _gcn_base(gcn_arch: str | None) -> str | None:
    """'gfx942:sramecc+:xnack-' -> 'gfx942'; the feature suffix does not change the rates."""
    if not gcn_arch:
        return None
    return gcn_arch.split(":")[0].strip().casefold() or None


def _first_url(source: str) -> str:
    match = re.search(r"https?://\S+", source)
    return match.group(0) if match else source.split(" ; ")[0]


def _is_tensor_clock_arch(vendor: str, cc: str | None) -> bool:
    """NVIDIA Hopper (9.0) and Blackwell (10.x) quote tensor peaks at a lower tensor clock."""
    if vendor.casefold() != "nvidia" or cc is None:
        return False
    return cc == "9.0" or cc.startswith("10.")


def _cc_key(cc: str | None) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d+)\.(\d+)", (cc or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _row_rate(row: PeakRow, mode: str) -> int | None:
    """Per-SM (per-CU) rate of the row's architecture for mode, pro tier; None if not known."""
    if row.vendor.casefold() == "amd":
        return AMD_RATES.get(_gcn_base(row.gcn_arch) or "", {}).get(mode)
    key = _cc_key(row.compute_capability)
    return NVIDIA_RATES.get(key, {}).get(mode, (None, None))[0] if key else None


def _row_spec_clock(row: PeakRow, mode: str, peak: float) -> float | None:
    """The clock the row's peak assumes: boost, or the implied tensor clock on Hopper/Blackwell."""
    if mode not in TENSOR_MODES or not _is_tensor_clock_arch(row.vendor, row.compute_capability):
        return row.boost_clock_hz
    rate = _row_rate(row, mode)
    if rate is None or row.sm_count is None:
        return None
    return peak / (row.sm_count * rate)


def _datasheet_peak(gpu: GpuIdentity, row: PeakRow, mode: str) -> Peak:
    notes = [f"{row.sku}: {_first_url(row.source)}"]
    value = row.ops_per_s.get(mode)
    if mode == "fp64" and row.fp64_tensor_ops_per_s is not None:
        notes.append(
            f"fp64 uses the FP64 tensor-core rate (DGEMM runs on it); vector rate {_fmt_ops(value)}"
        )
        value = row.fp64_tensor_ops_per_s
    if value is None:
        return Peak(None, None, f"{row.sku} has no {mode} rate in the datasheet", None)
    spec_clock = _row_spec_clock(row, mode, value)
    if row.source.upper().startswith("DERIVED"):
        notes.append("the row itself is derived (no vendor datasheet)")
    value, note = _partition_scale(gpu, row, value)
    if note:
        notes.append(note)
    return Peak(value, "datasheet", " ; ".join(notes), spec_clock)


def _partition_scale(gpu: GpuIdentity, row: PeakRow, value: float) -> tuple[float, str]:
    """Scale a full-part peak to a MIG slice or partition by its share of SMs (or CUs)."""
    unit = "CUs" if row.vendor.casefold() == "amd" else "SMs"
    if row.sm_count is None:
        return value, f"the table lists no {unit} for {row.sku}: {gpu.sm_count} not checked"
    if 0 < gpu.sm_count < row.sm_count:
        note = (
            f"scaled by {gpu.sm_count}/{row.sm_count} {unit} "
            f"(MIG slice or partition: the device has fewer {unit} than the full part)"
        )
        return value * gpu.sm_count / row.sm_count, note
    if gpu.sm_count > row.sm_count:
        note = (
            f"device reports {gpu.sm_count} {unit}, more than the table's {row.sm_count}: "
            "not scaled; check the SKU"
        )
        return value, note
    return value, ""


def _fmt_ops(value: float | None) -> str:
    return "none" if value is None else f"{value / 1e12:g} TFLOP/s"


def _tier(name: str) -> str:
    """GeForce parts run FP32-accumulate tensor math at half rate (NVIDIA whitepapers)."""
    return "geforce" if "geforce" in name.casefold() else "pro"


def _unknown_arch(gpu: GpuIdentity, what: str) -> Peak:
    reason = f"unknown SKU {gpu.name!r} and no per-SM rate table for {what}: peak unknown"
    warnings.warn(f"flopwatt peaks: {reason}", UserWarning, stacklevel=4)
    return Peak(None, None, reason, None)


@dataclass(frozen=True)
class _ArchRates:
    """Per-clock rates of one architecture and tier, with the words the detail needs."""

    label: str  # "sm_90", "gfx942"
    unit: str  # "SM" | "CU"
    clock_name: str  # where the max clock comes from
    tier: str  # "pro" | "geforce"
    rates: Mapping[str, int | None]  # absent: no native path; None: rate not known
    half_rate: frozenset[str]  # modes this tier runs at half the pro rate
    tensor_clock_factor: float


def _arch_rates(gpu: GpuIdentity) -> _ArchRates | str:
    """The rate table for this GPU's architecture, or a description of what is unknown."""
    vendor = gpu.vendor.casefold()
    if vendor == "amd":
        arch = _gcn_base(gpu.gcn_arch)
        if arch is None or arch not in AMD_RATES:
            return f"AMD gcn_arch {gpu.gcn_arch!r}"
        rates = AMD_RATES[arch]
        return _ArchRates(arch, "CU", "max engine clock", "pro", rates, frozenset(), 1.0)
    if vendor != "nvidia":
        return f"vendor {gpu.vendor!r}"
    key = _cc_key(gpu.compute_capability)
    if key is None or key not in NVIDIA_RATES:
        return f"NVIDIA compute capability {gpu.compute_capability!r}"
    tier = _tier(gpu.name)
    pairs = NVIDIA_RATES[key]
    return _ArchRates(
        label=f"sm_{key[0]}{key[1]}",
        unit="SM",
        clock_name="NVML max SM clock",
        tier=tier,
        rates={m: pair[1 if tier == "geforce" else 0] for m, pair in pairs.items()},
        half_rate=frozenset(m for m, (pro, geforce) in pairs.items() if pro != geforce),
        tensor_clock_factor=TENSOR_CLOCK_FACTOR.get(key, 1.0),
    )


def _derived_gpu_peak(gpu: GpuIdentity, mode: str) -> Peak:
    """SMs x max SM clock x per-SM rate (x tensor-clock factor), every factor in the detail."""
    arch = _arch_rates(gpu)
    if isinstance(arch, str):
        return _unknown_arch(gpu, arch)
    rate_mode = "fp64_tensor" if mode == "fp64" and "fp64_tensor" in arch.rates else mode
    if rate_mode not in arch.rates:
        return Peak(None, None, f"{arch.label} has no native {mode} path; peak undefined", None)
    rate = arch.rates[rate_mode]
    if rate is None:
        reason = f"no known {mode} rate per {arch.unit} for {arch.label} {arch.tier} parts"
        return Peak(None, None, reason, None)
    if gpu.max_sm_clock_hz is None:
        reason = f"unknown SKU {gpu.name!r} and no max SM clock to derive from"
        return Peak(None, None, reason, None)
    if gpu.sm_count < 1:
        return Peak(None, None, f"device reports {gpu.sm_count} SMs; cannot derive", None)

    factor = arch.tensor_clock_factor if mode in TENSOR_MODES else 1.0
    spec_clock = gpu.max_sm_clock_hz * factor
    return Peak(
        gpu.sm_count * spec_clock * rate,
        "derived",
        _derived_detail(gpu, arch, mode, rate_mode, rate, factor),
        spec_clock,
    )


def _derived_detail(
    gpu: GpuIdentity, arch: _ArchRates, mode: str, rate_mode: str, rate: int, factor: float
) -> str:
    what = "OP" if mode == "int8" else "FLOP"
    mode_label = "fp64 tensor" if rate_mode == "fp64_tensor" else mode
    tier_note = ""
    if arch.tier == "geforce" and rate_mode in arch.half_rate:
        tier_note = ", GeForce tier: half-rate FP32 accumulate"
    clock = gpu.max_sm_clock_hz or 0.0
    detail = (
        f"derived: {gpu.sm_count} {arch.unit}s x {clock / 1e9:g} GHz ({arch.clock_name}) x "
        f"{rate} {what}/clk/{arch.unit} ({arch.label} {mode_label}{tier_note})"
    )
    if factor != 1.0:
        detail += f" x {factor:g} tensor-clock factor"
    return detail


def gpu_peak(gpu: GpuIdentity, math_mode: str, table: Sequence[PeakRow] | None = None) -> Peak:
    """Dense peak for this GPU: its datasheet row if the exact SKU is known, else derived."""
    _check_mode(math_mode)
    row, vf = find_row_vf(gpu.name, gpu.compute_capability, table)
    conflict = _row_conflict(gpu, row) if row is not None else None
    if row is not None and conflict is None:
        peak = _datasheet_peak(gpu, row, math_mode)
        if vf:
            note = f"{gpu.name}: an SR-IOV virtual function, matched to {row.sku}"
            peak = replace(peak, detail=f"{note} ; {peak.detail}")
        return peak
    peak = _derived_gpu_peak(gpu, math_mode)
    if conflict is not None:
        peak = replace(peak, detail=f"{conflict}; not used ; {peak.detail}")
    return peak


def _row_conflict(gpu: GpuIdentity, row: PeakRow) -> str | None:
    """Why a name match is a different chip, or None. AMD rows are validated by gfx arch and
    by CU count: a device with more CUs than the full part is not that part (a partition has
    fewer, and is scaled)."""
    device, listed = _gcn_base(gpu.gcn_arch), _gcn_base(row.gcn_arch)
    if device is not None and listed is not None and device != listed:
        return f"name matches {row.sku} but the device is {device}, the row {listed}"
    amd = row.vendor.casefold() == "amd"
    if amd and row.sm_count is not None and gpu.sm_count > row.sm_count:
        return (
            f"name matches {row.sku} but the device has {gpu.sm_count} CUs, the part {row.sm_count}"
        )
    return None


# ---------------------------------------------------------------------------------------------
# CPU

_X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
_ARM = frozenset({"aarch64", "arm64", "armv8l"})


def _cpu_rates(cpu: CpuIdentity) -> tuple[str, dict[str, tuple[int, str]]]:
    """(isa name, mode -> (FLOP/cycle/core, what unit)) from the CPU's feature flags."""
    arch, flags = cpu.arch.casefold(), cpu.flags
    rates: dict[str, tuple[int, str]] = {}
    if arch in _X86 and "avx512f" in flags:
        isa = "AVX-512"
        rates["fp32"] = (64, "AVX-512 FMA fp32, 2 FMA pipes assumed")
        rates["fp64"] = (32, "AVX-512 FMA fp64, 2 FMA pipes assumed")
        if "amx_bf16" in flags:
            rates["bf16"] = (1024, "AMX-BF16 tiles")
        elif "avx512_bf16" in flags:
            rates["bf16"] = (128, "AVX512-BF16 dot product, 2 FMA pipes assumed")
        if "avx512_fp16" in flags:
            rates["fp16"] = (128, "AVX512-FP16 FMA, 2 FMA pipes assumed")
        if "amx_int8" in flags:
            rates["int8"] = (2048, "AMX-INT8 tiles")
        elif "avx512_vnni" in flags:
            rates["int8"] = (256, "AVX512-VNNI, 2 FMA pipes assumed")
        elif "avx_vnni" in flags:
            rates["int8"] = (128, "AVX-VNNI, 2 FMA pipes assumed")
    elif arch in _X86 and "avx2" in flags and "fma" in flags:
        isa = "AVX2"
        rates["fp32"] = (32, "AVX2 FMA fp32, 2 FMA pipes assumed")
        rates["fp64"] = (16, "AVX2 FMA fp64, 2 FMA pipes assumed")
        if "avx_vnni" in flags:
            rates["int8"] = (128, "AVX-VNNI, 2 FMA pipes assumed")
    elif arch in _ARM and "asimd" in flags:
        isa = "NEON"
        rates["fp32"] = (16, "NEON FMA fp32, 2 FMA pipes assumed")
        rates["fp64"] = (8, "NEON FMA fp64, 2 FMA pipes assumed")
    else:
        isa = f"{cpu.arch} without AVX2+FMA, AVX-512 or NEON"
    return isa, rates


def cpu_peak(cpu: CpuIdentity, math_mode: str) -> Peak:
    """Derived CPU peak: cores used x max clock x SIMD FLOPs per cycle per core."""
    _check_mode(math_mode)
    isa, rates = _cpu_rates(cpu)
    if math_mode not in rates:
        reason = f"no native {math_mode} unit on this CPU ({isa}); peak undefined"
        return Peak(None, None, reason, None)
    if cpu.max_clock_hz is None:
        return Peak(None, None, f"CPU max clock unknown: {cpu.clock_source}", None)
    if cpu.threads < 1:
        return Peak(None, None, f"thread count {cpu.threads} is not positive", None)
    cores = min(cpu.threads, cpu.physical_cores or cpu.threads)
    per_cycle, unit = rates[math_mode]
    what = "OP" if math_mode == "int8" else "FLOP"
    detail = (
        f"derived: {cores} cores x {cpu.max_clock_hz / 1e9:g} GHz ({cpu.clock_source}) x "
        f"{per_cycle} {what}/cycle ({unit})"
    )
    if cpu.physical_cores is None:
        detail += f"; physical core count unknown, assumed one core per thread ({cpu.threads})"
    return Peak(cores * cpu.max_clock_hz * per_cycle, "derived", detail, cpu.max_clock_hz)


# ---------------------------------------------------------------------------------------------
# Overrides and dispatch

_OVERRIDE_FORM = "expected MODE=OPS_PER_S, e.g. bf16=989e12"


def _check_mode(math_mode: str) -> None:
    if math_mode not in MATH_MODES:
        raise ValueError(f"unknown math mode {math_mode!r}; valid: {', '.join(MATH_MODES)}")


def parse_peak_override(text: str) -> tuple[str, float]:
    """'bf16=989e12' -> ('bf16', 9.89e14); a one-line ValueError that says what is wrong."""
    if "=" not in text:
        raise ValueError(f"--peak {text!r}: missing '='; {_OVERRIDE_FORM}")
    mode_text, _, value_text = text.partition("=")
    mode = mode_text.strip().casefold()
    if mode not in MATH_MODES:
        raise ValueError(
            f"--peak {text!r}: unknown math mode {mode_text.strip()!r} "
            f"(valid: {', '.join(MATH_MODES)}); {_OVERRIDE_FORM}"
        )
    try:
        value = float(value_text.strip())
    except ValueError:
        raise ValueError(
            f"--peak {text!r}: {value_text.strip()!r} is not a number; {_OVERRIDE_FORM}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"--peak {text!r}: the value must be finite; {_OVERRIDE_FORM}")
    if value <= 0:
        raise ValueError(f"--peak {text!r}: the value must be positive; {_OVERRIDE_FORM}")
    return mode, value


def resolve_peak(
    device: GpuIdentity | CpuIdentity,
    math_mode: str,
    overrides: Mapping[str, float] | None = None,
    table: Sequence[PeakRow] | None = None,
) -> Peak:
    """The peak a result divides by: the user's override for this mode wins, else the lookup."""
    _check_mode(math_mode)
    for mode, value in (overrides or {}).items():
        _check_mode(mode)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"peak override {mode}={value!r} must be a positive finite number")
    if overrides and math_mode in overrides:
        value = float(overrides[math_mode])
        return Peak(value, "user", f"--peak {math_mode}={value:g}", None)
    if isinstance(device, CpuIdentity):
        return cpu_peak(device, math_mode)
    return gpu_peak(device, math_mode, table)


@dataclass(frozen=True)
class LinkPeak:
    """The unidirectional GPU-to-GPU link peak that busbw is compared with, or why unknown."""

    bytes_per_s: float | None
    source: str | None  # "datasheet" | None
    detail: str


def link_peak(
    device: GpuIdentity | CpuIdentity, table: Sequence[PeakRow] | None = None
) -> LinkPeak:
    """Half the bidirectional interconnect figure of the device's table row (nccl-tests' busbw
    is unidirectional); None with the reason on a CPU or an unknown SKU."""
    if isinstance(device, CpuIdentity):
        return LinkPeak(None, None, "a CPU has no GPU link; gloo runs over the host")
    row = find_row(device.name, device.compute_capability, table)
    if row is None or row.link_bidir_bytes_per_s is None:
        return LinkPeak(None, None, f"{device.name} has no link bandwidth in the peak table")
    uni = row.link_bidir_bytes_per_s / 2
    return LinkPeak(
        uni,
        "datasheet",
        f"{row.sku}: {row.link_bidir_bytes_per_s / 1e9:g} GB/s "
        "bidirectional / 2; busbw can exceed it under NVLink SHARP",
    )
