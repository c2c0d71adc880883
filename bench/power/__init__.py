"""Power sources, chosen once by the CLI. bench/hardware/ holds the only pynvml and amdsmi
imports.

`auto` takes the best source the device has and records why it skipped the better ones:
on an NVIDIA GPU NVML, on an AMD GPU (ROCm) amdsmi, then an estimate from the peak table's
TDP; on a CPU RAPL, then an estimate from --tdp-w; else none. A source asked for by name
that cannot work is an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.devices.base import DeviceFacts, GpuIdentity
from bench.power.base import PowerSource, PowerUnavailable
from bench.power.null import NullPowerSource

__all__ = ["POWER_CHOICES", "NullPowerSource", "PowerChoice", "PowerSource", "open_power_source"]

POWER_CHOICES = ("auto", "nvml", "amdsmi", "rapl", "estimate", "none")


@dataclass
class PowerChoice:
    """The opened source and, for `auto`, why each better source was not used."""

    source: PowerSource
    requested: str
    skipped: list[str] = field(default_factory=list)


def _gpu_tdp(identity: GpuIdentity) -> tuple[float | None, str]:
    from bench.peaks.table import row_for

    row, why = row_for(identity)
    if row is None:
        return None, why
    if row.tdp_w is None:
        return None, f"{identity.name} has no TDP in the peak table"
    return row.tdp_w, f"peak table, {row.sku}"


def _open(
    kind: str, facts: DeviceFacts, tdp_w: float | None, environ: Mapping[str, str], powercap: Path
) -> PowerSource:
    """One named source, or PowerUnavailable saying why not."""
    if kind == "nvml":
        if facts.kind != "cuda":
            raise PowerUnavailable("NVML measures NVIDIA GPUs; this run is on a CPU")
        from bench.power.nvml_source import NvmlPowerSource

        return NvmlPowerSource.open(facts, environ)
    if kind == "amdsmi":
        from bench.power.amdsmi_source import AmdsmiPowerSource

        return AmdsmiPowerSource.open(facts, environ)
    if kind == "rapl":
        if facts.kind != "cpu":
            raise PowerUnavailable("RAPL measures CPU packages; this run is on a GPU")
        from bench.power.rapl import RaplPowerSource

        return RaplPowerSource.open(powercap)
    if kind == "estimate":
        from bench.power.estimate import EstimatePowerSource

        if tdp_w is not None:
            return EstimatePowerSource(tdp_w, "--tdp-w", facts.kind)
        if isinstance(facts.identity, GpuIdentity):
            table_tdp, source = _gpu_tdp(facts.identity)
            if table_tdp is not None:
                return EstimatePowerSource(table_tdp, source, facts.kind)
            raise PowerUnavailable(f"no TDP to estimate from ({source}); pass --tdp-w")
        raise PowerUnavailable("a CPU has no TDP in the peak table; pass --tdp-w")
    if kind == "none":
        return NullPowerSource("--power none")
    raise PowerUnavailable(f"unknown power source {kind!r}; choose from {', '.join(POWER_CHOICES)}")


def open_power_source(
    choice: str,
    facts: DeviceFacts,
    *,
    tdp_w: float | None = None,
    environ: Mapping[str, str] | None = None,
    powercap: Path = Path("/sys/class/powercap"),
) -> PowerChoice:
    """The source for `choice` on this device; PowerUnavailable if a named one cannot work."""
    environ = os.environ if environ is None else environ
    if choice != "auto":
        return PowerChoice(_open(choice, facts, tdp_w, environ, powercap), choice)
    order = ("rapl", "estimate")
    if isinstance(facts.identity, GpuIdentity):
        order = ("amdsmi" if facts.identity.vendor == "amd" else "nvml", "estimate")
    skipped = []
    for kind in order:
        try:
            return PowerChoice(_open(kind, facts, tdp_w, environ, powercap), "auto", skipped)
        except PowerUnavailable as exc:
            skipped.append(f"{kind}: {exc}")
    reason = "no power source: " + "; ".join(skipped)
    return PowerChoice(NullPowerSource(reason), "auto", skipped)
