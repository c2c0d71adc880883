"""Health rows of an AMD GPU through the fake amdsmi: the three reads judged, N/A with a
reason where amdsmi cannot answer, FAIL for faults and for a driver that goes away."""

from fake_amdsmi import (
    AMDSMI_STATUS_DRIVER_NOT_LOADED,
    AMDSMI_STATUS_NOT_SUPPORTED,
    FakeAmdGpu,
    FakeAmdsmi,
    install,
    mi300x_vf,
)

from bench.commands.health import amdsmi_checks
from bench.commands.health.device import Reads, checks_for, open_device
from bench.commands.health.model import Thresholds
from bench.devices.base import DeviceFacts, GpuIdentity
from bench.hardware.amdsmi import open_amdsmi


def facts(name="AMD Instinct MI300X"):
    identity = GpuIdentity("amd", name, "9.4", 304, gcn_arch="gfx942")
    return DeviceFacts("cuda", "cuda:0", identity, {"index": 0, "pci_bus_id": "0000:0c:00.0"})


def rows_of(monkeypatch, gpu, between=None):
    install(monkeypatch, FakeAmdsmi([gpu]))
    with open_amdsmi() as smi:
        reads = Reads(smi.devices()[0], None, amdsmi_checks)
        reads.read_idle()
        reads.read_load()
        if between:
            between(gpu)
        reads.read_after()
        rows = amdsmi_checks.judge(
            "cuda:0", reads.idle, reads.load, reads.after, reads.lost, Thresholds()
        )
    return {r.name: r for r in rows}


def test_a_healthy_mi300x_passes_every_row(monkeypatch):
    rows = rows_of(monkeypatch, FakeAmdGpu())
    assert list(rows) == list(amdsmi_checks.CHECK_NAMES)
    assert {r.name for r in rows.values() if r.verdict != "PASS"} == set(), rows
    assert rows["gfx clock min over xcds (load)"].value == "2080 MHz over 8 XCD(s)"
    assert rows["pcie link generation"].value == "Gen5 (32 GT/s)"
    assert rows["xgmi links up"].value == "7/7"
    assert rows["throttling (load)"].value.startswith("ppt_pwr 0%")


def test_faults_fail_or_warn(monkeypatch):
    gpu = FakeAmdGpu(
        pcie_speed_mts=16_000, xgmi_status=["U", "U", "D", "U", "U", "U", "U"], hotspot_c=85
    )
    gpu.violation = {**gpu.violation, "per_socket_thrm": 40}

    def errors_during_the_check(g):
        g.ecc = {"correctable_count": 3, "uncorrectable_count": 1, "deferred_count": 0}

    rows = rows_of(monkeypatch, gpu, errors_during_the_check)
    assert rows["pcie link generation"].verdict == "FAIL"
    assert rows["xgmi links up"].verdict == "FAIL" and "[2]" in rows["xgmi links up"].reason
    assert rows["temperature hotspot (idle)"].verdict == "WARN"
    assert (
        rows["throttling (load)"].verdict == "WARN"
        and "socket_thrm" in rows["throttling (load)"].reason
    )
    assert rows["ecc uncorrectable"].verdict == "FAIL" and rows["ecc correctable"].verdict == "WARN"


def test_unreadable_is_na_with_the_reason(monkeypatch):
    gpu = mi300x_vf(
        errors={
            "amdsmi_get_gpu_total_ecc_count": AMDSMI_STATUS_NOT_SUPPORTED,
            "amdsmi_get_gpu_xgmi_link_status": AMDSMI_STATUS_NOT_SUPPORTED,
            "amdsmi_get_violation_status": AMDSMI_STATUS_NOT_SUPPORTED,
        },
        pcie_speed_mts=16_000,
    )
    rows = rows_of(monkeypatch, gpu)
    for name in ("ecc uncorrectable", "xgmi links up", "throttling (load)"):
        assert rows[name].verdict == "N/A" and "not supported" in rows[name].reason
    assert rows["pcie link generation"].verdict == "N/A"  # a VF's link is the hypervisor's


def test_a_driver_that_goes_away_fails_gpu_responds(monkeypatch):
    gpu = FakeAmdGpu(errors={"amdsmi_get_power_cap_info": AMDSMI_STATUS_DRIVER_NOT_LOADED})
    rows = rows_of(monkeypatch, gpu)
    assert rows["gpu responds"].verdict == "FAIL"
    assert "not read" in rows["temperature hotspot (idle)"].reason


def test_open_device_picks_amdsmi_for_an_amd_gpu(monkeypatch):
    install(monkeypatch, FakeAmdsmi([FakeAmdGpu()]))
    smi, device, how = open_device(facts())
    try:
        assert how == "bdf" and device is not None and checks_for(facts()) is amdsmi_checks
    finally:
        smi.close()
