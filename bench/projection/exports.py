"""The same calibration in other tools' formats, for users who go deeper.

Calculon (calculon-ai/calculon): a system JSON with `matrix`/`vector` processors
({dtype: {tflops, gflops_efficiency: [[GFLOP, eff], ...]}}, largest first, ending at 0),
`mem1`/`mem2` ({GiB, GBps, MB_efficiency}), `processing_mode` and `networks` (bandwidth GB/s,
efficiency, size, latency s, ops {p2p: [scalar, null], collectives: [scalar, offset]},
must_be_filled, processor_usage). SimAI-Analytical (aliyun/SimAI): a busbw.yaml, a first
line naming the setting, then TP/DP/EP groups of `collective,: busbw GB/s` and PP `busbw`.
"""

from __future__ import annotations

from typing import Any

from bench.projection.calibration import Calibration, Table
from bench.projection.collectives import Fabric

CALCULON_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "fp8": "float8"}


def _efficiency(t: Table) -> list[list[float]]:
    """Calculon's step table: [GFLOP threshold, efficiency], largest first, down to 0."""
    rows = [[f / 1e9, round(min(1.0, e), 4)] for f, e in t.points]
    rows.append([t.largest_flops * 2 / 1e9, round(min(1.0, t.top), 4)])
    rows = sorted(rows, key=lambda r: -r[0])
    rows[-1][0] = 0
    return rows


def _net(bw: float, eff: float, size: int, latency: float, ring: bool) -> dict[str, Any]:
    ops = (
        {"reduce_scatter": [1.0, -1], "all_gather": [1.0, -1], "all_reduce": [2.0, -1]}
        if ring
        else {"reduce_scatter": [1.0, 0], "all_gather": [1.0, 0], "all_reduce": [2.0, 0]}
    )
    return {
        "bandwidth": bw / 1e9,
        "efficiency": eff,
        "size": size,
        "latency": latency,
        "ops": {"p2p": [1.0, None], **ops},
        "must_be_filled": ring,
        "processor_usage": 0.0,
    }


def calculon_system(
    cal: Calibration, fab: Fabric, mem_bytes_per_s: float | None, mem_gib: float = 80
) -> dict[str, Any]:
    """A Calculon system file: the measured efficiency tables and the fabric used."""
    dtype = CALCULON_DTYPES.get(cal.dtype, cal.dtype)
    proc = {"tflops": cal.peak_ops_per_s / 1e12, "gflops_efficiency": _efficiency(cal.matmul)}
    vec = {"tflops": cal.peak_ops_per_s / 1e12, "gflops_efficiency": _efficiency(cal.attention)}
    gbps = (mem_bytes_per_s or 0) / 1e9 or 1.0
    mem = {"GiB": mem_gib, "GBps": gbps, "MB_efficiency": [[0, 1.0]]}
    return {
        "matrix": {dtype: proc},
        "vector": {dtype: vec},
        "mem1": mem,
        "mem2": {"GiB": 512, "GBps": 32, "MB_efficiency": [[0, 1.0]]},
        "processing_mode": "no_overlap",
        "networks": [
            _net(fab.intra_busbw, 1.0, fab.gpus_per_node, fab.intra_alpha_s, True),
            _net(fab.nic_bytes_per_s, fab.eta_net, 65536, fab.net_alpha_s, False),
        ],
    }


def simai_busbw_yaml(fab: Fabric, name: str = "flopwatt") -> str:
    """SimAI-Analytical busbw.yaml (GB/s): TP inside a node, DP and EP across nodes, PP."""
    tp = fab.intra_busbw / 1e9
    net = fab.gpus_per_node * fab.nic_bytes_per_s * fab.eta_net / 1e9
    pp = fab.nic_bytes_per_s * fab.eta_net / 1e9
    groups = {
        "TP": {"allreduce": tp, "allgather": tp, "reducescatter": tp, "alltoall": tp},
        "DP": {"allreduce": None, "allgather": net, "reducescatter": net, "alltoall": None},
        "EP": {"allreduce": None, "allgather": net, "reducescatter": net, "alltoall": net},
    }
    lines = [name]
    for group, ops in groups.items():
        lines.append(f"{group}:")
        for op, v in ops.items():
            lines.append(f"  {op},: {'null' if v is None else round(v, 2)}")
    lines += ["PP:", f"  busbw: {round(pp, 2)}"]
    return "\n".join(lines) + "\n"
