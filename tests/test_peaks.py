"""Peak lookup against the real device-name strings (as drivers report them), traps included."""

from __future__ import annotations

import csv
import dataclasses
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.devices.base import CpuIdentity, GpuIdentity
from bench.peaks.lookup import Peak, gpu_peak, parse_peak_override, resolve_peak
from bench.peaks.table import MATH_MODES, AmbiguousPeakError, PeakRow, find_row, load_table

TABLE = load_table()
BY_SKU = {row.sku: row for row in TABLE}


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _gpu(
    name: str,
    cc: str,
    sm_count: int,
    clock_hz: float | None = None,
    vendor: str = "nvidia",
    gcn_arch: str | None = None,
) -> GpuIdentity:
    return GpuIdentity(
        vendor=vendor,
        name=name,
        compute_capability=cc,
        sm_count=sm_count,
        gcn_arch=gcn_arch,
        max_sm_clock_hz=clock_hz,
    )


def _device_of(row: PeakRow, name: str | None = None, **changes: object) -> GpuIdentity:
    """The device a row describes, as the runtime would report it."""
    gpu = GpuIdentity(
        vendor=row.vendor.casefold(),
        name=row.match_names[0] if name is None else name,
        compute_capability=row.compute_capability or "",
        sm_count=row.sm_count or 0,
        gcn_arch=row.gcn_arch,
        max_sm_clock_hz=row.boost_clock_hz,
    )
    return dataclasses.replace(gpu, **changes)


# ------------------------------------------------------------------------------------------------
# The CSV itself

CSV_PATH = Path(__file__).resolve().parents[1] / "bench" / "peaks" / "peaks.csv"


def test_csv_header_names_its_units() -> None:
    with CSV_PATH.open(newline="") as f:
        header = next(csv.reader(f))
    assert header == [
        *("vendor", "sku", "match_names", "arch", "compute_capability", "gcn_arch"),
        *("sm_count", "boost_clock_mhz", "fp64_tflops", "fp64_tensor_tflops", "fp32_tflops"),
        *("tf32_tflops", "bf16_tflops", "fp16_tflops", "fp8_tflops", "int8_tops", "mem_gb"),
        *("mem_bw_gbs", "tdp_w", "link_bidir_gbs", "source"),
    ]


def test_table_has_every_reference_row_with_a_source() -> None:
    assert len(TABLE) == 38
    assert len(BY_SKU) == 38
    assert all(row.source and row.match_names for row in TABLE)


def test_amd_rows_split_hip_cc_from_gfx_arch() -> None:
    amd = {row.sku: (row.compute_capability, row.gcn_arch) for row in TABLE if row.vendor == "AMD"}
    assert amd["Instinct MI100"] == ("9.0", "gfx908")
    assert amd["Instinct MI210"] == ("9.0", "gfx90a")
    assert amd["Instinct MI300X"] == ("9.4", "gfx942")
    assert amd["Instinct MI355X"] == ("9.5", "gfx950")
    gaudi = [row for row in TABLE if row.vendor == "Intel"]
    assert [(r.compute_capability, r.gcn_arch) for r in gaudi] == [(None, None), (None, None)]


def test_units_are_converted_to_si() -> None:
    h100 = BY_SKU["H100 SXM5 80GB"]
    assert h100.ops_per_s["fp32"] == 66.9e12
    assert h100.fp64_tensor_ops_per_s == 66.9e12
    assert h100.boost_clock_hz == 1980e6
    assert h100.mem_bytes_per_s == 3350e9
    assert h100.mem_bytes == 80e9
    assert h100.tdp_w == 700
    assert h100.link_bidir_bytes_per_s == 900e9
    assert "fp8" not in BY_SKU["A100 SXM4 40GB"].ops_per_s  # empty cell: absent, not 0


def test_l40s_keeps_the_printed_value() -> None:
    # NVIDIA's L40S sheet: 362.05 is inconsistent with 733 sparse (366.4 would be); keep it.
    assert BY_SKU["L40S"].ops_per_s["bf16"] == 362.05e12


def test_no_two_rows_share_a_normalised_name_and_cc() -> None:
    seen: dict[tuple[str, str | None], str] = {}
    for row in TABLE:
        for name in row.match_names:
            key = (_norm(name), row.compute_capability)
            assert key not in seen, f"{key} in {seen.get(key)!r} and {row.sku!r}"
            seen[key] = row.sku


