"""E(N), MFU and HFU over a list of GPU counts, in three bands, with the breakdown, the
dominant loss, the knee, the algorithm assumed and power, energy and cost per step.

Bands: optimistic (eta 0.95, DP fully overlapped, no straggler), nominal (the inputs as
given), pessimistic (eta 0.7, no overlap, +5% straggler, every cross-pod byte
oversubscribed). E is relative to the smallest N in each band.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bench.projection.collectives import Fabric
from bench.projection.iteration import Compute, ConfigError, Parallel, Step, step
from bench.projection.models import Model

LOSSES = ("bubble", "tp", "pp", "dp_bandwidth", "dp_latency", "straggler", "failures")
KNEE_KEEP = 0.9  # doubling N keeps less than this share of per-GPU throughput


@dataclass(frozen=True)
class Power:
    """Watts per GPU (board, measured) and per GPU of host share (assumed), PUE, price."""

    gpu_w: float | None
    host_w_per_gpu: float
    pue: float | None = None
    usd_per_kwh: float | None = None


def bands(par: Parallel, fabric: Fabric) -> dict[str, tuple[Parallel, Fabric]]:
    """The three scenarios' inputs."""
    return {
        "optimistic": (replace(par, dp_overlap=1.0, straggler=0.0), replace(fabric, eta_net=0.95)),
        "nominal": (par, fabric),
        "pessimistic": (
            replace(par, dp_overlap=0.0, straggler=max(par.straggler, 0.05)),
            replace(fabric, eta_net=min(fabric.eta_net, 0.7), worst_case_pod=True),
        ),
    }


def dominant(st: Step) -> str:
    """The largest loss term, or compute when nothing is lost."""
    name, value = max(((k, st.terms[k]) for k in LOSSES), key=lambda kv: kv[1])
    return name if value > 0 else "compute"


def _per_gpu(st: Step, par: Parallel, model: Model) -> float:
    return par.global_batch * model.seq / (st.time_s * st.n_gpus)


def knee(ns: list[int], model: Model, par: Parallel, comp: Compute, fabric: Fabric) -> int | None:
    """Smallest N where 2N keeps under 90% of per-GPU throughput (None: none in range)."""
    for n in ns:
        try:
            here, there = (step(k, model, par, comp, fabric) for k in (n, 2 * n))
        except ConfigError:
            continue
        if _per_gpu(there, par, model) < KNEE_KEEP * _per_gpu(here, par, model):
            return n
    return None


def _energy(st: Step, flops: float, power: Power | None) -> dict[str, float | None]:
    if power is None or power.gpu_w is None:
        return {
            "cluster_power_w": None,
            "energy_per_step_j": None,
            "j_per_1e18_ops": None,
            "usd_per_step": None,
        }
    watts = st.n_gpus * (power.gpu_w + power.host_w_per_gpu) * (power.pue or 1.0)
    joules = watts * st.time_s
    usd = joules / 3.6e6 * power.usd_per_kwh if power.usd_per_kwh else None
    return {
        "cluster_power_w": watts,
        "energy_per_step_j": joules,
        "j_per_1e18_ops": joules / (flops / 1e18),
        "usd_per_step": usd,
    }


def project(
    ns: list[int],
    model: Model,
    par: Parallel,
    comp: Compute,
    fabric: Fabric,
    measured_max_n: int = 1,
    power: Power | None = None,
) -> dict[str, Any]:
    """Rows (one per band and N), knees, and the extrapolation flag; ConfigError names N."""
    ns = sorted(set(ns))
    for n in ns:  # the nominal layout decides; bands share it
        step(n, model, par, comp, fabric)
    tokens = par.global_batch * model.seq
    model_flops = tokens * model.model_flops_per_token()
    hw_flops = tokens * model.hardware_flops_per_token(par.recompute)
    rows: list[dict[str, Any]] = []
    knees: dict[str, int | None] = {}
    for band, (bpar, bfab) in bands(par, fabric).items():
        base = None
        for n in ns:
            st = step(n, model, bpar, comp, bfab)
            x = _per_gpu(st, bpar, model)
            base = base or x
            denom = st.time_s * n * comp.peak_ops_per_s
            rows.append(
                {
                    "band": band,
                    "n_gpus": n,
                    "dp": st.dp,
                    "microbatches": st.microbatches,
                    "step_s": st.time_s,
                    "tokens_per_s_per_gpu": x,
                    "efficiency": x / base,
                    "mfu": model_flops / denom,
                    "hfu": hw_flops / denom,
                    **{f"t_{k}_s": v for k, v in st.terms.items()},
                    "dominant_loss": dominant(st),
                    "dp_algorithm": st.dp_algorithm,
                    "tp_algorithm": st.tp_algorithm,
                    "dp_bytes": st.dp_bytes,
                    "extrapolated": n > measured_max_n,
                    **_energy(st, model_flops, power),
                }
            )
        knees[band] = knee(ns, model, bpar, comp, bfab)
    return {
        "rows": rows,
        "knee": knees,
        "model_flops_per_step": model_flops,
        "hardware_flops_per_step": hw_flops,
    }
