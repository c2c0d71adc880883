"""devices.environment.capture_environment on this machine (real path) and with a scripted NVML."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from fake_pynvml import (
    NVML_DEVICE_MIG_ENABLE,
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_FEATURE_DISABLED,
    FakeGpu,
    FakePynvml,
    install,
)

from bench.devices.base import CpuIdentity, DeviceFacts, GpuIdentity
from bench.devices.environment import capture_environment, format_environment
from bench.hardware.nvml import NvmlUnavailable, open_nvml
from bench.versions import METHOD_VERSION, SCHEMA_VERSION

GPU_FIELDS = (
    "vendor",
    "name",
    "uuid",
    "pci_bus_id",
    "index",
    "compute_capability",
    "gcn_arch",
    "sm_count",
    "l2_bytes",
    "memory_bytes",
)
NVML_DEVICE_FIELDS = (
    "matched_by",
    "power_limit_enforced_w",
    "power_limit_default_w",
    "persistence_mode",
    "ecc_enabled",
    "mig_enabled",
    "vbios_version",
    "max_sm_clock_hz",
    "max_mem_clock_hz",
)
NVML_FIELDS = ("driver_version", "cuda_driver_version", *NVML_DEVICE_FIELDS)

UUID_TARGET = "GPU-12345678-abcd-ef01-2345-6789abcdef01"
UUID_OTHER = "GPU-87654321-abcd-ef01-2345-6789abcdef02"


def cpu_facts(model: str | None = "Test CPU 9000") -> DeviceFacts:
    identity = CpuIdentity(
        model=model,
        arch="x86_64",
        flags=frozenset({"avx2"}),
        physical_cores=4,
        threads=4,
        max_clock_hz=3.0e9,
        clock_source="test",
    )
    return DeviceFacts(kind="cpu", label="cpu", identity=identity)


def gpu_facts(**extra: Any) -> DeviceFacts:
    identity = GpuIdentity(
        vendor="nvidia",
        name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        sm_count=132,
        memory_bytes=85_028_896_768,
    )
    defaults = {
        "uuid": UUID_TARGET.removeprefix("GPU-"),  # torch's str(props.uuid) has no prefix
        "pci_bus_id": "0000:3B:00.0",
        "l2_bytes": 52_428_800,
        "index": 0,
    }
    return DeviceFacts(kind="cuda", label="cuda:0", identity=identity, extra={**defaults, **extra})


def fake_gpus(target_errors: dict[str, int] | None = None) -> list[FakeGpu]:
    """The run's GPU listed second, so index-based matching would pick the wrong one."""
    return [
        FakeGpu(
            uuid=UUID_OTHER,
            pci_bus_id="00000000:17:00.0",
            enforced_power_limit_mw=400_000,
            default_power_limit_mw=400_000,
            vbios_version="wrong",
        ),
        FakeGpu(
            uuid=UUID_TARGET,
            pci_bus_id="00000000:3B:00.0",
            enforced_power_limit_mw=650_000,
            default_power_limit_mw=700_000,
            ecc_mode=(NVML_FEATURE_DISABLED, NVML_FEATURE_DISABLED),
            mig_mode=(NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE),
            vbios_version="96.00.99.00.01",
            max_sm_clock_mhz=1980,
            errors=dict(target_errors or {}),
        ),
    ]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and key != "missing":
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def assert_consistent(env: dict[str, Any]) -> None:
    """Every None has a reason, every reason belongs to a None, and JSON round-trips."""
    flat = flatten(env)
    missing = flat.pop("missing")
    nones = {path for path, value in flat.items() if value is None}
    assert nones == set(missing)
    assert all(isinstance(reason, str) and reason for reason in missing.values())
    assert json.loads(json.dumps(env)) == env


