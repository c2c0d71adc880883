"""The two fractions next to frac_of_peak: of the measured ceiling, and of the clock peak.

- frac_of_measured_peak = achieved / the best matmul median measured on this device and
  math mode (stored in ceiling.json or measured in this run): "78% of achievable".
- frac_of_clock_peak = achieved / (spec peak x measured SM clock / spec clock): the peak
  scales with the clock the device really ran at, so a power-capped or hot GPU is not
  blamed on the kernel. The clock is the energy window's median SM clock when the energy
  phase sampled one, else the mean of the clocks read just before and after timing.

Each denominator is stored beside its fraction with its provenance, or None with the reason.
"""

from __future__ import annotations

from bench.measuring import metrics
from bench.results.ceiling_model import MeasuredPeak
from bench.results.record import CaseDraft

# A case this far above its ceiling is flagged: beyond the noise of two medians.
ABOVE_CEILING = 1.02


def measured_clock_hz(result: CaseDraft) -> tuple[float | None, str]:
    """The clock the case ran at and where it was read, or (None, why it is unknown)."""
    if result.sm_clock_hz_median is not None:
        return result.sm_clock_hz_median, "median SM clock of the energy window"
    before, after = result.clock_hz_before, result.clock_hz_after
    if before is not None and after is not None:
        where = f"mean of the clocks before and after timing ({result.clock_source})"
        return (before + after) / 2, where
    return None, f"no clock recorded around the case ({result.clock_source or 'not read'})"


def clock_peak(result: CaseDraft) -> tuple[float | None, str]:
    """peak x measured clock / spec clock, with the factors spelled out, or (None, why)."""
    if result.peak_ops_per_s is None:
        return None, "no spec peak to scale"
    if result.peak_clock_hz is None:
        return None, f"the {result.peak_source} peak names no spec clock"
    clock, where = measured_clock_hz(result)
    if clock is None:
        return None, where
    value = result.peak_ops_per_s * clock / result.peak_clock_hz
    detail = (
        f"{result.peak_source} peak x {clock / 1e9:.4g} GHz ({where}) / "
        f"{result.peak_clock_hz / 1e9:.4g} GHz spec clock"
    )
    return value, detail


def fill_ratios(result: CaseDraft, measured: MeasuredPeak | None) -> None:
    """Set the measured-ceiling and clock-peak denominators and fractions of one case."""
    if measured is None:
        measured = MeasuredPeak(None, None, "this run looks up no measured ceiling")
    result.measured_peak_ops_per_s = measured.ops_per_s
    result.measured_peak_source = measured.source
    result.measured_peak_detail = measured.detail
    result.frac_of_measured_peak = metrics.fraction(result.achieved_ops_per_s, measured.ops_per_s)
    result.clock_peak_ops_per_s, result.clock_peak_detail = clock_peak(result)
    result.frac_of_clock_peak = metrics.fraction(
        result.achieved_ops_per_s, result.clock_peak_ops_per_s
    )
    frac = result.frac_of_measured_peak
    if frac is not None and frac > ABOVE_CEILING:
        note = (
            f"{frac:.1%} of the measured {result.math_mode or result.dtype} ceiling "
            f"({measured.source}): noise or drift between the two medians"
        )
        modes = (result.timing_mode, measured.timing_mode)
        if all(modes) and modes[0] != modes[1]:
            note += (
                f", and this case was timed {result.timing_mode} while the ceiling was timed "
                f"{measured.timing_mode} (flushed caches): not like with like"
            )
        result.warnings.append(note)
