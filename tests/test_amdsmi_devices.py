"""The ROCm device path on CPU: the capability table, gcn arch names, the ROCm facts
(BLAS library, TunableOp, ROCm version, NUMA balancing), TunableOp kept out of timed windows,
and the environment record of an MI300X through the fake amdsmi."""

import contextlib
from types import SimpleNamespace

import pytest
import torch
from clock_backend import ClockBackend, FakeClock, ScriptedCall
from fake_amdsmi import AMDSMI_STATUS_NO_PERM, FakeAmdGpu, FakeAmdsmi, install, mi300x_vf

from bench.devices import rocm
from bench.devices.base import CpuIdentity, DeviceFacts, GpuIdentity
from bench.devices.capabilities import capabilities_of
from bench.devices.cuda import gcn_arch
from bench.devices.environment import capture_environment
from bench.measuring.timing import Policy, measure


def amd(arch, name="AMD Instinct MI300X", cus=304):
    return GpuIdentity("amd", name, "9.4", cus, gcn_arch=arch)


CPU = CpuIdentity(None, "x86_64", frozenset(), 2, 2, None, "none")


@pytest.mark.parametrize(
    ("identity", "fp8", "tf32", "cudnn"),
    [
        (amd("gfx942"), "e4m3fnuz", True, False),
        (amd("gfx950", "AMD Instinct MI355X", 256), "e4m3fn", False, False),
        (amd("gfx90a", "AMD Instinct MI250X", 220), None, False, False),
        (amd(None), None, False, False),
        (GpuIdentity("nvidia", "NVIDIA H100", "9.0", 132), "e4m3fn", True, True),
        (GpuIdentity("nvidia", "NVIDIA A100", "8.0", 108), None, True, True),
        (CPU, "e4m3fn", False, False),  # torch computes fp8 on a CPU; no fp8 unit
    ],
)
def test_capability_table(identity, fp8, tf32, cudnn):
    caps = capabilities_of(identity)
    assert caps.fp8_format == fp8 and caps.tf32 == tf32
    assert ("cudnn" in caps.sdpa_backends()) == cudnn
    if fp8 is None:
        assert caps.why["fp8"]  # every "no" carries its reason
    if not tf32:
        assert caps.why["tf32"]


def test_gcn_arch_drops_feature_flags():
    assert gcn_arch("gfx942:sramecc+:xnack-") == "gfx942"
    assert gcn_arch("gfx950") == "gfx950"
    assert gcn_arch("") is None and gcn_arch(None) is None


def test_blas_library_and_tunableop_on_this_cpu_build_are_none_with_reasons():
    value, reason = rocm.blas_library(torch)
    assert value is None and "no GPU" in reason
    value, reason = rocm.tunableop_enabled(torch, {})
    assert value is None and reason
    assert rocm.tunableop_enabled(torch, {"PYTORCH_TUNABLEOP_ENABLED": "1"}) == (True, None)


def rocm_build(archs, preferred="Default", hip="6.4.43482"):
    """What blas_library reads of a ROCm build of torch (none runs on this CPU machine)."""
    props = [SimpleNamespace(gcnArchName=a) for a in archs]
    return SimpleNamespace(
        version=SimpleNamespace(hip=hip),
        backends=SimpleNamespace(
            cuda=SimpleNamespace(preferred_blas_library=lambda: SimpleNamespace(name=preferred))
        ),
        cuda=SimpleNamespace(
            is_available=lambda: True,
            device_count=lambda: len(props),
            get_device_properties=lambda i: props[i],
        ),
    )


@pytest.mark.parametrize(
    ("archs", "preferred", "hip", "expected"),
    [
        (["gfx942:sramecc+:xnack-"] * 8, "Default", "6.4.43482", "hipBLASLt"),
        (["gfx942", "gfx1100"], "Default", "6.4.43482", "rocBLAS"),  # a mixed node
        (["gfx950"], "Default", "6.4.43482", "rocBLAS"),  # gfx950 needs ROCm 6.5
        (["gfx950"], "Default", "7.0.51831", "hipBLASLt"),
        (["gfx942"], "Cublas", "6.4.43482", "rocBLAS"),  # TORCH_BLAS_PREFER_HIPBLASLT=0
        (["gfx942"], "Ck", "6.4.43482", "CK"),
    ],
)
def test_blas_library_on_rocm(archs, preferred, hip, expected):
    assert rocm.blas_library(rocm_build(archs, preferred, hip)) == (expected, None)


def test_fa_library_on_rocm_and_cuda():
    build = rocm_build(["gfx942"])
    build.backends.cuda.preferred_rocm_fa_library = lambda: SimpleNamespace(name="Default")
    assert rocm.fa_library(build) == ("AOTriton", None)
    build.backends.cuda.preferred_rocm_fa_library = lambda: SimpleNamespace(name="Ck")
    assert rocm.fa_library(build) == ("CK", None)
    value, reason = rocm.fa_library(torch)  # this CPU build is no ROCm build
    assert value is None and "not a ROCm build" in reason


class _Tunable:
    """torch.cuda.tunable as a ROCm build has it (this CPU build lacks the C hooks)."""

    def __init__(self, enabled, tuning):
        self.enabled, self.tuning, self.log = enabled, tuning, []

    def is_enabled(self):
        return self.enabled

    def tuning_is_enabled(self):
        return self.tuning

    def tuning_enable(self, value):
        self.log.append(value)
        self.tuning = value


def rocm_torch(tunable):
    return SimpleNamespace(
        cuda=SimpleNamespace(tunable=tunable), version=SimpleNamespace(hip="6.4")
    )