@pytest.mark.parametrize(
    ("row", "name"),
    [(row, name) for row in TABLE for name in row.match_names],
    ids=lambda value: value.sku if isinstance(value, PeakRow) else value,
)
def test_every_row_resolves_from_each_of_its_names(row: PeakRow, name: str) -> None:
    assert find_row(name, row.compute_capability) is row


# ------------------------------------------------------------------------------------------------
# Real names, as drivers report them

KNOWN_NAMES = [
    ("Tesla V100-SXM2-16GB", "7.0", "V100 SXM2 (16/32GB)"),
    ("Tesla V100-SXM2-32GB", "7.0", "V100 SXM2 (16/32GB)"),
    ("Tesla V100-PCIE-16GB", "7.0", "V100 PCIe (16/32GB)"),
    ("Tesla V100-PCIE-32GB", "7.0", "V100 PCIe (16/32GB)"),
    ("Tesla V100S-PCIE-32GB", "7.0", "V100S PCIe 32GB"),
    ("Tesla T4", "7.5", "T4"),
    ("NVIDIA A100-SXM4-40GB", "8.0", "A100 SXM4 40GB"),
    ("A100-SXM4-40GB", "8.0", "A100 SXM4 40GB"),
    ("NVIDIA A100-PG509-200", "8.0", "A100 SXM4 40GB"),
    ("NVIDIA A100-SXM4-80GB", "8.0", "A100 SXM4 80GB"),
    ("A100-SXM4-80GB", "8.0", "A100 SXM4 80GB"),
    ("NVIDIA PG509-210", "8.0", "A100 SXM4 80GB"),
    ("NVIDIA A100-PCIE-40GB", "8.0", "A100 PCIe 40GB"),
    ("A100-PCIE-40GB", "8.0", "A100 PCIe 40GB"),
    ("NVIDIA A100 80GB PCIe", "8.0", "A100 PCIe 80GB"),
    ("NVIDIA A30", "8.0", "A30"),
    ("NVIDIA A10", "8.6", "A10"),
    ("NVIDIA A10G", "8.6", "A10G (AWS G5)"),
    ("NVIDIA A40", "8.6", "A40"),
    ("NVIDIA RTX A6000", "8.6", "RTX A6000"),
    ("NVIDIA GeForce RTX 3090", "8.6", "GeForce RTX 3090"),
    ("NVIDIA L4", "8.9", "L4"),
    ("NVIDIA L40", "8.9", "L40"),
    ("NVIDIA L40S", "8.9", "L40S"),
    ("NVIDIA RTX 6000 Ada Generation", "8.9", "RTX 6000 Ada Generation"),
    ("NVIDIA GeForce RTX 4090", "8.9", "GeForce RTX 4090"),
    ("NVIDIA H100 80GB HBM3", "9.0", "H100 SXM5 80GB"),
    ("NVIDIA H100", "9.0", "H100 SXM5 80GB"),
    ("NVIDIA H100 PCIe", "9.0", "H100 PCIe 80GB"),
    ("NVIDIA H100 NVL", "9.0", "H100 NVL (per GPU)"),
    ("NVIDIA H200", "9.0", "H200 SXM 141GB"),
    ("NVIDIA H200 NVL", "9.0", "H200 NVL 141GB"),
    ("NVIDIA GH200 480GB", "9.0", "GH200 (96GB HBM3 GPU)"),
    ("NVIDIA GH200 120GB", "9.0", "GH200 (96GB HBM3 GPU)"),
    ("NVIDIA GH200 144G HBM3e", "9.0", "GH200 (144GB HBM3e GPU)"),
    ("NVIDIA B200", "10.0", "B200 (HGX, 1000W)"),
    ("NVIDIA GB200", "10.0", "GB200 (per Blackwell GPU)"),
    ("NVIDIA GeForce RTX 5090", "12.0", "GeForce RTX 5090"),
    ("AMD Instinct MI100", "9.0", "Instinct MI100"),
    ("AMD Instinct MI210", "9.0", "Instinct MI210"),
    ("AMD Instinct MI250X/MI250", "9.0", "Instinct MI250X (per GCD = per torch device)"),
    ("AMD Instinct MI250X", "9.0", "Instinct MI250X (per GCD = per torch device)"),
    ("AMD Instinct MI300X", "9.4", "Instinct MI300X"),
    ("AMD Instinct MI325X", "9.4", "Instinct MI325X"),
    ("AMD Instinct MI355X", "9.5", "Instinct MI355X"),
    ("GAUDI2", None, "Gaudi 2 (HL-225)"),
    ("GAUDI3", None, "Gaudi 3 (HL-325L OAM)"),
]


