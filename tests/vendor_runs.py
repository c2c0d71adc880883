"""An MI300X-shaped and an H200-shaped run folder, written through the real run writer.

The MI300X run stands for one produced through a fake amdsmi (no AMD device exists here), so
it is marked synthetic. The figures are round on purpose so tests can recompute every
ratio and cost from these inputs by hand; FIGURES holds them per device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results.record import CaseResult, RunWriter

MATMUL = {"m": 8192, "n": 8192, "k": 8192, "shape_label": "8192x8192x8192", "layout": "TN"}
OPS = 2 * 8192**3
GIB = 1 << 30

# per device: dtype -> (achieved, spec peak, measured ceiling, ops/J, net ops/J)
FIGURES: dict[str, dict[str, tuple[float, float, float | None, float, float | None]]] = {
    "mi300x": {
        "bf16": (600e12, 1307.4e12, 650e12, 0.9e12, 1.2e12),
        "fp8": (1100e12, 2614.9e12, None, 1.6e12, None),
    },
    "h200": {
        "bf16": (750e12, 989.4e12, 800e12, 1.2e12, 1.5e12),
        "fp8": (1400e12, 1978.9e12, None, 2.0e12, None),
    },
}
BUSBW = {"mi300x": (315e9, 448e9), "h200": (360e9, 450e9)}  # (busbw, link peak)
SKU_OF = {"mi300x": "Instinct MI300X", "h200": "H200 SXM 141GB"}

DEVICES: dict[str, dict[str, Any]] = {
    "mi300x": {
        "identity": {
            "vendor": "amd",
            "name": "AMD Instinct MI300X",
            "compute_capability": "9.4",
            "sm_count": 304,
            "gcn_arch": "gfx942",
            "max_sm_clock_hz": 2.1e9,
            "memory_bytes": 192 * GIB,
        },
        "environment": {
            "software": {
                "torch": "2.5.1+rocm6.2",
                "torch_cuda": None,
                "torch_hip": "6.2.41133",
                "rocm_version": "6.2.4",
                "blas_library": "hipBLASLt",
                "tunableop_enabled": False,
                "nccl": "2.20.5",
                "collective_library": "RCCL",
            },
            "gpu": {
                "vendor": "amd",
                "name": "AMD Instinct MI300X",
                "gcn_arch": "gfx942",
                "sm_count": 304,
                "fp8_format": "e4m3fnuz",
            },
            "amdsmi": {"driver_version": "6.8.5"},
            "env_vars": {"PYTORCH_TUNABLEOP_ENABLED": None, "NCCL_MIN_NCHANNELS": "112"},
            "missing": {"software.torch_cuda": "this torch build has no CUDA"},
        },
        "extra_meta": {"synthetic": True, "synthetic_reason": "fake amdsmi (CPU CI)"},
        "energy": ("amdsmi_energy_counter", "socket (GPU package + HBM)"),
        "clock": (1.2e9, 2.1e9),  # median SM clock in the window, spec clock of the peak
        "throttle": ["power (PVIOL)"],
        "extra_shape": {"m": 4096, "n": 4096, "k": 4096, "shape_label": "4096x4096x4096"},
    },
    "h200": {
        "identity": {
            "vendor": "nvidia",
            "name": "NVIDIA H200",
            "compute_capability": "9.0",
            "sm_count": 132,
            "gcn_arch": None,
            "max_sm_clock_hz": 1.98e9,
            "memory_bytes": 141 * 10**9,
        },
        "environment": {
            "software": {
                "torch": "2.5.1+cu124",
                "torch_cuda": "12.4",
                "torch_hip": None,
                "cublas": "12.4.5.8",
                "nccl": "2.21.5",
                "collective_library": "NCCL",
            },
            "gpu": {
                "vendor": "nvidia",
                "name": "NVIDIA H200",
                "sm_count": 132,
                "compute_capability": "9.0",
                "fp8_format": "e4m3fn",
            },
            "nvml": {"driver_version": "550.54.15", "power_limit_enforced_w": 700.0},
            "missing": {"software.torch_hip": "not a ROCm build"},
        },
        "extra_meta": {},
        "energy": ("nvml_energy_counter", "whole board (GPU + HBM)"),
        "clock": (1.98e9, 1.98e9),
        "throttle": [],
        "extra_shape": {"m": 16384, "n": 16384, "k": 16384, "shape_label": "16384x16384x16384"},
    },
}


def _matmul(name: str, i: int, dtype: str, params: dict[str, Any]) -> CaseResult:
    spec = DEVICES[name]
    achieved, peak, ceiling, opj, net = FIGURES[name].get(dtype, FIGURES[name]["bf16"])
    ops = 2 * params["m"] * params["n"] * params["k"]
    clock, spec_clock = spec["clock"]
    leaves = dict(
        case_id=f"{i:04d}-matmul-{dtype}-{params['shape_label']}",
        kernel="matmul",
        params={**params, "init": "randn", "seed": 0},
        dtype=dtype,
        device="cuda:0",
        world_size=1,
        status="ok",
        math_mode=dtype,
        ops=ops,
        bytes=3 * params["m"] * params["n"] * 2,
        arithmetic_intensity=ops / (3 * params["m"] * params["n"] * 2),
        time_median_s=ops / achieved,
        achieved_ops_per_s=achieved,
        peak_ops_per_s=peak,
        peak_source="datasheet",
        peak_detail=f"{SKU_OF[name]}: datasheet (dense)",
        peak_clock_hz=spec_clock,
        frac_of_peak=achieved / peak,
        n_samples=200,
        rel_noise=0.004,
        timing_mode="cold",
        stop_reason="noise_below_target",
        cpu_pressure=0.0,
        energy_source=spec["energy"][0],
        energy_scope=spec["energy"][1],
        ops_per_j=opj,
        net_ops_per_j=net,
        avg_power_w=achieved / opj,
        window_s=5.0,
        sm_clock_hz_median=clock,
        throttle=list(spec["throttle"]),
    )
    if ceiling is not None:
        leaves.update(
            measured_peak_ops_per_s=ceiling,
            measured_peak_source="stored",
            measured_peak_detail=f"results/baselines/{name}/ceiling.json",
            frac_of_measured_peak=achieved / ceiling,
        )
    else:
        leaves["measured_peak_detail"] = f"no stored ceiling for {dtype}"
    return CaseResult.from_leaves(leaves)


def _allreduce(name: str, i: int) -> CaseResult:
    busbw, link = BUSBW[name]
    algbw = busbw / (2 * 7 / 8)
    return CaseResult.from_leaves(
        dict(
            case_id=f"{i:04d}-allreduce-bf16-1GiB",
            kernel="allreduce",
            params={
                "collective": "allreduce",
                "size_bytes": GIB,
                "place": "out",
                "shape_label": f"{GIB}B",
            },
            dtype="bf16",
            device="cuda:0",
            world_size=8,
            status="ok",
            ops=GIB // 2,
            bytes=GIB,
            time_median_s=GIB / algbw,
            achieved_ops_per_s=(GIB // 2) / (GIB / algbw),
            n_samples=50,
            rel_noise=0.01,
            timing_mode="cold",
            stop_reason="noise_below_target",
            algbw_bytes_per_s=algbw,
            busbw_bytes_per_s=busbw,
            bus_factor=2 * 7 / 8,
            link_peak_bytes_per_s=link,
            link_peak_source="datasheet",
            link_utilisation=busbw / link,
        )
    )


def write_run(
    name: str, root: Path, case_changes: dict[str, Any] | None = None, **meta_changes: Any
) -> Path:
    """The run folder of one device under root; case_changes override leaf fields of every
    case, meta_changes fields of run.json."""
    spec = DEVICES[name]
    run_dir = root / name
    meta = {
        "run_id": f"20261204-120000-{name}",
        "suite": "quick",
        "device": "cuda:0",
        "device_facts": {"identity": spec["identity"]},
        "environment": spec["environment"],
        "power_source": {"name": spec["energy"][0].split("_")[0]},
        **spec["extra_meta"],
        **meta_changes,
    }
    writer = RunWriter(run_dir, meta)
    cases = [
        _matmul(name, 0, "bf16", MATMUL),
        _matmul(name, 1, "fp8", MATMUL),
        _matmul(name, 2, "bf16", spec["extra_shape"]),
        _allreduce(name, 3),
    ]
    for case in cases:
        writer.append(case.updated(**(case_changes or {})), samples=None)
    writer.finish("complete")
    return run_dir
