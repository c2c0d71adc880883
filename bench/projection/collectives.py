"""An NCCL-shaped cost model of allreduce: time = latency + bytes / bandwidth, minimum over
the algorithms the fabric has, as NCCL's tuner picks (ring, tree, hierarchical, NVLS).

Latency counts steps: a flat ring takes 2(n-1) steps, 2(m-1) of them between nodes (linear
in nodes); a tree 2·log2(m) network hops (logarithmic). Bandwidth is the bus bandwidth
(nccl-tests' busbw): the node's NVLink rate, or g NICs x efficiency above one node, divided
by the oversubscription once traffic leaves a non-blocking pod. Seconds and bytes/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Fabric:
    """A cluster's interconnect: per-GPU rates and per-hop latencies."""

    gpus_per_node: int = 8
    intra_busbw: float = 370e9  # ring busbw inside a node (NVLink)
    intra_alpha_s: float = 3.4e-6  # per ring step inside a node (NCCL NVLink Simple)
    base_latency_s: float = 8.4e-6  # per call (NCCL ring/tree Simple base)
    nic_bytes_per_s: float = 50e9  # per GPU: 400 Gb/s
    eta_net: float = 0.92  # achieved / line rate between nodes
    net_alpha_s: float = 14e-6  # per network hop (NCCL NET Simple)
    nvls_busbw: float | None = None  # NVLink SHARP busbw inside a node, None: no NVLS
    tree_bw_factor: float = 0.92  # NCCL's tree busbw relative to ring
    pod_size: int | None = None  # GPUs per non-blocking pod, None: all non-blocking
    oversubscription: float = 1.0  # above the pod
    worst_case_pod: bool = False  # the pessimistic band: all cross-pod traffic oversubscribed

    def __post_init__(self) -> None:
        for name in ("gpus_per_node", "intra_busbw", "nic_bytes_per_s", "eta_net"):
            if not getattr(self, name) > 0:
                raise ValueError(f"fabric {name} must be positive, got {getattr(self, name)}")
        if self.oversubscription < 1:
            raise ValueError(f"oversubscription must be >= 1, got {self.oversubscription}")

    def inter_busbw(self, ppn: int, penalty: float = 1.0) -> float:
        """busbw across nodes: the group's ppn NICs per node (one per GPU, rail-optimised)
        at eta, over the cross-pod penalty."""
        ranks = max(1, min(ppn, self.gpus_per_node))
        return ranks * self.nic_bytes_per_s * self.eta_net / penalty


@dataclass(frozen=True)
class Choice:
    """One algorithm's cost at one size and group."""

    algorithm: str
    time_s: float
    latency_s: float
    bandwidth_s: float


def _nodes(n: int, ppn: int) -> int:
    return max(1, math.ceil(n / max(1, ppn)))


def ring(size: float, n: int, ppn: int, f: Fabric, penalty: float = 1.0) -> Choice:
    """Flat ring over n ranks, ppn per node: 2(n-1) steps, 2(m-1) of them on the network."""
    m = _nodes(n, ppn)
    steps, inter = 2 * (n - 1), 2 * (m - 1) if m > 1 else 0
    lat = f.base_latency_s + (steps - inter) * f.intra_alpha_s + inter * f.net_alpha_s
    busbw = f.intra_busbw if m == 1 else min(f.intra_busbw, f.inter_busbw(ppn, penalty))
    bw = 2 * (n - 1) / n * size / busbw
    return Choice("ring", lat + bw, lat, bw)


def tree(size: float, n: int, ppn: int, f: Fabric, penalty: float = 1.0) -> Choice:
    """Double binary tree between nodes, chain inside: 2·log2(m) network hops."""
    m = _nodes(n, ppn)
    lat = f.base_latency_s + 2 * (
        (min(ppn, n) - 1) * f.intra_alpha_s + math.log2(m) * f.net_alpha_s
    )
    busbw = f.intra_busbw if m == 1 else min(f.intra_busbw, f.inter_busbw(ppn, penalty))
    bw = 2 * size / (f.tree_bw_factor * busbw)
    return Choice("tree", lat + bw, lat, bw)


def hierarchical(size: float, n: int, ppn: int, f: Fabric, penalty: float = 1.0) -> Choice:
    """Reduce-scatter in the node, ring allreduce of the shard between nodes, allgather."""
    g, m = min(ppn, n), _nodes(n, ppn)
    inter_bw = f.nic_bytes_per_s * f.eta_net / penalty
    lat = f.base_latency_s + 2 * (g - 1) * f.intra_alpha_s + 2 * (m - 1) * f.net_alpha_s
    bw = 2 * (g - 1) / g * size / f.intra_busbw + 2 * (m - 1) / m * (size / g) / inter_bw
    return Choice("hierarchical", lat + bw, lat, bw)


def nvls(size: float, n: int, ppn: int, f: Fabric, penalty: float = 1.0) -> Choice | None:
    """NVLink SHARP in the node (NVLSTree between nodes); None where the fabric lacks it."""
    if f.nvls_busbw is None:
        return None
    m = _nodes(n, ppn)
    lat = 25e-6 + (2 * math.log2(m) * f.net_alpha_s if m > 1 else 0.0)
    busbw = f.nvls_busbw if m == 1 else min(f.nvls_busbw, f.inter_busbw(ppn, penalty))
    bw = 2 * (n - 1) / n * size / busbw
    return Choice("nvls" if m == 1 else "nvls_tree", lat + bw, lat, bw)


ALGORITHMS = (ring, tree, hierarchical, nvls)


def allreduce(
    size: float, n: int, ppn: int, f: Fabric, penalty: float = 1.0, only: str | None = None
) -> Choice:
    """The fastest algorithm for size bytes over n ranks (ppn per node), as NCCL picks."""
    if size <= 0 or n < 1:
        raise ValueError(f"allreduce needs a positive size and group, got {size} B on {n}")
    if n == 1:
        return Choice("none", 0.0, 0.0, 0.0)
    choices = [c for algo in ALGORITHMS if (c := algo(size, n, ppn, f, penalty)) is not None]
    if only is not None:
        choices = [c for c in choices if c.algorithm.startswith(only)]
    return min(choices, key=lambda c: c.time_s)


def busbw(size: float, n: int, choice: Choice) -> float:
    """nccl-tests' bus bandwidth of a modelled allreduce: 2(n-1)/n · S / t."""
    return 2 * (n - 1) / n * size / choice.time_s


def p2p(size: float, f: Fabric, penalty: float = 1.0) -> float:
    """One pipeline send between nodes: one network hop and the NIC's rate."""
    return f.net_alpha_s + size / (f.nic_bytes_per_s * f.eta_net / penalty)


def cross_pod_penalty(n_gpus: int, groups: int, f: Fabric) -> float:
    """Slowdown of DP traffic once the job spans pods: the groups' rings each send one flow
    out of a pod; the pod's uplinks carry pod_size / oversubscription NICs' worth."""
    if f.pod_size is None or n_gpus <= f.pod_size or f.oversubscription <= 1:
        return 1.0
    if f.worst_case_pod:
        return f.oversubscription
    return max(1.0, groups / (f.pod_size / f.oversubscription))
