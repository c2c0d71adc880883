"""AMD rows of the peak table: SR-IOV "VF" names, validation by gfx arch and CU count."""

import pytest

from bench.devices.base import GpuIdentity
from bench.peaks.lookup import gpu_peak, link_peak
from bench.peaks.table import find_row, row_for


def mi300x(name="AMD Instinct MI300X", cus=304, arch="gfx942:sramecc+:xnack-"):
    return GpuIdentity("amd", name, "9.4", cus, gcn_arch=arch, max_sm_clock_hz=2.1e9)


def test_vf_name_finds_the_physical_part_and_says_so():
    peak = gpu_peak(mi300x("AMD Instinct MI300X VF"), "bf16")
    assert peak.source == "datasheet" and peak.ops_per_s == pytest.approx(1307.4e12)
    assert "SR-IOV virtual function" in peak.detail
    assert row_for(mi300x("AMD Instinct MI300X VF"))[0].sku == "Instinct MI300X"
    assert link_peak(mi300x("AMD Instinct MI300X VF")).bytes_per_s is not None


def test_exact_names_are_still_exact():
    assert find_row("AMD Instinct MI300", "9.4") is None
    assert find_row("AMD Instinct MI300X VFX", "9.4") is None
    assert "virtual function" not in gpu_peak(mi300x(), "bf16").detail


def test_more_cus_than_the_part_is_not_that_part():
    peak = gpu_peak(mi300x(cus=320), "bf16")
    assert peak.source == "derived"
    assert "320 CUs, the part 304" in peak.detail


def test_partition_with_fewer_cus_is_scaled_and_a_vf_partition_too():
    peak = gpu_peak(mi300x("AMD Instinct MI300X VF", cus=38), "bf16")
    assert peak.ops_per_s == pytest.approx(1307.4e12 / 8)
    assert "38/304 CUs" in peak.detail


def test_another_arch_under_the_same_name_is_not_used():
    peak = gpu_peak(mi300x(arch="gfx950"), "bf16")
    assert peak.source == "derived" and "gfx950" in peak.detail
