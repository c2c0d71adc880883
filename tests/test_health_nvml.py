"""Health's NVML checks (bench.commands.health.nvml_checks): every verdict from scripted NVML values."""

from __future__ import annotations

import pytest
from fake_pynvml import (
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_FEATURE_DISABLED,
    NVML_FEATURE_ENABLED,
    FailAfter,
    FakeGpu,
    FakePynvml,
    Steps,
    install,
)

from bench.devices.base import DeviceFacts, GpuIdentity
from bench.commands.health.device import Reads, open_device
from bench.commands.health.model import FAIL, NA, PASS, WARN, Check, Thresholds
from bench.commands.health.nvml_checks import CHECK_NAMES, judge, unavailable
from bench.hardware.nvml import open_nvml

UUID_B = "GPU-bbbbbbbb-0000-0000-0000-000000000002"


def check(monkeypatch: pytest.MonkeyPatch, *gpus: FakeGpu, load: bool = True) -> list[Check]:
    """Idle, load and after reads of each GPU, judged; rows of every GPU in order."""
    install(monkeypatch, FakePynvml(gpus))
    rows: list[Check] = []
    with open_nvml() as nvml:
        for i, gpu in enumerate(gpus):
            reads = Reads(nvml.device_by_uuid(gpu.uuid), None)
            reads.read_idle()
            if load:
                reads.read_load()
            reads.read_after()
            label = f"cuda:{i}"
            rows += judge(label, reads.idle, reads.load, reads.after, reads.lost, Thresholds())
    return rows


def row(rows: list[Check], name: str, device: str = "cuda:0") -> Check:
    (found,) = [r for r in rows if r.name == name and r.device == device]
    return found


def verdict(rows: list[Check], name: str, device: str = "cuda:0") -> str:
    return row(rows, name, device).verdict


def test_a_healthy_gpu_passes_every_check(monkeypatch):
    rows = check(monkeypatch, FakeGpu())
    assert [r.name for r in rows] == list(CHECK_NAMES)
    assert {r.name: r.verdict for r in rows} == dict.fromkeys(CHECK_NAMES, PASS)
    assert row(rows, "pcie link width").value == "x16"
    assert row(rows, "nvlink links up").value == "18/18"


def test_a_downgraded_pcie_link_fails_under_load_but_idle_downshift_is_not_a_fault(monkeypatch):
    # idle Gen1 (power saving), Gen5 under load: fine; Gen4 under load: a downgraded link
    rows = check(monkeypatch, FakeGpu(pcie_gen=Steps([1, 5])))
    assert verdict(rows, "pcie link generation") == PASS
    rows = check(monkeypatch, FakeGpu(pcie_gen=Steps([1, 4]), pcie_width=8))
    gen = row(rows, "pcie link generation")
    assert (gen.verdict, gen.value) == (FAIL, "Gen4") and "downgraded" in gen.reason
    assert verdict(rows, "pcie link width") == FAIL
    # only an idle reading: below the maximum is a WARN with the caveat, never a FAIL
    rows = check(monkeypatch, FakeGpu(pcie_gen=1), load=False)
    gen = row(rows, "pcie link generation")
    assert gen.verdict == WARN and "idle" in gen.reason


def test_rising_or_nonzero_ecc_counts(monkeypatch):
    rows = check(monkeypatch, FakeGpu(ecc={"uncorrected/volatile": Steps([0, 2])}))
    unc = row(rows, "ecc uncorrected (volatile)")
    assert (unc.verdict, unc.value) == (FAIL, 2) and "rose from 0 to 2" in unc.reason
    rows = check(monkeypatch, FakeGpu(ecc={"uncorrected/volatile": 3}))
    assert verdict(rows, "ecc uncorrected (volatile)") == FAIL
    rows = check(
        monkeypatch,
        FakeGpu(ecc={"uncorrected/aggregate": 1, "corrected/volatile": Steps([5, 9])}),
    )
    assert verdict(rows, "ecc uncorrected (aggregate)") == WARN
    assert verdict(rows, "ecc corrected (volatile)") == WARN
    assert verdict(rows, "ecc uncorrected (volatile)") == PASS
    rows = check(monkeypatch, FakeGpu(ecc_mode=(NVML_FEATURE_DISABLED, NVML_FEATURE_DISABLED)))
    assert verdict(rows, "ecc mode") == WARN


