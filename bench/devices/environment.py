"""Environment capture: one JSON-able dict per run that says where the numbers came from.

Every result must be traceable to its driver, CUDA, torch, power limit, clocks and code, so
that comparisons across machines and nights are honest. The rule of the project holds here:
a value that is not known is None, and the reason goes into `missing[field_path]`; nothing is
filled in with a guess. Nothing runs at import time; torch and pynvml are imported lazily.

Layout (sections are nested dicts; field paths in `missing` are dotted, e.g. "nvml.ecc_enabled"):
captured_at, schema_version, method_version, host, cpu, software, device, gpu, nvml, amdsmi,
env_vars, git, missing. On ROCm `software.nccl` is RCCL's version (torch.cuda.nccl answers
for RCCL there), `gpu.sm_count` counts CUs, and `amdsmi` is what `nvml` is on NVIDIA.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.devices import rocm
from bench.devices.base import CpuIdentity, DeviceFacts, GpuIdentity
from bench.devices.capabilities import capabilities_of
from bench.hardware.amdsmi import (
    Amdsmi,
    AmdsmiCallFailed,
    AmdsmiDevice,
    AmdsmiUnavailable,
    open_amdsmi,
)
from bench.hardware.nvml import Nvml, NvmlCallFailed, NvmlDevice, NvmlUnavailable, open_nvml
from bench.versions import METHOD_VERSION, SCHEMA_VERSION

# Variables that change what is measured; those with RECORDED_ENV_PREFIXES are added by prefix.
RECORDED_ENV_VARS = (
    "CUBLAS_WORKSPACE_CONFIG",
    "PYTORCH_TUNABLEOP_ENABLED",
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "TORCH_BLAS_PREFER_HIPBLASLT",
    "OMP_NUM_THREADS",
)
RECORDED_ENV_PREFIXES = (
    "NCCL_",
    "RCCL_",
    "MSCCL",
    "HSA_",
    "HIP_FORCE_",
    "HIPBLASLT_",
    "ROCBLAS_",
    "PYTORCH_TUNABLEOP_",
    "PYTORCH_ROCM_",
    "TORCH_ROCM_",
    "GPU_MAX_HW_QUEUES",
    "AMDSMI_",
)
# amdsmi fields read per device: (field, getter).
_AMDSMI_DEVICE_FIELDS: tuple[tuple[str, Callable[[AmdsmiDevice], tuple[Any, str | None]]], ...] = (
    ("name", AmdsmiDevice.name),
    ("power_cap_w", lambda d: d.power_cap_w()[0]),
    ("power_cap_default_w", lambda d: d.power_cap_w()[1]),
    ("max_gfx_clock_hz", lambda d: d.clock_hz("GFX", "max_clk")),
    ("max_mem_clock_hz", lambda d: d.clock_hz("MEM", "max_clk")),
    ("compute_units", AmdsmiDevice.compute_units),
    ("compute_partition", AmdsmiDevice.compute_partition),
    ("ecc_errors", AmdsmiDevice.ecc_counts),
    ("vbios_version", AmdsmiDevice.vbios_version),
    ("driver_version", AmdsmiDevice.driver_version),
)
CUBLAS_DISTRIBUTIONS = ("nvidia-cublas-cu12", "nvidia-cublas-cu13", "nvidia-cublas")
GIT_TIMEOUT_S = 5.0

# NVML fields read per device: (field, NvmlDevice getter).
_NVML_DEVICE_FIELDS: tuple[tuple[str, Callable[[NvmlDevice], tuple[Any, str | None]]], ...] = (
    ("power_limit_enforced_w", NvmlDevice.power_limit_w),
    ("power_limit_default_w", NvmlDevice.default_power_limit_w),
    ("persistence_mode", NvmlDevice.persistence_mode),
    ("ecc_enabled", NvmlDevice.ecc_mode),
    ("mig_enabled", NvmlDevice.mig_mode),
    ("vbios_version", NvmlDevice.vbios_version),
    ("max_sm_clock_hz", NvmlDevice.max_sm_clock_hz),
    ("max_mem_clock_hz", NvmlDevice.max_mem_clock_hz),
)
_GPU_FIELDS = (
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


class _Record:
    """Nested fields plus the `missing` map; put() keeps the two consistent."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.missing: dict[str, str] = {}

    def put(self, path: str, value: Any, reason: str | None = None) -> None:
        """Set data[a][b] for path "a.b"; a None value must come with its reason."""
        *sections, key = path.split(".")
        target = self.data
        for section in sections:
            target = target.setdefault(section, {})
        target[key] = value
        if value is None:
            if not reason:
                raise ValueError(f"{path} is None without a reason")
            self.missing[path] = reason

    def put_reading(self, path: str, reading: tuple[Any, str | None]) -> None:
        self.put(path, reading[0], reading[1])

    def result(self) -> dict[str, Any]:
        return {**self.data, "missing": dict(self.missing)}


