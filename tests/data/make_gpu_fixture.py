"""Write tests/data/gpu-run: a synthetic H100 run with everything a report can draw.

No GPU measured this: the numbers are plausible H100 SXM figures (bf16 ~70% of 989 TFLOP/s,
~650 W, 1.755 GHz), the samples are seeded lognormal draws around them. It exists so that the
writers can be tested on the fields a CPU run never has: clocks, NVML energy and power traces,
the clock-adjusted and measured-ceiling fractions, allreduce busbw against an NVLink peak,
and scaling efficiency (one study with a row per N, as kernels/scaling.py writes it).

    python tests/data/make_gpu_fixture.py    # rewrites tests/data/gpu-run
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.results.record import REQUIRED_FIELDS

OUT = Path(__file__).resolve().parent / "gpu-run"
CLOCK = 1.755e9
SPEC_CLOCK = 1.98e9
PEAKS = {"bf16": 989.4e12, "fp16": 989.4e12, "fp8": 1978.9e12, "tf32": 494.7e12, "fp32": 66.9e12}
FRACTION = {"bf16": 0.72, "fp16": 0.70, "fp8": 0.55, "tf32": 0.60, "fp32": 0.75}
ITEMSIZE = {"bf16": 2, "fp16": 2, "fp8": 1, "tf32": 4, "fp32": 4}
LINK = 450e9  # NVLink 4, unidirectional per GPU (900 GB/s bidirectional / 2)


def meta() -> dict:
    return {
        "schema_version": "1.0",
        "method_version": 1,
        "run_id": "20261120-010203-h100-fixture",
        "started_at": "2026-11-20T01:02:03+00:00",
        "command": "flopwatt run (synthetic fixture: tests/data/make_gpu_fixture.py)",
        "suite": "quick",
        "device": "cuda:0",
        "device_facts": {
            "identity": {
                "vendor": "nvidia",
                "name": "NVIDIA H100 80GB HBM3",
                "compute_capability": "9.0",
                "sm_count": 132,
                "gcn_arch": None,
                "max_sm_clock_hz": SPEC_CLOCK,
                "memory_bytes": 85 * 2**30,
            }
        },
        "environment": {
            "host": {"hostname": "h100-node", "os": "Linux 6.8", "machine": "x86_64"},
            "software": {"torch": "2.5.1+cu124", "torch_cuda": "12.4", "torch_hip": None},
            "nvml": {"driver_version": "550.54.15", "power_limit_enforced_w": 700.0},
            "gpu": {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-fixture"},
            "git": {"sha": "0" * 40, "dirty": False},
        },
        "world_size": 1,
        "status": "complete",
        "idle": {"power_w": 72.0, "seconds": 2.0, "energy_source": "nvml_energy_counter"},
    }


def base_case(case_id: str, kernel: str, params: dict, dtype: str, world: int = 1) -> dict:
    return {
        **dict.fromkeys(REQUIRED_FIELDS),
        "case_id": case_id,
        "kernel": kernel,
        "params": params,
        "dtype": dtype,
        "device": "cuda:0",
        "world_size": world,
        "status": "ok",
        "reason": None,
        "timing_mode": "cold",
        "stop_reason": "noise_below_target",
        "schema_version": "1.0",
        "method_version": 1,
        "warnings": [],
    }


def timed(case: dict, rng: random.Random, median_s: float, n: int = 200) -> list[float]:
    xs = [median_s * rng.lognormvariate(0, 0.004) for _ in range(n)]
    s = sorted(xs)
    case.update(
        time_median_s=s[n // 2],
        time_ci95_low_s=s[n // 2 - 14],
        time_ci95_high_s=s[n // 2 + 14],
        time_p10_s=s[n // 10],
        rel_iqr=(s[3 * n // 4] - s[n // 4]) / s[n // 2],
        rel_noise=0.004,
        n_samples=n,
        samples_file=f"samples/{case['case_id']}.parquet",
        clock_hz_before=CLOCK,
        clock_hz_after=CLOCK,
        clock_source="nvml current SM clock",
        cpu_pressure=0.0,
    )
    return xs


def matmul(rng: random.Random, index: int, dtype: str, m: int, world: int = 1) -> tuple:
    label = f"{m}x{m}x{m}"
    params = {"m": m, "n": m, "k": m, "shape_label": label, "layout": "TN", "init": "randn"}
    case = base_case(f"{index:04d}-matmul-{dtype}-{label}", "matmul", {**params, "seed": 0}, dtype)
    case["world_size"] = world
    ops = 2 * m**3
    peak = PEAKS[dtype]
    achieved = peak * FRACTION[dtype] * (CLOCK / SPEC_CLOCK) ** 0.2
    xs = timed(case, rng, ops / achieved)
    achieved = ops / case["time_median_s"]
    power = 640.0 if dtype != "fp32" else 520.0
    case.update(
        math_mode=dtype,
        ops=ops,
        bytes=3 * m * m * ITEMSIZE[dtype],
        arithmetic_intensity=ops / (3 * m * m * ITEMSIZE[dtype]),
        achieved_ops_per_s=achieved,
        peak_ops_per_s=peak,
        peak_source="datasheet",
        peak_detail="H100 SXM5 80GB: NVIDIA H100 datasheet (dense)",
        peak_clock_hz=SPEC_CLOCK,
        frac_of_peak=achieved / peak,
        clock_peak_ops_per_s=peak * CLOCK / SPEC_CLOCK,
        frac_of_clock_peak=achieved / (peak * CLOCK / SPEC_CLOCK),
        measured_peak_ops_per_s=achieved * 1.04,
        measured_peak_source="stored",
        measured_peak_detail="results/baselines/h100-sxm5-80gb/ceiling.json",
        frac_of_measured_peak=1 / 1.04,
        energy_source="nvml_energy_counter",
        energy_scope="whole board (GPU + HBM)",
        window_s=5.0,
        iterations=int(5.0 / case["time_median_s"]),
        avg_power_w=power,
        energy_j=power * 5.0,
        idle_power_w=72.0,
        sm_clock_hz_median=CLOCK,
        temp_c_max=71.0,
        trace_file=f"traces/{case['case_id']}.parquet",
    )
    case["ops_per_j"] = case["iterations"] * ops / case["energy_j"]
    t = [i * 0.05 for i in range(101)]
    trace = {
        "t_s": t,
        "power_w": [power + rng.gauss(0, 6) for _ in t],
        "power_avg_w": [power for _ in t],
        "sm_clock_hz": [CLOCK + rng.choice((-15e6, 0, 15e6)) for _ in t],
        "mem_clock_hz": [2.619e9 for _ in t],
        "temp_c": [62 + 9 * min(1.0, x / 3) for x in t],
        "event_reasons": [0 for _ in t],
    }
    return case, xs, trace


def allreduce(rng: random.Random, index: int, size: int, world: int = 8) -> tuple:
    label = f"{size}B"
    params = {"collective": "allreduce", "size_bytes": size, "place": "out", "shape_label": label}
    case = base_case(f"{index:04d}-allreduce-bf16-{label}", "allreduce", params, "bf16", world)
    busbw_target = LINK * 0.82 * size / (size + 4e6)
    factor = 2 * (world - 1) / world
    xs = timed(case, rng, size * factor / busbw_target, n=40)
    algbw = size / case["time_median_s"]
    case.update(
        bytes=size,
        algbw_bytes_per_s=algbw,
        busbw_bytes_per_s=algbw * factor,
        bus_factor=factor,
        link_peak_bytes_per_s=LINK,
        link_peak_source="datasheet",
        link_peak_detail="NVLink 4: 900 GB/s bidirectional per GPU / 2",
        link_utilisation=algbw * factor / LINK,
        rank_reduction="max",
        wrong_elements=0,
    )
    return case, xs, None


def scaling(rng: random.Random, index: int, world: int = 8) -> tuple:
    """One weak-scaling study as kernels/scaling.py writes it: rows per N, E(N) at the end."""
    case, xs, _ = matmul(rng, index, "bf16", 8192, world)
    case["case_id"] = f"{index:04d}-scaling-bf16-8192"
    case["kernel"] = "scaling"
    case["params"]["scaling"] = "weak"
    case["samples_file"] = f"samples/{case['case_id']}.parquet"
    case["trace_file"] = None
    efficiency = {1: 1.0, 2: 0.97, 4: 0.93, 8: 0.88}
    step = case["time_median_s"]
    case["scaling"] = [
        {"n": n, "step_time_s": step / e, "efficiency": e} for n, e in efficiency.items()
    ]
    case["scaling_efficiency"] = efficiency[world]
    return case, xs, None


def main() -> None:
    rng = random.Random(20261120)
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "samples").mkdir(parents=True)
    (OUT / "traces").mkdir()
    items = []
    for dtype, m in (("bf16", 8192), ("bf16", 4096), ("fp16", 8192), ("fp8", 8192)):
        items.append(matmul(rng, len(items), dtype, m))
    items.append(matmul(rng, len(items), "tf32", 4096))
    items.append(matmul(rng, len(items), "fp32", 4096))
    for size in (2**20, 2**24, 2**28, 2**30):
        items.append(allreduce(rng, len(items), size))
    items.append(scaling(rng, len(items)))
    lines = []
    for case, xs, trace in items:
        columns = {"sample": list(range(len(xs))), "time_s": xs, "calls": [1] * len(xs)}
        pq.write_table(pa.table(columns), OUT / case["samples_file"])
        if trace is not None:
            pq.write_table(pa.table(trace), OUT / case["trace_file"])
        lines.append(json.dumps(case))
    (OUT / "run.json").write_text(json.dumps({**meta(), "n_cases": len(items)}, indent=2))
    (OUT / "cases.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