def test_row_remaps_pending_or_failed_fail_and_retired_pages(monkeypatch):
    rows = check(monkeypatch, FakeGpu(remapped_rows=(0, 1, 1, 0)))
    remap = row(rows, "remapped rows")
    assert remap.verdict == FAIL and "reset" in remap.reason
    assert verdict(check(monkeypatch, FakeGpu(remapped_rows=(0, 0, 0, 1))), "remapped rows") == FAIL
    assert verdict(check(monkeypatch, FakeGpu(remapped_rows=(4, 1, 0, 0))), "remapped rows") == WARN
    pending = FakeGpu(retired_pages_pending=NVML_FEATURE_ENABLED)
    assert verdict(check(monkeypatch, pending), "retired pages") == FAIL
    many = FakeGpu(retired_pages={"sbe": list(range(50)), "dbe": list(range(10))})
    assert verdict(check(monkeypatch, many), "retired pages") == FAIL
    one_dbe = FakeGpu(retired_pages={"sbe": [], "dbe": [0x1000]})
    assert verdict(check(monkeypatch, one_dbe), "retired pages") == WARN
    # Ampere and newer remap rows instead: the page-retirement API is not supported
    ampere = FakeGpu(errors={"nvmlDeviceGetRetiredPages": NVML_ERROR_NOT_SUPPORTED})
    retired = row(check(monkeypatch, ampere), "retired pages")
    assert (retired.verdict, retired.reason) == (NA, "not supported on this GPU")


def test_nvlink_links_and_error_counters(monkeypatch):
    one_down = [NVML_FEATURE_ENABLED] * 18
    one_down[3] = NVML_FEATURE_DISABLED
    peer = FakeGpu(uuid=UUID_B, pci_bus_id="00000000:18:00.0")  # two GPUs: links have a peer
    links = row(check(monkeypatch, FakeGpu(nvlink_states=one_down), peer), "nvlink links up")
    assert (links.verdict, links.value) == (FAIL, "17/18") and "[3]" in links.reason
    none_up = FakeGpu(nvlink_states=[NVML_FEATURE_DISABLED] * 12)
    assert verdict(check(monkeypatch, none_up, peer), "nvlink links up") == WARN
    pcie_card = FakeGpu(errors={"nvmlDeviceGetNvLinkState": NVML_ERROR_NOT_SUPPORTED})
    rows = check(monkeypatch, pcie_card)
    assert verdict(rows, "nvlink links up") == verdict(rows, "nvlink errors") == NA
    rising = FakeGpu(nvlink_errors={5: {"recovery": Steps([0, 1])}})
    assert verdict(check(monkeypatch, rising), "nvlink errors") == FAIL
    old = FakeGpu(nvlink_errors={2: {"replay": 7}})
    errors = row(check(monkeypatch, old), "nvlink errors")
    assert errors.verdict == WARN and "replay 7" in errors.value


def test_power_persistence_temperature_clock_events_and_replays(monkeypatch):
    rows = check(
        monkeypatch,
        FakeGpu(
            enforced_power_limit_mw=500_000,
            persistence_mode=NVML_FEATURE_DISABLED,
            temperature_c=84,
            clocks_event_reasons=Steps([0x1, 0x4 | 0x20]),  # idle; power cap + SW thermal
            pcie_replays=Steps([10, 12]),
        ),
    )
    assert verdict(rows, "power limit") == WARN
    assert verdict(rows, "persistence mode") == WARN
    assert verdict(rows, "temperature (idle)") == WARN
    assert verdict(rows, "clock events (idle)") == PASS
    load = row(rows, "clock events (load)")
    assert load.verdict == WARN and "SwThermalSlowdown" in load.reason
    assert verdict(rows, "pcie replays") == WARN
    rows = check(monkeypatch, FakeGpu(temperature_c=90, clocks_event_reasons=0x8))
    assert verdict(rows, "temperature (idle)") == FAIL  # at the 87 C slowdown threshold
    assert verdict(rows, "clock events (idle)") == FAIL  # HwSlowdown at idle