@pytest.mark.parametrize(("name", "cc", "sku"), KNOWN_NAMES)
def test_real_names_resolve_to_their_sku(name: str, cc: str | None, sku: str) -> None:
    row = find_row(name, cc)
    assert row is not None
    assert row.sku == sku


# Real names that are NOT in the table, many of them one substring away from a row.
UNLISTED_NAMES = [
    ("Tesla V100-SXM3-32GB", "7.0"),
    ("NVIDIA T400", "7.5"),  # t4 ⊂ t400
    ("NVIDIA T400E", "7.5"),
    ("NVIDIA A100-SXM-64GB", "8.0"),
    ("NVIDIA A800-SXM4-80GB", "8.0"),
    ("NVIDIA A800 80GB PCIe", "8.0"),
    ("NVIDIA A10M", "8.6"),  # a10 ⊂ a10m
    ("NVIDIA GeForce RTX 3090 Ti", "8.6"),
    ("NVIDIA L20", "8.9"),
    ("NVIDIA GeForce RTX 4090 D", "8.9"),  # rtx 4090 ⊂ rtx 4090 d
    ("NVIDIA GeForce RTX 4090 Laptop GPU", "8.9"),
    ("NVIDIA H800", "9.0"),
    ("NVIDIA H800 PCIe", "9.0"),
    ("NVIDIA H800 NVL", "9.0"),
    ("NVIDIA H20", "9.0"),  # h20 ⊂ h200
    ("NVIDIA H20-3e", "9.0"),
    ("NVIDIA B300 SXM6 AC", "10.3"),
    ("NVIDIA GB300", "10.3"),
    ("NVIDIA GeForce RTX 5090 D", "12.0"),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "12.0"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "12.0"),
    ("AMD Instinct MI250", "9.0"),  # mi250 ⊂ mi250x; 104 CUs, not 110
    ("AMD INSTINCT MI250 (MCM) OAM AC MBA", "9.0"),
    ("AMD Instinct MI350X", "9.5"),
]


@pytest.mark.parametrize(("name", "cc"), UNLISTED_NAMES)
def test_unlisted_real_names_match_no_row(name: str, cc: str) -> None:
    assert find_row(name, cc) is None


@pytest.mark.parametrize(
    ("name", "cc"),
    [
        ("NVIDIA H100 80GB HBM3", "8.0"),
        ("NVIDIA A100-SXM4-40GB", "9.0"),
        ("NVIDIA L4", "8.6"),
        ("AMD Instinct MI300X", "9.0"),
        ("GAUDI2", "9.0"),
        ("NVIDIA H100", None),
        ("NVIDIA H100", ""),
    ],
)
def test_a_name_with_the_wrong_cc_matches_nothing(name: str, cc: str | None) -> None:
    assert find_row(name, cc) is None


def test_case_and_whitespace_do_not_matter() -> None:
    assert find_row("  nvidia   h100 80gb HBM3 \n", "9.0") is BY_SKU["H100 SXM5 80GB"]
    assert find_row("nvidia l40s", " 8.9 ") is BY_SKU["L40S"]


@st.composite
def _respelled(draw: st.DrawFn) -> tuple[str, str | None, PeakRow]:
    """A row's match name with random case and whitespace, as another driver might print it."""
    row = draw(st.sampled_from(TABLE))
    name = draw(st.sampled_from(row.match_names))
    chars = [c.upper() if draw(st.booleans()) else c.lower() for c in name]
    words = "".join(chars).split(" ")
    gaps = [draw(st.sampled_from([" ", "  ", "\t", " \t "])) for _ in words[1:]]
    spelled = words[0] + "".join(g + w for g, w in zip(gaps, words[1:], strict=True))
    pad = draw(st.sampled_from(["", " ", "\n", "\t "]))
    return pad + spelled + pad, row.compute_capability, row


