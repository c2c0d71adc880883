"""`flopwatt peaks`: the packaged peak table, or every math mode's peak for one device."""

from __future__ import annotations

import json
from dataclasses import asdict

from bench.devices.base import GpuIdentity
from bench.errors import UsageError
from bench.peaks.lookup import resolve_peak
from bench.peaks.table import MATH_MODES, AmbiguousPeakError, find_row, load_table
from bench.results.render import rate_unit, si


def _device_peaks(gpu: GpuIdentity) -> dict[str, dict]:
    return {mode: asdict(resolve_peak(gpu, mode)) for mode in MATH_MODES}


def show_peaks(
    name: str | None,
    compute_capability: str | None,
    sm_count: int | None,
    max_clock_mhz: float | None,
    as_json: bool = False,
) -> int:
    """Print the table (no name) or one device's peaks; UsageError on incomplete input."""
    if name is None:
        rows = load_table()
        if as_json:
            print(json.dumps([asdict(r) for r in rows], indent=2, default=list))
            return 0
        for r in rows:
            modes = ", ".join(f"{m} {si(v, rate_unit(m))}" for m, v in r.ops_per_s.items())
            print(f"{r.sku} (cc {r.compute_capability or '-'}): {modes}")
        return 0
    if compute_capability is None:
        raise UsageError(
            "--gpu-name needs --compute-capability (e.g. 9.0): names alone are ambiguous"
        )
    try:
        row = find_row(name, compute_capability)
    except AmbiguousPeakError as exc:
        raise UsageError(str(exc)) from None
    gpu = GpuIdentity(
        vendor="amd" if name.upper().startswith("AMD") else "nvidia",
        name=name,
        compute_capability=compute_capability,
        sm_count=sm_count or (row.sm_count if row and row.sm_count else 0),  # 0: unknown
        max_sm_clock_hz=max_clock_mhz * 1e6 if max_clock_mhz else None,
    )
    peaks = _device_peaks(gpu)
    if as_json:
        print(
            json.dumps(
                {"device": asdict(gpu), "row": row.sku if row else None, "peaks": peaks}, indent=2
            )
        )
        return 0
    print(
        f"{name} (cc {compute_capability}): {'table row ' + row.sku if row else 'not in the table'}"
    )
    for mode, peak in peaks.items():
        value = si(peak["ops_per_s"], rate_unit(mode))
        print(f"  {mode:5s} {value:>14s}  {peak['source'] or 'unknown'}: {peak['detail']}")
    return 0
