"""ROCm facts that change what a GPU number means: the BLAS library, TunableOp, ROCm's
version, NUMA balancing. Read, never set: a vendor comparison must show the stack as it ran.

PyTorch on ROCm reuses torch.cuda; `torch.version.hip` is the switch. The GEMM library is
chosen per process (hipBLASLt on gfx90a/gfx942/gfx950 unless TORCH_BLAS_PREFER_HIPBLASLT=0,
else rocBLAS through hipBLAS) and TunableOp (off by default) may replace it per shape after
benchmarking every candidate on first use. That tuning must never fall inside a timed
window: `tuning_frozen()` turns tuning off around timing, after the untimed first call
has tuned the case's shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# torch's _BlasBackend names, and what each one is on ROCm and on CUDA.
_BLAS_NAMES = {
    "Cublaslt": ("hipBLASLt", "cuBLASLt"),
    "Cublas": ("rocBLAS", "cuBLAS"),
    "Ck": ("CK", None),
}

Reading = tuple[Any, str | None]


def is_rocm(torch: Any) -> bool:
    return bool(getattr(torch.version, "hip", None))


def blas_library(torch: Any) -> Reading:
    """("hipBLASLt" | "rocBLAS" | "CK" | "cuBLASLt" | "cuBLAS", None) or (None, reason).

    torch.backends.cuda.preferred_blas_library() already folds in TORCH_BLAS_PREFER_HIPBLASLT
    / TORCH_BLAS_PREFER_CUBLASLT and the per-arch default.
    """
    if not torch.cuda.is_available():
        return None, "no GPU visible to torch"
    try:
        backend = torch.backends.cuda.preferred_blas_library()
    except (AttributeError, RuntimeError) as err:
        return None, f"torch.backends.cuda.preferred_blas_library() failed: {err}"
    key = str(getattr(backend, "name", backend)).split(".")[-1]
    if key == "Default":
        key = _default_backend(torch)
    names = _BLAS_NAMES.get(key)
    if names is None:
        return None, f"unknown BLAS backend {backend!r}"
    name = names[0] if is_rocm(torch) else names[1]
    return (name, None) if name else (None, f"{key} is a ROCm-only backend")


# Archs on which torch's "Default" BLAS choice is hipBLASLt when every visible GPU is one of
# them (ATen's Context::blasPreferredBackend), with the HIP version each needs.
_HIPBLASLT_DEFAULT_ARCHS = {
    "gfx90a": (0, 0),
    "gfx942": (0, 0),
    "gfx1200": (6, 4),
    "gfx1201": (6, 4),
    "gfx950": (6, 5),
}


def _default_backend(torch: Any) -> str:
    """What torch's "Default" resolves to: cuBLAS on CUDA; on ROCm hipBLASLt ("Cublaslt")
    when every visible GPU's arch supports it at this HIP version, else rocBLAS ("Cublas")."""
    if not is_rocm(torch):
        return "Cublas"
    hip = tuple(int(p) for p in str(torch.version.hip).split(".")[:2] if p.isdigit())
    for index in range(torch.cuda.device_count()):
        name = str(getattr(torch.cuda.get_device_properties(index), "gcnArchName", ""))
        need = _HIPBLASLT_DEFAULT_ARCHS.get(name.split(":")[0])
        if need is None or hip < need:
            return "Cublas"
    return "Cublaslt"


def fa_library(torch: Any) -> Reading:
    """Which library serves SDPA's flash and efficient backends on ROCm: "AOTriton" (the
    default) or "CK" (torch built with USE_ROCM_CK_SDPA and TORCH_ROCM_FA_PREFER_CK=1)."""
    if not is_rocm(torch):
        return None, "not a ROCm build (CUDA's flash and efficient kernels are torch's own)"
    getter = getattr(torch.backends.cuda, "preferred_rocm_fa_library", None)
    if getter is None:
        return None, "torch.backends.cuda.preferred_rocm_fa_library is not in this torch"
    try:
        key = str(getattr(getter(), "name", "")).split(".")[-1]
    except (AttributeError, RuntimeError) as err:
        return None, f"preferred_rocm_fa_library() failed: {err}"
    return {"Default": "AOTriton", "AOTriton": "AOTriton", "Ck": "CK"}.get(key, key) or None, None


def tunableop_enabled(torch: Any, environ: Mapping[str, str]) -> Reading:
    """Whether TunableOp is on (PYTORCH_TUNABLEOP_ENABLED or torch.cuda.tunable.enable)."""
    try:
        return bool(torch.cuda.tunable.is_enabled()), None
    except (AttributeError, RuntimeError) as err:
        value = environ.get("PYTORCH_TUNABLEOP_ENABLED")
        if value is not None:
            return value.strip() == "1", None
        return None, f"torch.cuda.tunable is not usable in this build ({err})"


@contextlib.contextmanager
def tuning_frozen(torch: Any) -> Iterator[bool]:
    """Turn TunableOp's tuning off for the duration (tuned results are still used); yields
    whether it was on. Without TunableOp, or on a build without it, nothing changes."""
    tunable = getattr(torch.cuda, "tunable", None)
    try:
        tuning = bool(tunable.is_enabled() and tunable.tuning_is_enabled())
    except (AttributeError, RuntimeError):
        tuning = False
    if not tuning:
        yield False
        return
    tunable.tuning_enable(False)
    try:
        yield True
    finally:
        tunable.tuning_enable(True)


def rocm_version(environ: Mapping[str, str], torch: Any | None = None) -> Reading:
    """The installed ROCm release from $ROCM_PATH/.info/version (default /opt/rocm)."""
    root = Path(environ.get("ROCM_PATH") or environ.get("ROCM_HOME") or "/opt/rocm")
    path = root / ".info" / "version"
    try:
        text = path.read_text().strip()
    except OSError:
        hip = getattr(getattr(torch, "version", None), "hip", None) if torch else None
        built = f"; torch was built against HIP {hip}" if hip else ""
        return None, f"{path} not readable{built}"
    return (text.split("-")[0] or None, None) if text else (None, f"{path} is empty")


def numa_balancing(path: Path = Path("/proc/sys/kernel/numa_balancing")) -> Reading:
    """Whether the kernel's automatic NUMA balancing is on (AMD advises off for RCCL)."""
    try:
        return path.read_text().strip() != "0", None
    except OSError as err:
        return None, f"{path} not readable ({err.strerror or err})"
