"""RaplPowerSource: CPU package energy from Linux powercap (/sys/class/powercap).

Only the top-level package zones are summed (their core/uncore/dram sub-zones are inside or
beside them, and summing everything double counts); the MMIO duplicates newer Intel parts
expose are used only when the MSR zones are absent. The counters wrap at
max_energy_range_uj (minutes at full load on AMD), so the sampler accumulates deltas at
20 Hz and each delta is taken modulo the range. energy_uj is root-only since Linux 5.10
(CVE-2020-8694); unreadable means unavailable, with that reason, never zero.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.power.base import RAPL, EnergyReading, PowerSample, PowerUnavailable
from bench.power.sampler import DEFAULT_RATE_HZ, Sampler, probe_update_period

POWERCAP = Path("/sys/class/powercap")
SCOPE = "CPU packages (RAPL)"
_PACKAGE = re.compile(r"intel-rapl(-mmio)?:\d+")


@dataclass(frozen=True)
class RaplZone:
    name: str  # e.g. "package-0"
    path: Path
    max_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def counter_delta_uj(previous: int, current: int, max_range_uj: int) -> int:
    """Energy between two readings of a counter that wraps to 0 after max_range_uj."""
    return current - previous if current >= previous else current + max_range_uj - previous


def find_zones(root: Path = POWERCAP) -> list[RaplZone]:
    """The package zones under root; MSR ("intel-rapl") preferred over MMIO duplicates."""
    if not root.is_dir():
        raise PowerUnavailable(f"{root} does not exist (no powercap/RAPL on this machine)")
    dirs = sorted(p for p in root.iterdir() if _PACKAGE.fullmatch(p.name))
    msr = [p for p in dirs if not p.name.startswith("intel-rapl-mmio")]
    zones = []
    for path in msr or dirs:
        try:
            name = (path / "name").read_text().strip()
            max_range = int((path / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError) as exc:
            raise PowerUnavailable(f"cannot read RAPL zone {path}: {exc}") from exc
        zones.append(RaplZone(name, path, max_range))
    if not zones:
        raise PowerUnavailable(f"no RAPL package zone under {root}")
    for zone in zones:
        try:
            zone.read_uj()
        except PermissionError as exc:
            raise PowerUnavailable(
                f"{zone.path / 'energy_uj'} is root-only (Linux 5.10+, CVE-2020-8694); run as "
                "root or make it readable"
            ) from exc
        except (OSError, ValueError) as exc:
            raise PowerUnavailable(f"cannot read {zone.path / 'energy_uj'}: {exc}") from exc
    return zones


class RaplWindow:
    """Accumulates every zone's wrapped deltas on each sampler tick."""

    def __init__(self, source: RaplPowerSource) -> None:
        self._source = source
        self._last = [z.read_uj() for z in source.zones]
        self._total_uj = 0
        self._last_t = source.clock()
        self._sampler = Sampler(self._sample, source.rate_hz, source.clock).start()

    def _advance(self, now: float) -> float | None:
        """Add the energy since the last reading; return the mean power since then."""
        current = [z.read_uj() for z in self._source.zones]
        delta = sum(
            counter_delta_uj(p, c, z.max_range_uj)
            for p, c, z in zip(self._last, current, self._source.zones, strict=True)
        )
        dt = now - self._last_t
        self._last, self._last_t = current, now
        self._total_uj += delta
        return delta / 1e6 / dt if dt > 0 else None

    def _sample(self, now: float) -> PowerSample:
        return PowerSample(t_s=now, power_w=self._advance(now))

    def stop(self, window_s: float) -> EnergyReading:
        samples = tuple(self._sampler.stop())
        failure = self._sampler.error
        try:
            self._advance(self._source.clock())
        except (OSError, ValueError) as exc:
            failure = failure or exc
        if failure is not None:
            return EnergyReading(
                None,
                None,
                f"RAPL read failed during the window: {failure}",
                window_s,
                samples=samples,
                scope=SCOPE,
            )
        energy = self._total_uj / 1e6
        period = self._source.update_period_s()
        if period is not None and window_s < period:
            return EnergyReading(
                None,
                None,
                f"window {window_s:.4f} s is shorter than the RAPL update period {period:.4f} s",
                window_s,
                samples=samples,
                scope=SCOPE,
            )
        if energy <= 0:
            return EnergyReading(
                None, None, "RAPL counters did not advance", window_s, samples=samples, scope=SCOPE
            )
        return EnergyReading(
            energy, RAPL, None, window_s, counter_j=energy, samples=samples, scope=SCOPE
        )


class RaplPowerSource:
    """Energy of the CPU packages through RAPL."""

    name = "rapl"
    available = True
    reason = None

    def __init__(
        self,
        zones: list[RaplZone],
        rate_hz: float = DEFAULT_RATE_HZ,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.zones = zones
        self.rate_hz = rate_hz
        self.clock = clock
        self._period: float | None = None
        self._probed = False

    @classmethod
    def open(cls, root: Path = POWERCAP, **kwargs: Any) -> RaplPowerSource:
        return cls(find_zones(root), **kwargs)

    def update_period_s(self) -> float | None:
        if not self._probed:
            self._probed = True
            self._period = probe_update_period(
                lambda: sum(z.read_uj() for z in self.zones),
                duration_s=0.1,
                poll_s=0.0005,
                clock=self.clock,
                max_s=0.5,
            )
        return self._period

    def counter_j(self) -> float | None:
        """The zones' counters summed (a wrap only looks like one more tick)."""
        try:
            return sum(z.read_uj() for z in self.zones) / 1e6
        except (OSError, ValueError):
            return None

    def has_idle_model(self) -> bool:
        return True

    def start_window(self) -> RaplWindow:
        return RaplWindow(self)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "available": True,
            "reason": None,
            "scope": SCOPE,
            "zones": [z.name for z in self.zones],
            "sample_rate_hz": self.rate_hz,
            "counter_update_period_s": self.update_period_s(),
        }

    def close(self) -> None:
        """Nothing to release: sysfs files are opened per read."""
