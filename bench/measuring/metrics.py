"""Pure metric functions. Every one accepts None and propagates it: unknown in, unknown out."""

from __future__ import annotations


def achieved_ops_per_s(ops: int | float | None, time_s: float | None) -> float | None:
    """ops / time; None when either is unknown or the time is not positive."""
    if ops is None or time_s is None or time_s <= 0:
        return None
    return ops / time_s


def fraction(value: float | None, denominator: float | None) -> float | None:
    """value / denominator for ratios such as frac_of_peak; None when undefined."""
    if value is None or denominator is None or denominator <= 0:
        return None
    return value / denominator


# A rate this far above its peak is beyond timing noise: the peak is wrong, not the kernel fast.
PEAK_MARGIN = 1.02


def peak_exceeded(frac_of_peak: float | None) -> bool | None:
    """Whether a fraction of peak is above PEAK_MARGIN; None when it is unknown."""
    return None if frac_of_peak is None else frac_of_peak > PEAK_MARGIN


def arithmetic_intensity(ops: int | float | None, bytes_moved: int | float | None) -> float | None:
    """Operations per byte: where a kernel sits on the roofline."""
    if ops is None or bytes_moved is None or bytes_moved <= 0:
        return None
    return ops / bytes_moved


def ops_per_j(
    ops: int | float | None, iterations: int | None, energy_j: float | None
) -> float | None:
    """Operations per joule over an energy window (TOPS/W is the same number / 1e12)."""
    if ops is None or iterations is None or energy_j is None or energy_j <= 0:
        return None
    return ops * iterations / energy_j


def net_energy_j(
    energy_j: float | None, idle_power_w: float | None, window_s: float | None
) -> float | None:
    """Energy above idle; None when unknown or when idle would explain all of it."""
    if energy_j is None or idle_power_w is None or window_s is None:
        return None
    net = energy_j - idle_power_w * window_s
    return net if net > 0 else None


# nccl-tests' bus-bandwidth factors (doc/PERFORMANCE.md): busbw = algbw x factor(n). S is the
# operation's total size: the per-rank buffer for allreduce, the gathered (or scattered) total
# for allgather and reduce-scatter.
BUS_FACTORS = {
    "allreduce": lambda n: 2 * (n - 1) / n,
    "allgather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
}


def bus_factor(collective: str, world_size: int) -> float:
    """nccl-tests' factor that turns algbw into busbw; 0 for a world of one (no bus at all)."""
    if world_size < 1:
        raise ValueError(f"world size must be at least 1, got {world_size}")
    return BUS_FACTORS[collective](world_size)


def algbw(total_bytes: int | None, time_s: float | None) -> float | None:
    """Algorithm bandwidth S / t in bytes/s."""
    return achieved_ops_per_s(total_bytes, time_s)


def busbw(
    total_bytes: int | None, time_s: float | None, collective: str, world_size: int
) -> float | None:
    """Bus bandwidth: algbw x the collective's factor, comparable to the link's peak."""
    value = algbw(total_bytes, time_s)
    return None if value is None else value * bus_factor(collective, world_size)


def weak_scaling_efficiency(
    throughput_n: float | None, throughput_1: float | None, n: int
) -> float | None:
    """E(N) = X(N) / (N X(1)) with fixed work per rank; X is throughput."""
    if throughput_n is None or throughput_1 is None or throughput_1 <= 0 or n < 1:
        return None
    return throughput_n / (n * throughput_1)


def strong_scaling_efficiency(time_1: float | None, time_n: float | None, n: int) -> float | None:
    """E(N) = T(1) / (N T(N)) with fixed total work split across ranks; T is step time."""
    if time_1 is None or time_n is None or time_n <= 0 or n < 1:
        return None
    return time_1 / (n * time_n)