@settings(max_examples=200, deadline=None)
@given(_respelled())
def test_respelled_names_still_find_their_row(case: tuple[str, str | None, PeakRow]) -> None:
    name, cc, row = case
    assert find_row(name, cc) is row


ALL_KEYS = {(_norm(n), row.compute_capability) for row in TABLE for n in row.match_names}


@settings(max_examples=300, deadline=None)
@given(
    row=st.sampled_from(TABLE),
    extra=st.text(alphabet="0123456789abcdefghlmnpsvxGBDX -/", min_size=1, max_size=6),
    at_front=st.booleans(),
)
def test_no_substring_matching(row: PeakRow, extra: str, at_front: bool) -> None:
    """A row name with characters added is some other device: it must not find this row."""
    name = row.match_names[0]
    variant = extra + name if at_front else name + extra
    found = find_row(variant, row.compute_capability)
    if (_norm(variant), row.compute_capability) in ALL_KEYS:
        assert found is not None and _norm(variant) in map(_norm, found.match_names)
    else:
        assert found is None


def test_two_matching_rows_are_an_error_naming_both() -> None:
    h100 = BY_SKU["H100 SXM5 80GB"]
    clone = dataclasses.replace(
        h100, sku="Fake H100 clone", match_names=("nvidia  H100 80GB HBM3",)
    )
    with pytest.raises(AmbiguousPeakError, match=r"H100 SXM5 80GB.*Fake H100 clone"):
        find_row("NVIDIA H100 80GB HBM3", "9.0", table=(h100, clone))
    with pytest.raises(AmbiguousPeakError):
        gpu_peak(_device_of(h100), "bf16", table=(h100, clone))


def test_duplicate_in_a_csv_file_is_an_error(tmp_path: Path) -> None:
    lines = CSV_PATH.read_text().splitlines()
    h100 = next(line for line in lines if line.startswith("NVIDIA,H100 SXM5 80GB,"))
    path = tmp_path / "peaks.csv"
    path.write_text("\n".join([lines[0], h100, h100.replace("H100 SXM5 80GB", "Copy", 1)]))
    table = load_table(path)
    assert [row.sku for row in table] == ["H100 SXM5 80GB", "Copy"]
    with pytest.raises(AmbiguousPeakError, match="Copy"):
        find_row("NVIDIA H100", "9.0", table)


def test_malformed_csv_is_rejected(tmp_path: Path) -> None:
    lines = CSV_PATH.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], lines[1].replace(",15.7,", ",fast,", 1)]))
    with pytest.raises(ValueError, match=r"line 2: fp32_tflops='fast'"):
        load_table(bad)
    short = tmp_path / "short.csv"
    short.write_text("vendor,sku\nNVIDIA,X\n")
    with pytest.raises(ValueError, match="lacks columns"):
        load_table(short)


def test_packaged_table_is_cached() -> None:
    assert load_table() is load_table()