def capture(facts: DeviceFacts | None, tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("environ", {})
    return capture_environment(facts, project_root=tmp_path, **kwargs)


@pytest.fixture(autouse=True)
def _no_parent_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep git from finding a repository above tmp_path."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


def real_nvml_reason() -> str | None:
    """Why NVML cannot open on this machine, or None where it can (a GPU host)."""
    try:
        open_nvml().close()
    except NvmlUnavailable as err:
        return str(err)
    return None


# the real path on this machine


@pytest.mark.parametrize("facts", [None, cpu_facts()], ids=["no-facts", "cpu"])
def test_real_path_leaves_every_gpu_and_nvml_field_none_with_a_reason(
    facts: DeviceFacts | None, tmp_path: Path
) -> None:
    env = capture(facts, tmp_path)
    assert_consistent(env)
    for field in GPU_FIELDS:
        assert env["gpu"][field] is None
        assert env["missing"][f"gpu.{field}"]
    nvml_reason = real_nvml_reason()
    checked = NVML_FIELDS if nvml_reason is not None else NVML_DEVICE_FIELDS
    for field in checked:
        assert env["nvml"][field] is None
        expected = nvml_reason if nvml_reason is not None else "no GPU in this run"
        assert env["missing"][f"nvml.{field}"] == expected


def test_real_path_records_versions_and_software(tmp_path: Path) -> None:
    env = capture(cpu_facts(), tmp_path)
    assert env["software"]["torch"] == torch.__version__
    assert env["schema_version"] == SCHEMA_VERSION
    assert env["method_version"] == METHOD_VERSION
    assert env["captured_at"].endswith("Z")
    assert env["host"]["hostname"]
    assert env["host"]["python"]
    assert env["device"] == {"kind": "cpu", "label": "cpu"}
    if not torch.cuda.is_available():
        assert env["software"]["cudnn"] is None
        assert env["missing"]["software.cudnn"] == "torch.cuda.is_available() is False"
        assert env["missing"]["software.nccl"] == "torch.cuda.is_available() is False"
    if torch.version.cuda is None:
        assert env["missing"]["software.torch_cuda"] == "this torch build has no CUDA"


def test_cpu_model_comes_from_the_cpu_identity(tmp_path: Path) -> None:
    assert capture(cpu_facts("Test CPU 9000"), tmp_path)["cpu"]["model"] == "Test CPU 9000"
    env = capture(cpu_facts(None), tmp_path)
    assert env["cpu"]["model"] is None
    assert "could not read" in env["missing"]["cpu.model"]


def test_cpu_model_is_read_from_the_host_without_a_cpu_identity(tmp_path: Path) -> None:
    env = capture(None, tmp_path)
    assert env["cpu"]["model"] or env["missing"]["cpu.model"]


# environment variables


def test_environment_variables_from_an_injected_environ(tmp_path: Path) -> None:
    environ = {
        "NCCL_DEBUG": "INFO",
        "NCCL_IB_DISABLE": "1",
        "OMP_NUM_THREADS": "4",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "HOME": "/root",
        "RCCL_MSCCL_ENABLE": "0",
        "HSA_NO_SCRATCH_RECLAIM": "1",
        "PYTORCH_TUNABLEOP_TUNING": "0",
    }
    env = capture(None, tmp_path, environ=environ)
    assert env["env_vars"] == {
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "PYTORCH_TUNABLEOP_ENABLED": None,
        "CUDA_VISIBLE_DEVICES": None,
        "HIP_VISIBLE_DEVICES": None,
        "ROCR_VISIBLE_DEVICES": None,
        "TORCH_BLAS_PREFER_HIPBLASLT": None,
        "OMP_NUM_THREADS": "4",
        "HSA_NO_SCRATCH_RECLAIM": "1",
        "NCCL_DEBUG": "INFO",
        "NCCL_IB_DISABLE": "1",
        "PYTORCH_TUNABLEOP_TUNING": "0",
        "RCCL_MSCCL_ENABLE": "0",
    }
    assert env["missing"]["env_vars.CUDA_VISIBLE_DEVICES"] == "not set"
    assert_consistent(env)


# git


def test_git_outside_a_repository_is_none_with_a_reason(tmp_path: Path) -> None:
    env = capture(None, tmp_path)
    assert env["git"] == {"sha": None, "dirty": None}
    assert "git rev-parse HEAD failed" in env["missing"]["git.sha"]
    assert env["missing"]["git.dirty"] == env["missing"]["git.sha"]


def test_git_without_git_installed_is_none_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    env = capture(None, tmp_path)
    assert env["git"]["sha"] is None
    assert env["missing"]["git.sha"] == "git is not installed (not on PATH)"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_sha_and_dirty_flag_in_a_repository(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    env = capture(None, tmp_path)
    assert env["git"] == {"sha": git("rev-parse", "HEAD"), "dirty": False}
    assert len(env["git"]["sha"]) == 40

    (tmp_path / "a.txt").write_text("changed\n")
    assert capture(None, tmp_path)["git"]["dirty"] is True


# a GPU with a scripted NVML


def test_gpu_fields_come_from_facts_and_nvml_is_matched_by_uuid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install(monkeypatch, FakePynvml(fake_gpus()))
    env = capture(gpu_facts(), tmp_path)
    assert env["gpu"] == {
        "vendor": "nvidia",
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": UUID_TARGET.removeprefix("GPU-"),
        "pci_bus_id": "0000:3B:00.0",
        "index": 0,
        "compute_capability": "9.0",
        "gcn_arch": None,
        "sm_count": 132,
        "fp8_format": "e4m3fn",
        "l2_bytes": 52_428_800,
        "memory_bytes": 85_028_896_768,
    }
    assert env["nvml"] == {
        "driver_version": "550.54.15",
        "cuda_driver_version": "12.4",
        "matched_by": "uuid",
        "power_limit_enforced_w": 650.0,
        "power_limit_default_w": 700.0,
        "persistence_mode": True,
        "ecc_enabled": False,
        "mig_enabled": True,
        "vbios_version": "96.00.99.00.01",
        "max_sm_clock_hz": 1980e6,
        "max_mem_clock_hz": 2619e6,
    }
    assert "nvmlDeviceGetHandleByPciBusId" not in fake.calls  # the UUID was enough
    assert fake.initialized == 0  # the session was shut down
    assert_consistent(env)


def test_nvml_falls_back_to_the_pci_bus_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakePynvml(fake_gpus()))
    env = capture(gpu_facts(uuid=None), tmp_path)
    assert env["nvml"]["matched_by"] == "pci_bus_id"
    assert env["nvml"]["vbios_version"] == "96.00.99.00.01"
    assert_consistent(env)


def test_unmatched_gpu_leaves_nvml_device_fields_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, FakePynvml(fake_gpus()))
    facts = gpu_facts(uuid="00000000-0000-0000-0000-00000000dead", pci_bus_id="0000:99:00.0")
    env = capture(facts, tmp_path)
    assert env["nvml"]["driver_version"] == "550.54.15"
    for field in NVML_DEVICE_FIELDS:
        assert env["nvml"][field] is None
        assert "no NVML device" in env["missing"][f"nvml.{field}"]
    assert_consistent(env)


