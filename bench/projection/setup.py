"""The model's inputs from a calibration and the user's flags, each listed with its source.

Defaults are assumptions, printed as such: NCCL 2.30's Simple-protocol latencies (3.4 us per
NVLink ring step, 8.4 us per call, 14 us per network hop), an H100-class node (ring busbw
370 GB/s), one 400 Gb/s NIC per GPU at 92% of line rate, a non-blocking fabric. Measured
intra-node fits replace the NVLink constants; fits from three or more nodes the network's.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from bench.projection.calibration import Calibration, Fit, Input
from bench.projection.collectives import Fabric
from bench.projection.iteration import Compute

DEFAULT_DETAIL = {
    "gpus_per_node": "HGX node",
    "intra_busbw": "H100-class NVLink ring busbw",
    "intra_alpha_s": "NCCL 2.30 NVLink Simple per step",
    "base_latency_s": "NCCL 2.30 ring Simple base",
    "nic_bytes_per_s": "one 400 Gb/s NIC per GPU",
    "eta_net": "IB NDR: 46 of 50 GB/s",
    "net_alpha_s": "NCCL 2.30 NET Simple per hop",
    "nvls_busbw": "no NVLink SHARP",
    "tree_bw_factor": "NCCL tree busbw vs ring",
    "pod_size": "one non-blocking fabric",
    "oversubscription": "non-blocking",
}


def compute(cal: Calibration, mem_bytes_per_s: float | None = None) -> Compute:
    return Compute(cal.peak_ops_per_s, cal.matmul, cal.attention, mem_bytes_per_s)


def fabric(fits: list[Fit], user: dict[str, Any]) -> tuple[Fabric, list[Input]]:
    """Defaults, then measured fits, then the user's flags (which win)."""
    values = {f.name: getattr(Fabric(), f.name) for f in fields(Fabric) if f.name in DEFAULT_DETAIL}
    source = {k: ("assumed", DEFAULT_DETAIL[k]) for k in values}
    intra = [f for f in fits if f.collective == "allreduce" and f.nodes == 1]
    if intra:
        best = max(intra, key=lambda f: f.world_size)
        values["intra_busbw"] = best.busbw
        values["intra_alpha_s"] = best.alpha_s / (2 * (best.world_size - 1))
        values["base_latency_s"] = 0.0
        detail = (
            f"fit of allreduce on {best.world_size} ranks, {len(best.sizes)} sizes, "
            f"max residual {best.max_residual:.1%}"
        )
        for k in ("intra_busbw", "intra_alpha_s", "base_latency_s"):
            source[k] = ("measured", detail)
    inter = [f for f in fits if f.collective == "allreduce" and f.nodes >= 3]
    if inter:
        best = max(inter, key=lambda f: f.nodes)
        ppn = max(1, best.world_size // best.nodes)
        values["eta_net"] = min(1.0, best.busbw / (ppn * values["nic_bytes_per_s"]))
        values["net_alpha_s"] = best.alpha_s / (2 * (best.nodes - 1))
        for k in ("eta_net", "net_alpha_s"):
            source[k] = ("measured", f"fit of allreduce on {best.nodes} nodes")
    for k, v in user.items():
        if v is not None:
            values[k] = v
            source[k] = ("user", "flag")
    fab = replace(Fabric(), **values)
    inputs = [Input(k, values[k], s, d) for k, (s, d) in source.items()]
    return fab, inputs
