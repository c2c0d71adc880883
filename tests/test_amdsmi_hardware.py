"""bench/hardware/amdsmi.py over the scripted fake amdsmi: sentinels, units, matching,
the accumulator's wrap, permissions."""

import pytest
from fake_amdsmi import (
    AMDSMI_STATUS_NO_PERM,
    AMDSMI_STATUS_NOT_SUPPORTED,
    NA,
    UINT16_MAX,
    UINT32_MAX,
    UINT64_MAX,
    FakeAmdGpu,
    FakeAmdsmi,
    install,
    mi300x_vf,
)

from bench.hardware.amdsmi import (
    PERMISSION_HINT,
    AmdsmiUnavailable,
    EnergyTracker,
    device_node_problem,
    known,
    normalize_bdf,
    open_amdsmi,
    physical_hip_id,
    uuid_key,
)


def eight_gpus():
    return [
        FakeAmdGpu(
            bdf=f"0000:{0x0C + 0x10 * i:02x}:00.0",
            uuid=f"{i:02x}ff74a1-0000-1000-80a4-3dfd6a1f3b{i:02x}",
            hip_id=i,
        )
        for i in range(8)
    ]


def test_sentinels_and_na_become_none_with_a_reason():
    for raw in (NA, UINT16_MAX, UINT32_MAX, UINT64_MAX, None):
        value, reason = known(raw, "field")
        assert value is None and reason
    assert known(0, "field") == (0, None)
    assert known(False, "flag") == (False, None)


def test_readings_in_si_units_and_mi300x_quirks(monkeypatch):
    install(monkeypatch, FakeAmdsmi([FakeAmdGpu(current_socket_power=612)]))
    with open_amdsmi() as smi:
        device = smi.devices()[0]
        current, average = device.power_w()
        assert current == (612.0, None)
        assert average[0] is None and "N/A" in average[1]  # MI300X has no average
        clocks, _ = device.gfx_clocks_hz()
        assert len(clocks) == 8 and min(clocks) == 2080e6
        assert device.min_gfx_clock_hz() == (2080e6, None)
        assert device.clock_hz("GFX", "max_clk") == (2100e6, None)
        assert device.temperature_c("HOTSPOT") == (41.0, None)
        assert device.temperature_c("VRAM") == (35.0, None)
        edge, why = device.temperature_c("EDGE")
        assert edge is None and "not supported" in why
        assert device.power_cap_w() == ((750.0, None), (750.0, None))
        assert device.throttle_status()[0] is None  # N/A on MI3x: the violation API instead
        violations, _ = device.violations()
        assert violations["ppt_pwr_percent"] == 0.0
        assert "hbm_thrm_percent" not in violations  # UINT64 max: not counted by firmware
        assert "hbm_thrm_active" not in violations  # "N/A"
        pcie = device.pcie()
        assert pcie["speed_gts"] == (32.0, None) and pcie["width"] == (16.0, None)
        assert device.xgmi_links() == (["U"] * 7, None)
        assert device.ecc_counts()[0] == {"correctable": 0, "uncorrectable": 0, "deferred": 0}
        assert device.compute_units() == (304, None)
        ticks, resolution = device.energy_ticks()[0]
        assert ticks == 1_000_000 and resolution == pytest.approx(15.259)
        assert smi.synthetic_reason and "fake" in smi.synthetic_reason
    assert smi._lib.shutdowns == 1


def test_socket_power_key_of_newer_releases_is_read(monkeypatch):
    install(monkeypatch, FakeAmdsmi([FakeAmdGpu(current_socket_power=NA, socket_power=420)]))
    with open_amdsmi() as smi:
        assert smi.devices()[0].power_w()[0] == (420.0, None)


def test_values_in_another_unit_are_none_not_rescaled(monkeypatch):
    gpu = FakeAmdGpu(power_cap_uw=750, hotspot_c=41_000)  # W and m°C from an older release
    install(monkeypatch, FakeAmdsmi([gpu]))
    with open_amdsmi() as smi:
        device = smi.devices()[0]
        cap, why = device.power_cap_w()[0]
        assert cap is None and "750" in why and "µW" in why
        hot, why = device.temperature_c("HOTSPOT")
        assert hot is None and "41000" in why


def test_fewer_xcds_drop_the_unused_slots_and_none_falls_back_to_clock_info(monkeypatch):
    gpu = FakeAmdGpu(gfxclks_mhz=[1500, 1400], gfx_clk=1450)
    install(monkeypatch, FakeAmdsmi([gpu]))
    with open_amdsmi() as smi:
        device = smi.devices()[0]
        assert device.gfx_clocks_hz() == ([1500e6, 1400e6], None)
        gpu.gfxclks_mhz = []
        assert device.gfx_clocks_hz() == ([1450e6], None)


