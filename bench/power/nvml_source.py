"""NvmlPowerSource: GPU energy from NVML's hardware counter, cross-checked by sampled power.

Per window: the total-energy counter and the throttle-time counters are read at the edges,
and a 20 Hz sampler records power (instant and 1 s average), SM and memory clocks,
temperature and the clock-event reasons. The counter is the headline figure; the trapezoidal
integral of the sampled power is the cross-check, and the fallback (labelled as such) where
the counter cannot be used. A MIG slice is measured on its parent GPU and said to be.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from bench.devices.base import DeviceFacts
from bench.hardware.nvml import Nvml, NvmlCallFailed, NvmlDevice, NvmlUnavailable, open_nvml
from bench.power.base import (
    EnergyReading,
    PowerSample,
    PowerUnavailable,
)
from bench.power.counter_energy import choose_energy, counter_delta
from bench.power.sampler import DEFAULT_RATE_HZ, Sampler, probe_update_period, trapezoid_energy

SCOPE = "GPU board (NVML)"


def visible_device_target(torch_index: int, cuda_visible_devices: str | None) -> tuple[str, Any]:
    """("uuid", "GPU-…") or ("index", n): which NVML device torch's device index means.

    Only the last resort when torch exposes neither UUID nor PCI bus id. CUDA_VISIBLE_DEVICES
    lists indices or UUIDs; NVML indices follow PCI order, which CUDA also uses only when
    CUDA_DEVICE_ORDER=PCI_BUS_ID, so an index here can still be wrong (the caller warns).
    """
    if cuda_visible_devices is None or not cuda_visible_devices.strip():
        return "index", torch_index
    entries = [e.strip() for e in cuda_visible_devices.split(",") if e.strip()]
    if torch_index >= len(entries):
        raise PowerUnavailable(
            f"torch device {torch_index} is not in CUDA_VISIBLE_DEVICES={cuda_visible_devices}"
        )
    entry = entries[torch_index]
    return ("index", int(entry)) if entry.isdigit() else ("uuid", entry)


def match_device(
    nvml: Nvml, facts: DeviceFacts, environ: Mapping[str, str]
) -> tuple[NvmlDevice, str, list[str]]:
    """The NVML device of a torch device: by UUID, else PCI bus id, else CUDA_VISIBLE_DEVICES;
    with how it was matched and why each earlier way failed."""
    reasons = []
    for key, lookup in (("uuid", nvml.device_by_uuid), ("pci_bus_id", nvml.device_by_pci_bus_id)):
        value = facts.extra.get(key)
        if value:
            try:
                return lookup(str(value)), key, reasons
            except NvmlUnavailable as exc:
                reasons.append(str(exc))
    kind, target = visible_device_target(
        int(facts.extra.get("index", 0)), environ.get("CUDA_VISIBLE_DEVICES")
    )
    try:
        if kind == "uuid":
            return nvml.device_by_uuid(target), "CUDA_VISIBLE_DEVICES uuid", reasons
        how = "index (PCI order; may differ from CUDA's order)"
        return nvml.device_by_index(target), how, reasons
    except NvmlUnavailable as exc:
        reasons.append(str(exc))
    raise PowerUnavailable("; ".join(reasons))


class NvmlWindow:
    """One open window: counters read at start, the sampler running until stop()."""

    def __init__(self, source: NvmlPowerSource) -> None:
        self._source = source
        device = source.energy_device
        self._counter_start = device.total_energy_j()
        self._throttle_start = device.violation_times_s()
        self._channel = source.power_channel()
        self._start = source.clock()
        self._sampler = Sampler(self._sample, source.rate_hz, source.clock).start()

    def _sample(self, now: float) -> PowerSample:
        device = self._source.energy_device
        instant, average = device.power_instant_average_w()
        if self._channel == "instant" and instant[0] is None:
            raise NvmlCallFailed("power field (instant)", str(instant[1]))
        if self._channel == "average" and average[0] is None:
            raise NvmlCallFailed("power field (average)", str(average[1]))
        power = instant[0] if self._channel == "instant" else average[0]
        if self._channel == "usage":
            power, reason = device.power_usage_w()
            if power is None:
                raise NvmlCallFailed("nvmlDeviceGetPowerUsage", str(reason))
        return PowerSample(
            t_s=now,
            power_w=power,
            power_avg_w=average[0],
            sm_clock_hz=device.sm_clock_hz()[0],
            mem_clock_hz=device.mem_clock_hz()[0],
            temp_c=device.temperature_c()[0],
            event_reasons=device.clocks_event_reasons()[0],
        )

    def stop(self, window_s: float) -> EnergyReading:
        samples = tuple(self._sampler.stop())
        end = self._source.clock()
        failure = None if self._sampler.error is None else str(self._sampler.error)
        device = self._source.energy_device
        try:
            counter_end = device.total_energy_j()
            throttle_end = device.violation_times_s()
        except NvmlCallFailed as exc:
            counter_end, throttle_end = (None, str(exc)), {}
            failure = failure or str(exc)
        counter_j, counter_reason = counter_delta(self._counter_start, counter_end)
        if counter_j is None and self._counter_start[0] is not None:
            failure = failure or f"energy counter stopped answering ({counter_reason})"
        integral = trapezoid_energy(
            [s.t_s for s in samples], [s.power_w for s in samples], self._start, end
        )
        energy, source, reason = choose_energy(
            counter_j, counter_reason, integral, window_s, self._source.update_period_s(), failure
        )
        throttle = {
            name: end_value - self._throttle_start[name][0]
            for name, (end_value, _) in throttle_end.items()
            if end_value is not None and self._throttle_start[name][0] is not None
        }
        return EnergyReading(
            energy_j=energy,
            energy_source=source,
            reason=reason,
            window_s=window_s,
            integral_j=integral,
            counter_j=counter_j,
            samples=samples,
            throttle_time_s=throttle,
            scope=self._source.scope,
        )


class NvmlPowerSource:
    """Energy of one GPU through NVML."""

    name = "nvml"
    available = True

    def __init__(
        self,
        nvml: Nvml,
        device: NvmlDevice,
        matched_by: str,
        rate_hz: float = DEFAULT_RATE_HZ,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], object] = time.sleep,
        known_period_s: float | None = None,
    ) -> None:
        """`known_period_s` skips the probe of the counter's update period (it is then taken
        as given); `clock` and `sleep` are the probe's and the sampler's."""
        self._nvml = nvml
        self.device = device
        self.matched_by = matched_by
        self.match_notes: list[str] = []  # why the better ways of matching failed
        self.mig, self._mig_reason = device.mig_reading()
        self.energy_device = device.parent()
        self.rate_hz = rate_hz
        self.clock = clock
        self.scope = SCOPE + (": the whole GPU this MIG slice lives on" if self.mig else "")
        self.reason: str | None = (
            "MIG slice: power and energy are the whole GPU's, shared with other slices"
            if self.mig
            else None
        )
        self.sleep = sleep
        self._period: float | None = known_period_s
        self._period_probed = known_period_s is not None

    @classmethod
    def open(
        cls,
        facts: DeviceFacts,
        environ: Mapping[str, str],
        opener: Callable[[], Nvml] = open_nvml,
        **kwargs: Any,
    ) -> NvmlPowerSource:
        """Match the torch device in NVML, or raise PowerUnavailable saying why."""
        try:
            nvml = opener()
        except NvmlUnavailable as exc:
            raise PowerUnavailable(str(exc)) from exc
        try:
            device, matched_by, notes = match_device(nvml, facts, environ)
            source = cls(nvml, device, matched_by, **kwargs)
            source.match_notes = notes
            return source
        except (PowerUnavailable, NvmlUnavailable) as exc:
            nvml.close()
            raise PowerUnavailable(str(exc)) from exc

    def power_channel(self) -> str:
        """Which power reading the sampler integrates: instant, else average, else usage."""
        instant, average = self.energy_device.power_instant_average_w()
        if instant[0] is not None:
            return "instant"
        return "average" if average[0] is not None else "usage"

    def update_period_s(self) -> float | None:
        """Measured once, by polling the counter at idle; None if it cannot be told."""
        if not self._period_probed:
            self._period_probed = True
            self._period = probe_update_period(self.counter_j, clock=self.clock, sleep=self.sleep)
        return self._period

    def counter_j(self) -> float | None:
        return self.energy_device.total_energy_j()[0]

    def unavailable_readings(self) -> dict[str, str]:
        """Why each reading the windows would record is None here (a sandbox refusing NVML
        calls one by one): read once, so that a None in every sample has its reason."""
        device = self.energy_device
        instant, average = device.power_instant_average_w()
        readings = {
            "power_instant": instant,
            "power_average": average,
            "energy_counter": device.total_energy_j(),
            "sm_clock": device.sm_clock_hz(),
            "mem_clock": device.mem_clock_hz(),
            "temperature": device.temperature_c(),
            "clock_event_reasons": device.clocks_event_reasons(),
        }
        if instant[0] is None and average[0] is None:
            readings["power_usage"] = device.power_usage_w()
        for name, reading in device.violation_times_s().items():
            readings[f"throttle_time_{name}"] = reading
        out = {name: str(why) for name, (value, why) in readings.items() if value is None}
        if self._mig_reason is not None:
            out["mig_slice"] = f"{self._mig_reason}; taken as a whole GPU"
        return out

    def has_idle_model(self) -> bool:
        return True

    def start_window(self) -> NvmlWindow:
        return NvmlWindow(self)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "available": True,
            "reason": self.reason,
            "scope": self.scope,
            "matched_by": self.matched_by,
            "match_notes": self.match_notes,
            "mig_slice": self.mig,
            "sample_rate_hz": self.rate_hz,
            "power_channel": self.power_channel(),
            "counter_update_period_s": self.update_period_s(),
            "unavailable": self.unavailable_readings(),
        }

    def close(self) -> None:
        self._nvml.close()
