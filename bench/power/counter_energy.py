"""The energy rules every counter-backed power source follows (NVML, amdsmi).

A window's energy is the hardware counter's advance where it is usable, else the labelled
integral of the sampled power, and never zero or negative (docs/power.md).
"""

from __future__ import annotations

from bench.power.base import NVML_COUNTER, NVML_INTEGRAL


def choose_energy(
    counter_j: float | None,
    counter_reason: str | None,
    integral_j: float | None,
    window_s: float,
    update_period_s: float | None,
    failure: str | None,
    labels: tuple[str, str, str] = (NVML_COUNTER, NVML_INTEGRAL, "NVML"),
) -> tuple[float | None, str | None, str | None]:
    """(energy_j, energy_source, reason) for a window, by flopwatt's energy rules (docs/power.md).

    `labels` are the counter's and the integral's energy_source and the library's name, so
    that another library's source (amdsmi) follows the same rules under its own labels.

    Refuse windows shorter than the counter's update period and windows during which NVML
    failed; prefer the counter; fall back to the integral, labelled, when the counter did not
    advance or went backwards (a driver reload resets it); never report zero or negative.
    """
    counter_label, integral_label, library = labels
    if failure is not None:
        return None, None, f"{library} failed during the window: {failure}"
    if update_period_s is not None and window_s < update_period_s:
        return (
            None,
            None,
            (
                f"window {window_s:.3f} s is shorter than the energy counter's "
                f"update period {update_period_s:.3f} s"
            ),
        )
    if counter_j is not None and counter_j > 0:
        return counter_j, counter_label, None
    if counter_j is None:
        why = f"energy counter unavailable ({counter_reason})"
    elif counter_j < 0:
        why = "energy counter went backwards (driver reload?)"
    else:
        why = "energy counter did not advance"
    if integral_j is not None and integral_j > 0:
        return integral_j, integral_label, f"{why}; sampled power integrated instead"
    return None, None, f"{why}, and no usable power samples"


def counter_delta(
    start: tuple[float | None, str | None], end: tuple[float | None, str | None]
) -> tuple[float | None, str | None]:
    """The counter's advance over a window from its (value, reason) at each edge; a reading
    that failed at either edge gives None with that edge's reason."""
    if start[0] is None:
        return None, start[1]
    if end[0] is None:
        return None, end[1]
    return end[0] - start[0], None
