"""A Megatron-style model of one training iteration on N GPUs: compute, pipeline bubble,
tensor- and pipeline-parallel traffic, exposed data-parallel allreduce, failures.

    T = m·(T_comp + T_TP) + (p-1)/v·(T_comp + T_TP) + T_PP + T_DP,exposed,  then / goodput

T_comp and T_TP are one microbatch on one pipeline stage; m = B/(d·mb) microbatches per
replica, so with a fixed global batch the bubble (p-1)/(v·m) grows with d: that is most of
what large runs lose (Narayanan et al., SC21).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from bench.projection import collectives as coll
from bench.projection.models import Model

Efficiency = Callable[[float], float]  # FLOPs of one operation -> fraction of peak


@dataclass(frozen=True)
class Compute:
    """The GPU: its peak and the achieved fraction by operation size (calibration)."""

    peak_ops_per_s: float
    matmul: Efficiency
    attention: Efficiency
    mem_bytes_per_s: float | None = None  # None: elementwise time left out (an assumption)


@dataclass(frozen=True)
class Parallel:
    """How the job is split, and the overlaps and losses assumed."""

    tp: int
    pp: int
    global_batch: int  # sequences per iteration
    microbatch: int = 1
    vp: int = 1  # interleaved stages per GPU
    recompute: str = "full"  # none | selective | full
    act_bytes: int = 2  # bf16 activations
    grad_bytes: int = 2  # bytes per gradient element all-reduced
    dp_overlap: float = 0.0  # share of the DP allreduce hidden behind backward
    tp_overlap: float = 0.0
    bucket_bytes: float = 25 * 2**20  # the last bucket is never hidden
    goodput: float = 1.0  # share of wall time spent on useful steps
    straggler: float = 0.0  # slowest-rank penalty on the step


class ConfigError(ValueError):
    """The parallel layout cannot run at this N (the message names N)."""


def layout(n_gpus: int, model: Model, par: Parallel) -> tuple[int, int]:
    """(d, m): data-parallel replicas and microbatches per replica, or ConfigError."""
    if n_gpus <= 0:
        raise ConfigError(f"N={n_gpus}: the GPU count must be positive")
    if n_gpus % (par.tp * par.pp):
        raise ConfigError(f"N={n_gpus} is not divisible by TP x PP = {par.tp * par.pp}")
    d = n_gpus // (par.tp * par.pp)
    # an uneven batch: the replica with the most microbatches sets the pace
    m = math.ceil(par.global_batch / (d * par.microbatch))
    if par.pp > 1 and m < par.pp:
        raise ConfigError(
            f"N={n_gpus}: {m} microbatches per replica is fewer than the {par.pp} pipeline "
            "stages; lower N, raise --global-batch or lower --pp"
        )
    return d, m


def _time(flops: float, peak: float, eff: Efficiency) -> float:
    return flops / (peak * eff(flops))


def microbatch_compute_s(model: Model, par: Parallel, comp: Compute) -> float:
    """One microbatch, forward + backward (+ recompute), on one stage of one TP rank."""
    tokens = par.microbatch * model.seq
    gemm = sum(
        _time(2.0 * tokens * k * n / par.tp, comp.peak_ops_per_s, comp.matmul)
        for _, k, n in model.layer_gemms()
    )
    attn = _time(
        4.0 * tokens * model.seq * model.hidden / par.tp, comp.peak_ops_per_s, comp.attention
    )
    passes_gemm = {"none": 3, "selective": 3, "full": 4}[par.recompute]
    passes_attn = {"none": 3, "selective": 4, "full": 4}[par.recompute]
    layers = math.ceil(model.layers / par.pp)  # the fullest stage sets the pace
    logits = 3 * _time(
        2.0 * tokens * model.hidden * model.vocab / par.tp, comp.peak_ops_per_s, comp.matmul
    )
    return (
        layers * (passes_gemm * (gemm + elementwise_s(model, par, comp)) + passes_attn * attn)
        + logits / par.pp
    )


def elementwise_s(model: Model, par: Parallel, comp: Compute) -> float:
    """One forward pass of a layer's memory-bound ops (norms, softmax, dropout, GeLU): the
    activations it stores (Korthikanti et al. 2022, bytes) written once and read once."""
    if comp.mem_bytes_per_s is None:
        return 0.0
    s, b, h, a, t = model.seq, par.microbatch, model.hidden, model.heads, par.tp
    stored = s * b * h * (10 + 24 / t + 5 * a * s / (h * t))
    return 2 * stored / comp.mem_bytes_per_s


def microbatch_tp_s(model: Model, par: Parallel, fabric: coll.Fabric) -> tuple[float, str]:
    """Exposed TP allreduces of one microbatch on one stage: 4 per layer, 6 with full recompute."""
    if par.tp == 1:
        return 0.0, "none"
    size = par.microbatch * model.seq * model.hidden * par.act_bytes
    choice = coll.allreduce(size, par.tp, fabric.gpus_per_node, fabric)
    per_layer = 6 if par.recompute == "full" else 4
    t = math.ceil(model.layers / par.pp) * per_layer * choice.time_s * (1 - par.tp_overlap)
    return t, choice.algorithm


@dataclass(frozen=True)
class Step:
    """One iteration at N GPUs: the terms (seconds) and what was chosen."""

    n_gpus: int
    dp: int
    microbatches: int
    terms: dict[
        str, float
    ]  # compute, tp, bubble, pp, dp_bandwidth, dp_latency, straggler, failures
    dp_algorithm: str
    tp_algorithm: str
    dp_bytes: float

    @property
    def time_s(self) -> float:
        return sum(self.terms.values())


def step(n_gpus: int, model: Model, par: Parallel, comp: Compute, fabric: coll.Fabric) -> Step:
    """The iteration model at n_gpus; ConfigError when the layout cannot run there."""
    d, m = layout(n_gpus, model, par)
    t_comp = microbatch_compute_s(model, par, comp)
    t_tp, tp_algo = microbatch_tp_s(model, par, fabric)
    per_mb = t_comp + t_tp
    bubble = (par.pp - 1) / par.vp * per_mb
    act = par.microbatch * model.seq * model.hidden * par.act_bytes
    t_pp = 2 * (par.pp - 1) * coll.p2p(act / par.tp, fabric) if par.pp > 1 else 0.0
    grads = model.params / (par.tp * par.pp) * par.grad_bytes
    ppn = max(1, fabric.gpus_per_node // (par.tp * par.pp))
    penalty = coll.cross_pod_penalty(n_gpus, par.tp * par.pp, fabric)
    dp = coll.allreduce(grads, d, ppn, fabric, penalty)
    exposed = dp.time_s
    if par.dp_overlap > 0 and d > 1:
        # hidden behind the backward passes of the drain (the last p microbatches)
        window = par.dp_overlap * (2 / 3) * t_comp * min(m, par.pp)
        last = coll.allreduce(min(par.bucket_bytes, grads), d, ppn, fabric, penalty).time_s
        exposed = max(0.0, dp.time_s - window) + last
    share = dp.latency_s / dp.time_s if dp.time_s > 0 else 0.0
    terms = {
        "compute": m * t_comp,
        "tp": m * t_tp,
        "bubble": bubble,
        "pp": t_pp,
        "dp_bandwidth": exposed * (1 - share),
        "dp_latency": exposed * share,
    }
    busy = sum(terms.values())
    terms["straggler"] = busy * par.straggler
    terms["failures"] = (busy + terms["straggler"]) * (1 / par.goodput - 1)
    return Step(n_gpus, d, m, terms, dp.algorithm, tp_algo, grads)
