"""What a device can run, per architecture: the one table kernels branch on.

Kernels ask "which fp8 encoding does this device use?", "is there a cuDNN SDPA backend?",
"does fp32 matmul have a TF32 mode?" instead of "is this AMD?": the answers differ between
generations of one vendor (MI300's gfx942 uses the FNUZ fp8 encodings, MI350's gfx950 the
OCP ones NVIDIA uses), and a vendor test would be wrong for one of them. Architectures not
in the table get None with a reason, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.devices.base import CpuIdentity, DeviceIdentity, GpuIdentity

SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math")


@dataclass(frozen=True)
class Capabilities:
    """One device's answers. A None format/False flag comes with the reason in `why`."""

    fp8_format: str | None  # "e4m3fn" (OCP) | "e4m3fnuz" (MI300's FNUZ) | None
    tf32: bool  # fp32 matmul has a TF32 (xf32) tensor-core mode
    sdpa_missing: dict[str, str] = field(default_factory=dict)  # backend -> why it is absent
    why: dict[str, str] = field(default_factory=dict)  # "fp8" / "tf32" -> why not

    def sdpa_backends(self) -> tuple[str, ...]:
        return tuple(b for b in SDPA_BACKENDS if b not in self.sdpa_missing)


_NO_CUDNN_ON_ROCM = {
    "cudnn": "cuDNN attention is NVIDIA-only; ROCm builds offer flash and efficient"
}

# AMD, by gcnArchName without feature flags: (fp8 format or why none, TF32 or why none).
_AMD: dict[str, tuple[str | None, str | None, bool, str | None]] = {
    "gfx942": ("e4m3fnuz", None, True, None),  # MI300X/MI300A/MI325X: FNUZ fp8, xf32
    "gfx950": ("e4m3fn", None, False, "CDNA4 (gfx950) has no TF32 rate"),  # MI350X/MI355X
    "gfx90a": (None, "CDNA2 (gfx90a) has no fp8 unit", False, "CDNA2 (gfx90a) has no TF32 mode"),
    "gfx908": (None, "CDNA1 (gfx908) has no fp8 unit", False, "CDNA1 (gfx908) has no TF32 mode"),
}


def capabilities_of(identity: DeviceIdentity) -> Capabilities:
    """The capability row of a device identity (no device or torch needed)."""
    if isinstance(identity, CpuIdentity):
        cuda_only = (
            "torch's {} SDPA backend is CUDA-only; on a CPU torch runs flash "
            "(its own CPU kernel) and math"
        )
        return Capabilities(
            fp8_format="e4m3fn",  # torch's CPU _scaled_mm computes it (no fp8 unit: no peak)
            tf32=False,
            sdpa_missing={b: cuda_only.format(b) for b in ("efficient", "cudnn")},
            why={"tf32": "TF32 is a tensor-core math mode of NVIDIA GPUs; a CPU has none"},
        )
    assert isinstance(identity, GpuIdentity)
    if identity.vendor == "amd":
        return _amd(identity.gcn_arch)
    return _nvidia(identity.compute_capability)


def _amd(arch: str | None) -> Capabilities:
    row = _AMD.get(arch or "")
    if row is None:
        what = f"{arch} is not in the capability table" if arch else "the gcn arch is unknown"
        reason = f"{what} (gfx942 uses e4m3fnuz fp8, gfx950 OCP e4m3fn)"
        return Capabilities(
            None, False, dict(_NO_CUDNN_ON_ROCM), {"fp8": reason, "tf32": f"{what}; TF32 unknown"}
        )
    fp8, fp8_why, tf32, tf32_why = row
    why = {k: v for k, v in (("fp8", fp8_why), ("tf32", tf32_why)) if v}
    return Capabilities(fp8, tf32, dict(_NO_CUDNN_ON_ROCM), why)


def _nvidia(compute_capability: str) -> Capabilities:
    major, minor = (int(x) for x in compute_capability.split(".")[:2])
    why = {}
    if (major, minor) < (8, 9):
        why["fp8"] = f"fp8 matmul needs compute capability 8.9 or newer; this is {major}.{minor}"
    if major < 8:
        why["tf32"] = f"tf32 needs compute capability 8.0 or newer; this is {major}.{minor}"
    return Capabilities(
        fp8_format=None if "fp8" in why else "e4m3fn", tf32=major >= 8, sdpa_missing={}, why=why
    )


def torch_fp8_dtype(fmt: str) -> Any:
    """The torch dtype of an fp8 format name ("e4m3fn" -> torch.float8_e4m3fn)."""
    import torch

    return getattr(torch, f"float8_{fmt}")


def fp8_format_of_torch_device(device: Any) -> str | None:
    """The fp8 format of a torch device, read from its properties (kernels have no facts at
    prepare time). None on a CPU or an architecture the table does not know."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(dev)
    if getattr(torch.version, "hip", None):
        arch = str(getattr(props, "gcnArchName", "") or "").split(":")[0] or None
        return _amd(arch).fp8_format
    return _nvidia(f"{props.major}.{props.minor}").fp8_format