def test_tuning_is_frozen_inside_and_restored_after():
    tunable = _Tunable(enabled=True, tuning=True)
    with rocm.tuning_frozen(rocm_torch(tunable)) as frozen:
        assert frozen and tunable.tuning is False
    assert tunable.tuning is True and tunable.log == [False, True]
    off = _Tunable(enabled=False, tuning=True)
    with rocm.tuning_frozen(rocm_torch(off)) as frozen:
        assert not frozen and off.log == []
    with rocm.tuning_frozen(torch) as frozen:  # this CPU build: no TunableOp at all
        assert not frozen


class TuningBackend(ClockBackend):
    """A backend whose guard records when timing freezes tuning, relative to the calls."""

    def __init__(self, clock, call):
        super().__init__(clock)
        self.call, self.frozen_at = call, []

    def tuning_frozen(self):
        @contextlib.contextmanager
        def guard():
            self.frozen_at.append(self.call.calls)
            yield True

        return guard()


def test_timing_freezes_tuning_after_the_untimed_first_call():
    clock = FakeClock()
    call = ScriptedCall(clock, lambda i: 1e-3)
    backend = TuningBackend(clock, call)
    measure(call, backend, Policy(warmup_min_s=0.05, warmup_max_s=0.5), clock=clock)
    assert backend.frozen_at == [1]  # only the first call ran unfrozen


def test_rocm_version_and_numa_balancing_files(tmp_path):
    (tmp_path / ".info").mkdir()
    (tmp_path / ".info" / "version").write_text("6.4.1-120\n")
    assert rocm.rocm_version({"ROCM_PATH": str(tmp_path)}) == ("6.4.1", None)
    value, reason = rocm.rocm_version({"ROCM_PATH": str(tmp_path / "none")})
    assert value is None and "not readable" in reason
    numa = tmp_path / "numa_balancing"
    numa.write_text("1\n")
    assert rocm.numa_balancing(numa) == (True, None)
    numa.write_text("0\n")
    assert rocm.numa_balancing(numa) == (False, None)
    assert rocm.numa_balancing(tmp_path / "absent")[0] is None


def mi300x_facts(name="AMD Instinct MI300X"):
    extra = {"index": 0, "uuid": None, "pci_bus_id": "00000000:0C:00.0"}
    return DeviceFacts("cuda", "cuda:0", amd("gfx942", name), extra)


def capture(facts, tmp_path, **kwargs):
    return capture_environment(facts, project_root=tmp_path, environ={}, **kwargs)


def test_environment_of_an_mi300x_through_the_fake(tmp_path, monkeypatch):
    install(monkeypatch, FakeAmdsmi([FakeAmdGpu()]))
    env = capture(mi300x_facts(), tmp_path)
    assert env["gpu"]["vendor"] == "amd" and env["gpu"]["gcn_arch"] == "gfx942"
    assert env["gpu"]["sm_count"] == 304 and env["gpu"]["fp8_format"] == "e4m3fnuz"
    smi = env["amdsmi"]
    assert smi["matched_by"] == "bdf" and smi["power_cap_w"] == 750.0
    assert smi["max_gfx_clock_hz"] == 2100e6 and smi["compute_units"] == 304
    assert smi["ecc_errors"] == {"correctable": 0, "uncorrectable": 0, "deferred": 0}
    assert smi["compute_partition"] == "SPX" and "fake" in smi["synthetic_reason"]
    for key in ("rocm_version", "blas_library", "tunableop_enabled", "collective_library"):
        assert key in env["software"]
        assert env["software"][key] is not None or env["missing"][f"software.{key}"]
    assert "numa_balancing" in env["host"]
    assert env["nvml"]["matched_by"] is None  # NVML describes NVIDIA GPUs


def test_environment_says_why_amdsmi_is_missing(tmp_path, monkeypatch):
    install(monkeypatch, FakeAmdsmi([FakeAmdGpu()], init_error=AMDSMI_STATUS_NO_PERM))
    env = capture(mi300x_facts(), tmp_path)
    assert env["amdsmi"]["power_cap_w"] is None
    assert "render and video groups" in env["missing"]["amdsmi.power_cap_w"]
    env = capture(DeviceFacts("cpu", "cpu", CPU), tmp_path)
    assert "AMD GPUs" in env["missing"]["amdsmi.matched_by"]
    assert "not a GPU" in env["missing"]["gpu.fp8_format"]


def test_environment_of_a_vf(tmp_path, monkeypatch):
    install(monkeypatch, FakeAmdsmi([mi300x_vf()]))
    env = capture(mi300x_facts("AMD Instinct MI300X VF"), tmp_path)
    assert env["amdsmi"]["name"] == "AMD Instinct MI300X VF"


def test_flush_covers_the_infinity_cache_on_mi300():
    from bench.devices.flush import flush_size

    size = flush_size(SimpleNamespace(L2_cache_size=4 * 2**20), "amd")
    assert size.nbytes >= 2 * 256 * 2**20


def test_session_marks_runs_a_fake_answered_for(tmp_path):
    from bench.execution.session import synthetic_marks

    meta = {
        "power_source": {"name": "none"},
        "environment": {"amdsmi": {"synthetic_reason": "fake"}},
    }
    assert synthetic_marks(meta) == {"synthetic": True, "synthetic_reason": "fake"}
    assert synthetic_marks({"power_source": {}, "environment": {}}) == {}


def test_dtypes_an_amd_gpu_must_run_follow_the_capability_table():
    from bench.commands.plausibility import supported_dtypes

    assert supported_dtypes("9.4", amd("gfx942")) == ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")
    assert "tf32" not in supported_dtypes("9.5", amd("gfx950")) and "fp8" in supported_dtypes(
        "9.5", amd("gfx950")
    )
    assert "fp8" not in supported_dtypes("9.0", amd("gfx90a"))