def capture_environment(
    facts: DeviceFacts | None,
    *,
    project_root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    nvml_opener: Callable[[], Nvml] = open_nvml,
    amdsmi_opener: Callable[[], Amdsmi] = open_amdsmi,
) -> dict[str, Any]:
    """Describe this machine, its software, the device in `facts`, and the code's git state.

    `project_root` defaults to the checkout that holds this file; `environ` to os.environ;
    `nvml_opener` and `amdsmi_opener` are injectable so tests can script them. NVML devices
    are matched by UUID, then PCI bus id, never by index (CUDA and NVML number GPUs
    differently); amdsmi devices by BDF, UUID, then HIP id.
    """
    record = _Record()
    record.put("captured_at", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    record.put("schema_version", SCHEMA_VERSION)
    record.put("method_version", METHOD_VERSION)
    environ = os.environ if environ is None else environ
    _capture_host(record)
    _capture_cpu(record, facts)
    _capture_software(record, environ)
    _capture_device(record, facts)
    _capture_nvml(record, facts, nvml_opener)
    _capture_amdsmi(record, facts, amdsmi_opener, environ)
    _capture_env_vars(record, environ)
    _capture_git(record, project_root or Path(__file__).resolve().parents[2])
    return record.result()


def _capture_host(record: _Record) -> None:
    record.put("host.hostname", socket.gethostname())
    record.put("host.os", f"{platform.system()} {platform.release()}".strip())
    record.put("host.platform", platform.platform())
    record.put("host.machine", platform.machine())
    record.put("host.python", platform.python_version())
    record.put_reading("host.numa_balancing", rocm.numa_balancing())


def _capture_cpu(record: _Record, facts: DeviceFacts | None) -> None:
    if facts is not None and isinstance(facts.identity, CpuIdentity):
        model = facts.identity.model
        record.put("cpu.model", model, "the cpu backend could not read the model name")
        return
    model, reason = _read_cpu_model()
    record.put("cpu.model", model, reason)


def _read_cpu_model() -> tuple[str | None, str | None]:
    """The CPU model from /proc/cpuinfo "model name", else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "model name" and value.strip():
                    return value.strip(), None
    except OSError:
        pass  # not Linux, or no procfs: platform.processor() is the next source
    processor = platform.processor()
    if processor:
        return processor, None
    return None, "no 'model name' in /proc/cpuinfo and platform.processor() is empty"


def _capture_software(record: _Record, environ: Mapping[str, str]) -> None:
    """torch and the libraries it runs on; each None carries the reason it is unknown."""
    try:
        import torch
    except ImportError as err:
        reason = f"torch is not importable: {err}"
        for field in (*_TORCH_SOFTWARE_FIELDS, "rocm_version", "rocm_fa_library"):
            record.put(f"software.{field}", None, reason)
        _capture_cublas(record)
        return
    record.put("software.torch", str(torch.__version__))
    record.put("software.torch_cuda", torch.version.cuda, "this torch build has no CUDA")
    record.put("software.torch_hip", getattr(torch.version, "hip", None), "not a ROCm build")
    if rocm.is_rocm(torch):
        record.put_reading("software.rocm_version", rocm.rocm_version(environ, torch))
    else:
        record.put("software.rocm_version", None, "not a ROCm build")
    record.put_reading("software.rocm_fa_library", rocm.fa_library(torch))
    if torch.cuda.is_available():
        cudnn = torch.backends.cudnn.version()
        record.put("software.cudnn", None if cudnn is None else str(cudnn), "cuDNN not found")
        record.put_reading("software.nccl", _nccl_version(torch))
        record.put_reading("software.blas_library", rocm.blas_library(torch))
        record.put_reading("software.tunableop_enabled", rocm.tunableop_enabled(torch, environ))
    else:
        reason = "torch.cuda.is_available() is False"
        for field in ("cudnn", "nccl", "blas_library", "tunableop_enabled"):
            record.put(f"software.{field}", None, reason)
    record.put_reading("software.collective_library", _collective_library(torch))
    _capture_cublas(record)


_TORCH_SOFTWARE_FIELDS = (
    "torch",
    "torch_cuda",
    "torch_hip",
    "cudnn",
    "nccl",
    "blas_library",
    "tunableop_enabled",
    "collective_library",
)


def _collective_library(torch: Any) -> tuple[str | None, str | None]:
    """What the `nccl` process-group backend is here (RCCL on ROCm), else gloo, else why not."""
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available():
        return None, "torch.distributed is not available in this build"
    if torch.cuda.is_available() and dist.is_nccl_available():
        return ("RCCL" if rocm.is_rocm(torch) else "NCCL"), None
    if dist.is_gloo_available():
        return "gloo", None
    return None, "neither NCCL/RCCL nor gloo is built into this torch"


def _nccl_version(torch: Any) -> tuple[str | None, str | None]:
    try:
        version = torch.cuda.nccl.version()
    except (AttributeError, RuntimeError) as err:
        return None, f"torch.cuda.nccl.version() failed: {err}"
    if isinstance(version, tuple):
        return ".".join(str(part) for part in version), None
    return str(version), None


def _capture_cublas(record: _Record) -> None:
    """cuBLAS from the NVIDIA wheels torch depends on; a system cuBLAS has no version here."""
    for dist in CUBLAS_DISTRIBUTIONS:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        record.put("software.cublas", version)
        record.put("software.cublas_dist", dist)
        return
    reason = f"none of {', '.join(CUBLAS_DISTRIBUTIONS)} is installed"
    record.put("software.cublas", None, reason)
    record.put("software.cublas_dist", None, reason)


def _capture_device(record: _Record, facts: DeviceFacts | None) -> None:
    """The device of the run; GPU fields from facts.identity and facts.extra (CudaBackend)."""
    if facts is None:
        for field in ("kind", "label"):
            record.put(f"device.{field}", None, "no device facts were given")
        for field in (*_GPU_FIELDS, "fp8_format"):
            record.put(f"gpu.{field}", None, "no device facts were given")
        return
    record.put("device.kind", facts.kind)
    record.put("device.label", facts.label)
    identity = facts.identity
    if not isinstance(identity, GpuIdentity):
        for field in (*_GPU_FIELDS, "fp8_format"):
            record.put(f"gpu.{field}", None, f"the device is {facts.kind}, not a GPU")
        return
    extra = facts.extra
    not_reported = "not reported by the device backend"
    record.put("gpu.vendor", identity.vendor)
    record.put("gpu.name", identity.name)
    record.put("gpu.uuid", extra.get("uuid"), not_reported)
    record.put("gpu.pci_bus_id", extra.get("pci_bus_id"), not_reported)
    record.put("gpu.index", extra.get("index"), not_reported)
    record.put("gpu.compute_capability", identity.compute_capability)
    gcn_reason = not_reported if identity.vendor == "amd" else "AMD only; not an AMD GPU"
    record.put("gpu.gcn_arch", identity.gcn_arch, gcn_reason)
    record.put("gpu.sm_count", identity.sm_count)
    caps = capabilities_of(identity)
    record.put("gpu.fp8_format", caps.fp8_format, caps.why.get("fp8"))
    record.put("gpu.l2_bytes", extra.get("l2_bytes"), not_reported)
    memory = identity.memory_bytes
    if memory is None:
        memory = extra.get("memory_bytes")
    record.put("gpu.memory_bytes", memory, not_reported)


def _capture_nvml(record: _Record, facts: DeviceFacts | None, opener: Callable[[], Nvml]) -> None:
    """Driver versions from NVML, and device state from the NVML device matching the GPU."""
    system_fields = ("driver_version", "cuda_driver_version")
    device_fields = ("matched_by", *(field for field, _ in _NVML_DEVICE_FIELDS))
    try:
        nvml = opener()
    except NvmlUnavailable as err:
        for field in (*system_fields, *device_fields):
            record.put(f"nvml.{field}", None, str(err))
        return
    try:
        record.put_reading("nvml.driver_version", nvml.driver_version_reading())
        record.put_reading("nvml.cuda_driver_version", nvml.cuda_driver_version_reading())
        device, how = match_device(nvml, facts)
        if device is None:
            for field in device_fields:
                record.put(f"nvml.{field}", None, how)
            return
        record.put("nvml.matched_by", how)
        for field, getter in _NVML_DEVICE_FIELDS:
            record.put_reading(f"nvml.{field}", getter(device))
    except NvmlCallFailed as err:
        for field in (*system_fields, *device_fields):
            if field not in record.data.get("nvml", {}):
                record.put(f"nvml.{field}", None, str(err))
    finally:
        nvml.close()


def match_device(nvml: Nvml, facts: DeviceFacts | None) -> tuple[NvmlDevice | None, str]:
    """(device, "uuid" | "pci_bus_id") or (None, why no device was matched). Never by index."""
    if facts is None or not isinstance(facts.identity, GpuIdentity):
        return None, "no GPU in this run"
    if facts.identity.vendor != "nvidia":
        return None, f"NVML describes NVIDIA GPUs; this one is {facts.identity.vendor}"
    failures = []
    uuid = facts.extra.get("uuid")
    if uuid:
        try:
            return nvml.device_by_uuid(str(uuid)), "uuid"
        except NvmlUnavailable as err:
            failures.append(str(err))
    bus_id = facts.extra.get("pci_bus_id")
    if bus_id:
        try:
            return nvml.device_by_pci_bus_id(str(bus_id)), "pci_bus_id"
        except NvmlUnavailable as err:
            failures.append(str(err))
    if not failures:
        return None, "the device backend reported neither a UUID nor a PCI bus id"
    return None, "; ".join(failures)


def _capture_amdsmi(
    record: _Record,
    facts: DeviceFacts | None,
    opener: Callable[[], Amdsmi],
    environ: Mapping[str, str],
) -> None:
    """The AMD GPU's state from amdsmi, as _capture_nvml reads NVIDIA's; only for AMD GPUs."""
    fields = ("matched_by", "lib_version", *(field for field, _ in _AMDSMI_DEVICE_FIELDS))
    identity = None if facts is None else facts.identity
    if not isinstance(identity, GpuIdentity) or identity.vendor != "amd":
        what = "no GPU" if not isinstance(identity, GpuIdentity) else "an NVIDIA GPU"
        for field in fields:
            record.put(f"amdsmi.{field}", None, f"amdsmi describes AMD GPUs; this run has {what}")
        return
    try:
        smi = opener()
    except AmdsmiUnavailable as err:
        for field in fields:
            record.put(f"amdsmi.{field}", None, str(err))
        return
    try:
        if smi.synthetic_reason is not None:
            record.put("amdsmi.synthetic_reason", smi.synthetic_reason)
        record.put_reading("amdsmi.lib_version", smi.lib_version())
        extra = facts.extra if facts is not None else {}
        try:
            device, how, _notes = smi.match(
                int(extra.get("index", 0)), extra.get("uuid"), extra.get("pci_bus_id"), environ
            )
        except AmdsmiUnavailable as err:
            for field in fields[:1] + fields[2:]:
                record.put(f"amdsmi.{field}", None, str(err))
            return
        record.put("amdsmi.matched_by", how)
        for field, getter in _AMDSMI_DEVICE_FIELDS:
            record.put_reading(f"amdsmi.{field}", getter(device))
    except AmdsmiCallFailed as err:
        for field in fields:
            if field not in record.data.get("amdsmi", {}):
                record.put(f"amdsmi.{field}", None, str(err))
    finally:
        smi.close()


def _capture_env_vars(record: _Record, environ: Mapping[str, str]) -> None:
    """Variables that change what is measured; an unset one is None with "not set"."""
    for name in RECORDED_ENV_VARS:
        record.put(f"env_vars.{name}", environ.get(name), "not set")
    for name in sorted(environ):
        if name.startswith(RECORDED_ENV_PREFIXES) and name not in RECORDED_ENV_VARS:
            record.put(f"env_vars.{name}", environ[name])


def _capture_git(record: _Record, root: Path) -> None:
    sha, reason = _git(root, "rev-parse", "HEAD")
    record.put("git.sha", sha, reason)
    if sha is None:
        record.put("git.dirty", None, reason)
        return
    status, reason = _git(root, "status", "--porcelain")
    record.put("git.dirty", None if status is None else bool(status), reason)


def _git(root: Path, *args: str) -> tuple[str | None, str | None]:
    """Output of `git <args>` in root, stripped, or (None, why not)."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return None, "git is not installed (not on PATH)"
    except NotADirectoryError:
        return None, f"{root} is not a directory"
    except subprocess.TimeoutExpired:
        return None, f"git {' '.join(args)} timed out after {GIT_TIMEOUT_S} s"
    except OSError as err:
        return None, f"git {' '.join(args)} could not run: {err}"
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        return None, f"git {' '.join(args)} failed in {root}: {first}"
    return done.stdout.strip(), None


def format_environment(env: Mapping[str, Any]) -> str:
    """A two-column text (field, value) for `flopwatt env`; unknown values show their reason."""
    missing: Mapping[str, str] = env.get("missing", {})
    rows = [
        (path, f"— {missing.get(path, 'unknown')}" if value is None else _render(value))
        for path, value in _flatten(env)
        if path != "missing"
    ]
    width = max((len(path) for path, _ in rows), default=0)
    return "\n".join(f"{path.ljust(width)}  {text}" for path, text in rows)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and key != "missing":
            rows.extend(_flatten(value, f"{path}."))
        else:
            rows.append((path, value))
    return rows


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
