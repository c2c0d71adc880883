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