def test_unsupported_nvml_fields_are_none_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors = {"nvmlDeviceGetEccMode": NVML_ERROR_NOT_SUPPORTED}
    install(monkeypatch, FakePynvml(fake_gpus(errors)))
    env = capture(gpu_facts(), tmp_path)
    assert env["nvml"]["ecc_enabled"] is None
    assert env["missing"]["nvml.ecc_enabled"] == "not supported on this GPU"
    assert env["nvml"]["power_limit_enforced_w"] == 650.0
    assert_consistent(env)


def test_lost_gpu_during_capture_is_recorded_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors = {"nvmlDeviceGetMigMode": NVML_ERROR_GPU_IS_LOST}
    fake = install(monkeypatch, FakePynvml(fake_gpus(errors)))
    env = capture(gpu_facts(), tmp_path)
    assert env["nvml"]["ecc_enabled"] is False  # read before the GPU was lost
    assert env["nvml"]["mig_enabled"] is None
    assert "GPU is lost" in env["missing"]["nvml.mig_enabled"]
    assert fake.initialized == 0
    assert_consistent(env)


def test_injected_opener_is_used(tmp_path: Path) -> None:
    def refuse() -> Any:
        raise NvmlUnavailable("scripted: no NVML")

    env = capture(gpu_facts(), tmp_path, nvml_opener=refuse)
    assert env["missing"]["nvml.power_limit_enforced_w"] == "scripted: no NVML"


# rendering


def test_format_environment_shows_values_and_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, FakePynvml(fake_gpus()))
    text = format_environment(capture(gpu_facts(), tmp_path, environ={"NCCL_DEBUG": "WARN"}))
    lines = text.splitlines()
    assert any(line.split() == ["nvml.power_limit_enforced_w", "650.0"] for line in lines)
    assert any(line.split() == ["nvml.ecc_enabled", "no"] for line in lines)
    assert any(line.split() == ["env_vars.NCCL_DEBUG", "WARN"] for line in lines)
    assert any(line.split() == ["env_vars.OMP_NUM_THREADS", "—", "not", "set"] for line in lines)
    assert not any(line.startswith("missing") for line in lines)
    # two columns: every value starts at the same offset
    offsets = {len(line) - len(line.split("  ", 1)[1].lstrip()) for line in lines}
    assert len(offsets) == 1