def test_vf_has_no_energy_accumulator(monkeypatch):
    install(monkeypatch, FakeAmdsmi([mi300x_vf()]))
    with open_amdsmi() as smi:
        device = smi.devices()[0]
        value, reason = device.energy_ticks()
        assert value is None and "not supported" in reason
        assert device.name() == ("AMD Instinct MI300X VF", None)


def test_accumulator_wrap_is_followed_and_a_reset_is_refused():
    tracker = EnergyTracker()
    assert tracker.step(UINT64_MAX - 10) is None
    assert tracker.step(5) is None  # wrapped past 2**64
    assert tracker.total_ticks == 16 and tracker.wraps == 1
    assert "backwards" in tracker.step(1)  # 4 ticks back is a reset, not a wrap
    assert tracker.total_ticks == 16
    small = EnergyTracker(bits=32)
    small.step(UINT32_MAX)
    small.step(99)
    assert small.total_ticks == 100


def test_match_by_bdf_then_uuid_then_hip_id(monkeypatch):
    gpus = eight_gpus()
    install(monkeypatch, FakeAmdsmi(gpus))
    with open_amdsmi() as smi:
        device, how, _ = smi.match(0, None, "00000000:3C:00.0", {})
        assert how == "bdf" and device.handle is gpus[3]
        torch_uuid = "5ff74a1-0000-1000-80a4-3dfd6a1f3b05"  # a layer that dropped a digit
        device, how, notes = smi.match(0, torch_uuid, "0000:ff:00.0", {})
        assert how == "uuid" and device.handle is gpus[5] and "0000:ff:00.0" in notes[0]
        device, how, _ = smi.match(1, None, None, {"HIP_VISIBLE_DEVICES": "6,2"})
        assert how == "hip_id" and device.handle is gpus[2]


def test_visibility_variables_are_translated_and_disagreement_refused():
    env = {"ROCR_VISIBLE_DEVICES": "4,5,6,7", "HIP_VISIBLE_DEVICES": "1,3"}
    assert physical_hip_id(1, env) == (7, None)
    assert physical_hip_id(0, {"CUDA_VISIBLE_DEVICES": "2"}) == (2, None)
    value, reason = physical_hip_id(0, {"HIP_VISIBLE_DEVICES": "0", "CUDA_VISIBLE_DEVICES": "1"})
    assert value is None and "disagree" in reason
    value, reason = physical_hip_id(2, {"HIP_VISIBLE_DEVICES": "0,1"})
    assert value is None and "not in" in reason


def test_index_is_the_last_resort_and_says_so(monkeypatch):
    gpus = eight_gpus()
    for gpu in gpus:
        gpu.errors["amdsmi_get_gpu_enumeration_info"] = AMDSMI_STATUS_NOT_SUPPORTED
    install(monkeypatch, FakeAmdsmi(gpus))
    with open_amdsmi() as smi:
        device, how, notes = smi.match(4, None, None, {})
        assert device.handle is gpus[4] and how.startswith("index") and notes


def test_no_permission_says_render_and_video_groups_without_sudo(monkeypatch):
    install(monkeypatch, FakeAmdsmi([FakeAmdGpu()], init_error=AMDSMI_STATUS_NO_PERM))
    with pytest.raises(AmdsmiUnavailable) as info:
        open_amdsmi()
    assert "render and video groups" in str(info.value) and "sudo" not in str(info.value)
    gpu = FakeAmdGpu(errors={"amdsmi_get_power_info": AMDSMI_STATUS_NO_PERM})
    install(monkeypatch, FakeAmdsmi([gpu]))
    with open_amdsmi() as smi:
        value, reason = smi.devices()[0].power_w()[0]
        assert value is None and PERMISSION_HINT in reason


def test_device_nodes_not_accessible_are_named(tmp_path):
    kfd = tmp_path / "kfd"
    kfd.write_text("")
    kfd.chmod(0)
    problem = device_node_problem(kfd, tmp_path / "dri")
    import os

    if os.geteuid() == 0:  # root reads everything
        assert problem is None
    else:
        assert str(kfd) in problem


def test_missing_module_is_one_line_with_what_to_do(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "amdsmi", None)  # import amdsmi raises ImportError
    with pytest.raises(AmdsmiUnavailable) as info:
        open_amdsmi()
    assert "pip install amdsmi" in str(info.value) and "\n" not in str(info.value)


def test_bdf_and_uuid_spellings():
    assert normalize_bdf("00000000:0C:00.0") == "0000:0c:00.0"
    assert normalize_bdf("0c:00.0") == "0000:0c:00.0"
    with pytest.raises(ValueError):
        normalize_bdf("gpu0")
    assert uuid_key("GPU-8dff74a1-0000-1000-80a4-3dfd6a1f3b7c") == uuid_key(
        "8DFF74A100001000-80a43dfd6a1f3b7c"
    )
