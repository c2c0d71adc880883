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