def test_an_unsupported_call_is_na_with_the_reason_never_fail(monkeypatch):
    gpu = FakeGpu(
        errors={
            "nvmlDeviceGetCurrPcieLinkGeneration": NVML_ERROR_NOT_SUPPORTED,
            "nvmlDeviceGetMaxPcieLinkGeneration": NVML_ERROR_NOT_SUPPORTED,
            "nvmlDeviceGetTotalEccErrors": NVML_ERROR_NOT_SUPPORTED,
            "nvmlDeviceGetRemappedRows": NVML_ERROR_NOT_SUPPORTED,
        }
    )
    rows = check(monkeypatch, gpu)
    for name in ("pcie link generation", "ecc uncorrected (volatile)", "remapped rows"):
        assert (verdict(rows, name), row(rows, name).reason) == (NA, "not supported on this GPU")
    assert FAIL not in {r.verdict for r in rows}


def test_nvml_missing_makes_every_check_na_with_the_reason(monkeypatch):
    install(monkeypatch, FakePynvml([FakeGpu()], init_error=NVML_ERROR_LIBRARY_NOT_FOUND))
    identity = GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132)
    facts = DeviceFacts("cuda", "cuda:0", identity, {"uuid": FakeGpu().uuid})
    nvml, device, reason = open_device(facts)
    assert nvml is None and device is None and "nvmlInit failed" in reason
    rows = unavailable("cuda:0", reason)
    assert [r.name for r in rows] == list(CHECK_NAMES)
    assert {r.verdict for r in rows} == {NA} and all(r.reason == reason for r in rows)


def test_a_gpu_lost_mid_run_fails_and_the_other_is_still_reported(monkeypatch):
    # GPU B answers its idle reads, then falls off the bus while it is under load
    lost = FakeGpu(uuid=UUID_B, temperature_c=FailAfter(40, 1, NVML_ERROR_GPU_IS_LOST))
    rows = check(monkeypatch, FakeGpu(), lost)
    assert {r.verdict for r in rows if r.device == "cuda:0"} == {PASS}
    responds = row(rows, "gpu responds", "cuda:1")
    assert responds.verdict == FAIL and "GPU is lost" in responds.reason
    assert "lost under load" in responds.value
    # what was read before the loss is still judged; the after read never happened
    assert verdict(rows, "ecc uncorrected (volatile)", "cuda:1") == PASS
    assert verdict(rows, "pcie link generation", "cuda:1") == PASS


def test_a_gpu_lost_at_idle_leaves_the_rest_unread(monkeypatch):
    lost = FakeGpu(errors={"nvmlDeviceGetTemperatureV": NVML_ERROR_GPU_IS_LOST})
    rows = check(monkeypatch, lost)
    assert verdict(rows, "gpu responds") == FAIL
    load = row(rows, "clock events (load)")
    assert load.verdict == NA and "lost at idle" in load.reason


def test_a_one_gpu_vm_reports_what_it_cannot_vouch_for_as_na_never_fail(monkeypatch):
    """One H100 of an HGX board in a passthrough VM: the NVLinks report down (no peer) and
    the PCIe link reads Gen4 x8 as the hypervisor presents it, even under load."""
    vm_gpu = FakeGpu(
        nvlink_states=[NVML_FEATURE_DISABLED] * 18,
        pcie_gen=4,
        pcie_width=8,
        virtualization_mode=1,  # NVML_GPU_VIRTUALIZATION_MODE_PASSTHROUGH
    )
    rows = check(monkeypatch, vm_gpu)
    assert not [r for r in rows if r.verdict == FAIL]
    links = row(rows, "nvlink links up")
    assert (links.verdict, links.value) == (NA, "0/18") and "one GPU" in links.reason
    for name, value in (("pcie link generation", "Gen4"), ("pcie link width", "x8")):
        pcie = row(rows, name)
        assert (pcie.verdict, pcie.value) == (NA, value)
        assert "VM (passthrough)" in pcie.reason and "hypervisor" in pcie.reason


def test_on_bare_metal_the_same_readings_still_fail(monkeypatch):
    peer = FakeGpu(uuid=UUID_B, pci_bus_id="00000000:18:00.0")
    metal = FakeGpu(nvlink_states=[NVML_FEATURE_DISABLED] * 17 + [NVML_FEATURE_ENABLED], pcie_gen=4)
    rows = check(monkeypatch, metal, peer)
    assert verdict(rows, "nvlink links up") == FAIL
    assert verdict(rows, "pcie link generation") == FAIL