def test_import_reads_nothing_and_imports_no_device_library() -> None:
    code = (
        "import sys, bench.peaks.lookup, bench.peaks.table as p; "
        "assert p._packaged_table.cache_info().currsize == 0; "
        "assert 'torch' not in sys.modules and 'pynvml' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------------
# Datasheet peaks


def test_h100_fp32_and_tf32_are_different_peaks() -> None:
    gpu = _gpu("NVIDIA H100 80GB HBM3", "9.0", 132)
    fp32, tf32 = gpu_peak(gpu, "fp32"), gpu_peak(gpu, "tf32")
    assert (fp32.ops_per_s, tf32.ops_per_s) == (66.9e12, 494.7e12)
    assert fp32.source == tf32.source == "datasheet"
    assert fp32.detail == "H100 SXM5 80GB: https://www.nvidia.com/en-us/data-center/h100/"


def test_spec_clock_is_the_tensor_clock_for_hopper_tensor_modes() -> None:
    gpu = _gpu("NVIDIA H100 80GB HBM3", "9.0", 132)
    assert gpu_peak(gpu, "bf16").spec_clock_hz == pytest.approx(1830e6, rel=1e-3)
    assert gpu_peak(gpu, "int8").spec_clock_hz == pytest.approx(1830e6, rel=1e-3)
    assert gpu_peak(gpu, "fp32").spec_clock_hz == 1980e6
    assert gpu_peak(gpu, "fp64").spec_clock_hz == 1980e6


@pytest.mark.parametrize(
    ("name", "cc", "mhz"),
    [  # "clock implied by tensor spec": peak / (SMs x per-SM rate)
        ("NVIDIA H100 PCIe", "9.0", 1620),
        ("NVIDIA H100 NVL", "9.0", 1545),
        ("NVIDIA B200", "10.0", 1856),
        ("NVIDIA GB200", "10.0", 2008),
    ],
)
def test_implied_tensor_clock_on_other_hopper_blackwell_parts(name: str, cc: str, mhz: int) -> None:
    row = find_row(name, cc)
    assert row is not None
    peak = gpu_peak(_device_of(row), "bf16")
    assert peak.spec_clock_hz == pytest.approx(mhz * 1e6, rel=2e-3)


def test_spec_clock_is_boost_elsewhere() -> None:
    assert gpu_peak(_device_of(BY_SKU["A100 SXM4 80GB"]), "bf16").spec_clock_hz == 1410e6
    # HIP reports cc 9.0 for gfx90a: the tensor-clock rule is NVIDIA Hopper only
    assert gpu_peak(_device_of(BY_SKU["Instinct MI210"]), "bf16").spec_clock_hz == 1700e6
    assert gpu_peak(_device_of(BY_SKU["GeForce RTX 5090"]), "bf16").spec_clock_hz == 2407e6


def test_b100_has_no_clock_or_sm_count_to_imply_one() -> None:
    peak = gpu_peak(_gpu("NVIDIA B100", "10.0", 148), "bf16")
    assert peak.ops_per_s == 1750e12
    assert peak.spec_clock_hz is None
    assert "lists no SMs for B100" in peak.detail


def test_missing_mode_in_a_row_is_none_with_reason() -> None:
    peak = gpu_peak(_gpu("Tesla V100-SXM2-32GB", "7.0", 80), "bf16")
    assert peak == Peak(None, None, "V100 SXM2 (16/32GB) has no bf16 rate in the datasheet", None)
    assert gpu_peak(_gpu("NVIDIA A100-SXM4-80GB", "8.0", 108), "fp8").ops_per_s is None


def test_fp64_uses_the_tensor_core_rate_where_the_part_has_one() -> None:
    a100 = gpu_peak(_gpu("NVIDIA A100-SXM4-80GB", "8.0", 108), "fp64")
    assert a100.ops_per_s == 19.5e12
    assert "tensor-core" in a100.detail and "9.7 TFLOP/s" in a100.detail
    assert gpu_peak(_gpu("Tesla V100-SXM2-32GB", "7.0", 80), "fp64").ops_per_s == 7.8e12


def test_mig_slice_scales_by_sm_ratio() -> None:
    full = gpu_peak(_gpu("NVIDIA H100 80GB HBM3", "9.0", 132), "bf16")
    mig = gpu_peak(_gpu("NVIDIA H100 80GB HBM3", "9.0", 16), "bf16")
    assert mig.ops_per_s == pytest.approx(989.4e12 * 16 / 132)
    assert mig.source == "datasheet"
    assert "16/132 SMs" in mig.detail
    assert mig.spec_clock_hz == full.spec_clock_hz


def test_amd_partition_scales_by_cu_ratio() -> None:
    cpx = gpu_peak(_gpu("AMD Instinct MI300X", "9.4", 38, vendor="amd", gcn_arch="gfx942"), "bf16")
    assert cpx.ops_per_s == pytest.approx(1307.4e12 / 8)
    assert "38/304 CUs" in cpx.detail


def test_more_sms_than_the_table_is_not_scaled_but_noted() -> None:
    peak = gpu_peak(_gpu("NVIDIA H100 80GB HBM3", "9.0", 140), "bf16")
    assert peak.ops_per_s == 989.4e12
    assert "140" in peak.detail and "not scaled" in peak.detail


def test_a10g_row_says_it_is_itself_derived() -> None:
    peak = gpu_peak(_gpu("NVIDIA A10G", "8.6", 80), "bf16")
    assert peak.ops_per_s == 70e12
    assert "derived (no vendor datasheet)" in peak.detail


def test_amd_name_match_on_another_gfx_arch_is_not_used() -> None:
    gpu = _gpu("AMD Instinct MI300X", "9.4", 304, 2.1e9, vendor="amd", gcn_arch="gfx950:xnack-")
    peak = gpu_peak(gpu, "bf16")
    assert peak.source == "derived"
    assert peak.ops_per_s == pytest.approx(304 * 2.1e9 * 4096)


# ------------------------------------------------------------------------------------------------
# Cross-check: datasheet value vs SMs x boost clock x per-SM rate (bench/peaks/arch_rates.py)

HOPPER_BLACKWELL = {"9.0", "10.0"}
INCONSISTENT_BF16 = {"L40S"}  # the datasheet prints 362.05 vs 366.4 at 2520 MHz
GAUDI_BF16_PER_MME = 256 * 256 * 2  # Intel Gaudi: 256x256 MME, 2 ops per MAC
# SKUs that run below their architecture's pro rate (NVIDIA's whitepapers): L40 halves every
# tensor mode, A10G runs GeForce-style half-rate FP32-accumulate tensor math.
HALF_RATE = {
    "L40": {"tf32", "bf16", "fp16", "fp8", "int8"},
    "A10G (AWS G5)": {"tf32", "bf16", "fp16"},
}


def _formula(row: PeakRow, mode: str) -> float | None:
    """The derived path for the row's own SMs and boost clock (no table row to hit)."""
    if row.vendor == "Intel":
        assert row.sm_count is not None and row.boost_clock_hz is not None
        return row.sm_count * row.boost_clock_hz * GAUDI_BF16_PER_MME if mode == "bf16" else None
    anonymous = _device_of(row, name=f"unlisted {row.sku}")
    value = gpu_peak(anonymous, mode, table=()).ops_per_s
    if value is not None and mode in HALF_RATE.get(row.sku, ()):
        value /= 2
    return value


CHECKABLE = [row for row in TABLE if row.sm_count and row.boost_clock_hz]


def test_only_b100_lacks_sms_and_clock() -> None:
    assert [row.sku for row in TABLE if row not in CHECKABLE] == ["B100 (HGX, 700W)"]


def _tensor_clock_row(row: PeakRow) -> bool:
    return row.vendor == "NVIDIA" and row.compute_capability in HOPPER_BLACKWELL


# Hopper/Blackwell tensor peaks use a lower tensor clock (§4.2); L40S is listed as inconsistent.
BF16_CHECKABLE = [
    row for row in CHECKABLE if not _tensor_clock_row(row) and row.sku not in INCONSISTENT_BF16
]


def test_bf16_cross_check_leaves_out_only_the_listed_rows() -> None:
    left_out = {row.sku for row in CHECKABLE} - {row.sku for row in BF16_CHECKABLE}
    assert len(left_out) == 10
    assert "L40S" in left_out
    assert all(_tensor_clock_row(BY_SKU[sku]) for sku in left_out - {"L40S"})


@pytest.mark.parametrize("row", BF16_CHECKABLE, ids=lambda row: row.sku)
def test_bf16_datasheet_matches_formula_at_boost(row: PeakRow) -> None:
    mode = "bf16" if "bf16" in row.ops_per_s else "fp16"
    formula = _formula(row, mode)
    assert formula is not None
    assert row.ops_per_s[mode] == pytest.approx(formula, rel=0.015)


@pytest.mark.parametrize("row", [r for r in CHECKABLE if r.vendor != "Intel"], ids=lambda r: r.sku)
def test_every_datasheet_cell_matches_the_derived_path(row: PeakRow) -> None:
    """Same check over all modes (2%: T4 fp64 is printed 1.7% low), tensor clocks excluded."""
    datasheet = _device_of(row)
    for mode in MATH_MODES:
        listed = gpu_peak(datasheet, mode).ops_per_s
        if _tensor_clock_row(row) and mode not in ("fp32", "fp64"):
            continue
        expected = _formula(row, mode)
        assert (listed is None) == (expected is None), (mode, listed, expected)
        if listed is not None:
            assert listed == pytest.approx(expected, rel=0.02), mode


@pytest.mark.parametrize("sku", ["H100 SXM5 80GB", "H200 SXM 141GB", "GH200 (96GB HBM3 GPU)"])
def test_hopper_tensor_clock_factor_reproduces_sxm_datasheets(sku: str) -> None:
    row = BY_SKU[sku]
    derived = gpu_peak(_device_of(row, name="unlisted hopper"), "bf16", table=())
    assert derived.ops_per_s == pytest.approx(row.ops_per_s["bf16"], rel=1e-3)


# ------------------------------------------------------------------------------------------------
# Derived peaks for unknown SKUs


def test_unknown_hopper_is_derived_with_every_factor() -> None:
    peak = gpu_peak(_gpu("NVIDIA H800", "9.0", 132, 1.98e9), "bf16")
    assert peak.source == "derived"
    assert peak.ops_per_s == pytest.approx(132 * 1.98e9 * 4096 * 0.924)
    assert peak.spec_clock_hz == pytest.approx(1.98e9 * 0.924)
    assert peak.detail == (
        "derived: 132 SMs x 1.98 GHz (NVML max SM clock) x 4096 FLOP/clk/SM (sm_90 bf16)"
        " x 0.924 tensor-clock factor"
    )


def test_unknown_hopper_fp32_has_no_tensor_clock_factor() -> None:
    peak = gpu_peak(_gpu("NVIDIA H800 PCIe", "9.0", 114, 1.755e9), "fp32")
    assert peak.ops_per_s == pytest.approx(114 * 1.755e9 * 256)
    assert "tensor-clock" not in peak.detail
    assert peak.spec_clock_hz == 1.755e9


def test_unknown_blackwell_uses_its_own_factor() -> None:
    peak = gpu_peak(_gpu("NVIDIA B200A", "10.0", 144, 1.9e9), "fp8")
    assert peak.ops_per_s == pytest.approx(144 * 1.9e9 * 16384 * 0.934)
    assert "0.934" in peak.detail


def test_unknown_geforce_gets_half_rate_fp32_accumulate() -> None:
    gpu = _gpu("NVIDIA GeForce RTX 4080", "8.9", 76, 2.505e9)
    bf16, int8 = gpu_peak(gpu, "bf16"), gpu_peak(gpu, "int8")
    assert bf16.ops_per_s == pytest.approx(76 * 2.505e9 * 512)
    assert "GeForce tier" in bf16.detail
    assert int8.ops_per_s == pytest.approx(76 * 2.505e9 * 2048)  # int8 is not halved
    assert "OP/clk/SM" in int8.detail
    pro = gpu_peak(_gpu("NVIDIA L20", "8.9", 92, 2.52e9), "bf16")
    assert pro.ops_per_s == pytest.approx(92 * 2.52e9 * 1024)


def test_unknown_amd_is_derived_on_gfx_arch_not_cc() -> None:
    mi250 = _gpu("AMD Instinct MI250", "9.0", 104, 1.7e9, vendor="amd", gcn_arch="gfx90a")
    mi100_like = dataclasses.replace(mi250, gcn_arch="gfx908:sramecc+:xnack-")
    assert gpu_peak(mi250, "bf16").ops_per_s == pytest.approx(104 * 1.7e9 * 1024)
    assert gpu_peak(mi100_like, "bf16").ops_per_s == pytest.approx(104 * 1.7e9 * 512)
    assert "gfx90a bf16" in gpu_peak(mi250, "bf16").detail
    assert "CUs" in gpu_peak(mi250, "bf16").detail


def test_arch_without_the_mode_is_none_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        peak = gpu_peak(_gpu("Tesla V100-SXM3-32GB", "7.0", 80, 1.53e9), "bf16")
    assert peak.ops_per_s is None and peak.source is None
    assert "sm_70 has no native bf16" in peak.detail


def test_unknown_tier_rate_is_none_not_invented() -> None:
    gpu = _gpu("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "12.0", 188, 2.6e9)
    assert gpu_peak(gpu, "bf16").ops_per_s is None
    assert "sm_120 pro" in gpu_peak(gpu, "bf16").detail
    assert gpu_peak(gpu, "fp32").ops_per_s == pytest.approx(188 * 2.6e9 * 256)


def test_unknown_arch_is_none_and_warns() -> None:
    with pytest.warns(UserWarning, match="Jetson AGX Orin"):
        peak = gpu_peak(_gpu("Orin (nvgpu) Jetson AGX Orin", "8.7", 16, 1.3e9), "bf16")
    assert peak == Peak(peak.ops_per_s, None, peak.detail, None)
    assert peak.ops_per_s is None and "8.7" in peak.detail


def test_unknown_blackwell_ultra_is_not_treated_as_b200() -> None:
    with pytest.warns(UserWarning, match="B300"):
        peak = gpu_peak(_gpu("NVIDIA B300 SXM6 AC", "10.3", 148, 2.0e9), "bf16")
    assert peak.ops_per_s is None


def test_amd_without_gfx_arch_is_unknown() -> None:
    with pytest.warns(UserWarning, match="MI300A"):
        peak = gpu_peak(_gpu("AMD Instinct MI300A", "9.4", 228, 2.1e9, vendor="amd"), "bf16")
    assert peak.ops_per_s is None


def test_unknown_vendor_is_unknown() -> None:
    with pytest.warns(UserWarning, match="vendor"):
        peak = gpu_peak(_gpu("Some NPU", "1.0", 8, 1e9, vendor="acme"), "bf16")
    assert peak.ops_per_s is None


def test_no_clock_means_no_derived_peak() -> None:
    peak = gpu_peak(_gpu("NVIDIA H800", "9.0", 132, None), "bf16")
    assert peak.ops_per_s is None and peak.source is None
    assert "no max SM clock" in peak.detail and "NVIDIA H800" in peak.detail


def test_unknown_math_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="valid: fp64, fp32"):
        gpu_peak(_gpu("NVIDIA H100", "9.0", 132), "fp4")


# ------------------------------------------------------------------------------------------------
# Overrides


def test_parse_peak_override() -> None:
    assert parse_peak_override("bf16=989e12") == ("bf16", 9.89e14)
    assert parse_peak_override(" FP8 = 1.5e15 ") == ("fp8", 1.5e15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bf16", "missing '='"),
        ("bf16:989e12", "missing '='"),
        ("bf32=1e12", r"unknown math mode 'bf32' \(valid: fp64, fp32, tf32, bf16, fp16, fp8, int8"),
        ("=1e12", "unknown math mode ''"),
        ("bf16=", "'' is not a number"),
        ("bf16=fast", "'fast' is not a number"),
        ("bf16=1e12=2", "is not a number"),
        ("bf16=0", "must be positive"),
        ("bf16=-5e12", "must be positive"),
        ("bf16=nan", "must be finite"),
        ("bf16=inf", "must be finite"),
        ("bf16=-inf", "must be finite"),
    ],
)
def test_malformed_peak_overrides(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_peak_override(text)
    assert "\n" not in str(info.value)
    assert "expected MODE=OPS_PER_S" in str(info.value)


def test_override_wins_over_datasheet_and_cpu() -> None:
    gpu = _gpu("NVIDIA H100 80GB HBM3", "9.0", 132)
    peak = resolve_peak(gpu, "bf16", {"bf16": 900e12})
    assert peak == Peak(900e12, "user", "--peak bf16=9e+14", None)
    assert resolve_peak(gpu, "fp32", {"bf16": 900e12}).ops_per_s == 66.9e12
    cpu = CpuIdentity("x", "x86_64", frozenset({"avx2", "fma"}), 4, 4, 3e9, "test")
    assert resolve_peak(cpu, "bf16", {"bf16": 1e12}).source == "user"
    assert resolve_peak(cpu, "fp32").ops_per_s == 4 * 3e9 * 32


@pytest.mark.parametrize(
    "overrides", [{"bf17": 1e12}, {"bf16": 0.0}, {"bf16": math.nan}, {"bf16": math.inf}]
)
def test_bad_override_mappings_are_rejected(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        resolve_peak(_gpu("NVIDIA H100", "9.0", 132), "bf16", overrides)


def test_resolve_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown math mode"):
        resolve_peak(_gpu("NVIDIA H100", "9.0", 132), "fp4", {"fp4": 1.0})
