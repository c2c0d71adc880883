"""AmdsmiPowerSource: AMD GPU energy from amdsmi's accumulator, cross-checked by sampled power.

The same protocol and energy rules as NvmlPowerSource, through bench/hardware/amdsmi.py:
- the energy accumulator (ticks × counter_resolution µJ) is read at the window's edges,
  followed across a wrap of its 64-bit counter; a counter that goes backwards otherwise
  (driver reload) is not used for the window it spans;
- a 20 Hz sampler records socket power (current_socket_power on MI300 and newer, else
  average_socket_power), the lowest XCD clock, the memory clock and the hotspot temperature;
- the trapezoidal integral of the sampled power is the cross-check, and the energy
  (labelled amdsmi_power_integral) where the accumulator cannot be used: SR-IOV virtual
  functions in VM guests ("... VF" names) have none;
- the counter's update period is probed once at idle, and shorter windows are refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from bench.devices.base import DeviceFacts, GpuIdentity
from bench.hardware.amdsmi import (
    Amdsmi,
    AmdsmiCallFailed,
    AmdsmiDevice,
    AmdsmiUnavailable,
    EnergyTracker,
    open_amdsmi,
)
from bench.power.base import (
    AMDSMI_COUNTER,
    AMDSMI_INTEGRAL,
    EnergyReading,
    PowerSample,
    PowerUnavailable,
)
from bench.power.counter_energy import choose_energy, counter_delta
from bench.power.sampler import DEFAULT_RATE_HZ, Sampler, probe_update_period, trapezoid_energy

SCOPE = "GPU socket (amdsmi)"
LABELS = (AMDSMI_COUNTER, AMDSMI_INTEGRAL, "amdsmi")


def is_rocm_gpu(facts: DeviceFacts) -> bool:
    return isinstance(facts.identity, GpuIdentity) and facts.identity.vendor == "amd"


def open_matched(
    facts: DeviceFacts, environ: Mapping[str, str], opener: Callable[[], Amdsmi]
) -> tuple[Amdsmi, AmdsmiDevice, str, list[str]]:
    """The amdsmi session and the device of this run, or PowerUnavailable saying why.

    Without a ROCm device amdsmi has nothing to measure, except when the module is the test
    fake: a synthetic run then reads the fake's first GPU, and says so in `matched_by`.
    """
    rocm = is_rocm_gpu(facts)
    try:
        smi = opener()
    except AmdsmiUnavailable as exc:
        where = "" if rocm else f"no ROCm device (this run is on {facts.label}), and "
        raise PowerUnavailable(f"{where}{exc}") from exc
    try:
        if not rocm:
            if smi.synthetic_reason is None:
                raise PowerUnavailable(
                    f"amdsmi measures AMD GPUs under ROCm; this run is on {facts.label} "
                    "(use --power auto, or run on a ROCm device)"
                )
            device = smi.devices()[0]
            return (
                smi,
                device,
                f"synthetic: the fake's first GPU (kernels ran on {facts.label})",
                [],
            )
        extra = facts.extra
        device, how, notes = smi.match(
            int(extra.get("index", 0)), extra.get("uuid"), extra.get("pci_bus_id"), environ
        )
        return smi, device, how, notes
    except (AmdsmiUnavailable, AmdsmiCallFailed, IndexError) as exc:
        smi.close()
        raise PowerUnavailable(f"no amdsmi device for {facts.label}: {exc}") from exc
    except PowerUnavailable:
        smi.close()
        raise


class AmdsmiWindow:
    """One open window: the accumulator read at start, the sampler running until stop()."""

    def __init__(self, source: AmdsmiPowerSource) -> None:
        self._source = source
        self._faults_at_start = source.counter_faults
        self._counter_start = source.counter_reading()
        self._start = source.clock()
        self._sampler = Sampler(self._sample, source.rate_hz, source.clock).start()

    def _sample(self, now: float) -> PowerSample:
        device = self._source.device
        current, average = device.power_w()
        power = current if self._source.channel == "current" else average
        if power[0] is None:
            raise AmdsmiCallFailed(f"socket power ({self._source.channel}): {power[1]}")
        return PowerSample(
            t_s=now,
            power_w=power[0],
            power_avg_w=average[0],
            sm_clock_hz=device.min_gfx_clock_hz()[0],
            mem_clock_hz=device.clock_hz("MEM")[0],
            temp_c=device.temperature_c("HOTSPOT")[0],
        )

    def stop(self, window_s: float) -> EnergyReading:
        samples = tuple(self._sampler.stop())
        end = self._source.clock()
        failure = None if self._sampler.error is None else str(self._sampler.error)
        try:
            counter_end = self._source.counter_reading()
        except AmdsmiCallFailed as exc:
            counter_end, failure = (None, str(exc)), failure or str(exc)
        counter_j, counter_reason = counter_delta(self._counter_start, counter_end)
        if counter_j is None and self._counter_start[0] is not None:
            failure = failure or f"energy accumulator stopped answering ({counter_reason})"
        if self._source.counter_faults != self._faults_at_start:
            counter_j, counter_reason = None, self._source.last_fault
        integral = trapezoid_energy(
            [s.t_s for s in samples], [s.power_w for s in samples], self._start, end
        )
        energy, source, reason = choose_energy(
            counter_j,
            counter_reason,
            integral,
            window_s,
            self._source.update_period_s(),
            failure,
            LABELS,
        )
        if source == AMDSMI_INTEGRAL and self._source.reason:
            reason = f"{self._source.reason}; {reason}"
        return EnergyReading(
            energy_j=energy,
            energy_source=source,
            reason=reason,
            window_s=window_s,
            integral_j=integral,
            counter_j=counter_j,
            samples=samples,
            scope=self._source.scope,
        )


class AmdsmiPowerSource:
    """Energy of one AMD GPU through amdsmi."""

    name = "amdsmi"
    available = True

    def __init__(
        self,
        smi: Amdsmi,
        device: AmdsmiDevice,
        matched_by: str,
        rate_hz: float = DEFAULT_RATE_HZ,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], object] = time.sleep,
        known_period_s: float | None = None,
    ) -> None:
        self._smi = smi
        self.device = device
        self.matched_by = matched_by
        self.match_notes: list[str] = []
        self.rate_hz, self.clock, self.sleep = rate_hz, clock, sleep
        self.synthetic_reason = smi.synthetic_reason
        self._tracker = EnergyTracker()
        self._lock = threading.Lock()
        self.counter_faults = 0
        self.last_fault: str | None = None
        self._period: float | None = known_period_s
        self._period_probed = known_period_s is not None
        name = device.name()[0] or "AMD GPU"
        self.vf = str(name).rstrip().endswith("VF")
        current, _average = device.power_w()
        self.channel = "current" if current[0] is not None else "average"
        self.scope = SCOPE + (": an SR-IOV virtual function" if self.vf else "")
        self.reason: str | None = None
        if self.counter_reading()[0] is None:
            self.reason = (
                f"{name}: no energy accumulator in a VM guest; energy is the integral of "
                "sampled socket power"
                if self.vf
                else "no energy accumulator; energy is the integral of sampled socket power"
            )

    @classmethod
    def open(
        cls,
        facts: DeviceFacts,
        environ: Mapping[str, str],
        opener: Callable[[], Amdsmi] = open_amdsmi,
        **kwargs: Any,
    ) -> AmdsmiPowerSource:
        """Match the torch device in amdsmi, or raise PowerUnavailable saying why."""
        smi, device, how, notes = open_matched(facts, environ, opener)
        try:
            source = cls(smi, device, how, **kwargs)
        except AmdsmiCallFailed as exc:
            smi.close()
            raise PowerUnavailable(str(exc)) from exc
        source.match_notes = notes
        if not is_rocm_gpu(facts) and source.synthetic_reason:
            source.synthetic_reason += (
                f"; the kernels ran on {facts.label}, the energy is the fake GPU's scripted power"
            )
        current, average = device.power_w()
        if current[0] is None and average[0] is None:
            source.close()
            raise PowerUnavailable(f"amdsmi reads no socket power: {current[1]}; {average[1]}")
        return source

    def counter_reading(self) -> tuple[float | None, str | None]:
        """Energy in J since this source first read the accumulator, across wraps."""
        reading, reason = self.device.energy_ticks()
        if reading is None:
            return None, reason
        ticks, resolution_uj = reading
        with self._lock:
            fault = self._tracker.step(ticks)
            if fault is not None:
                self.counter_faults += 1
                self.last_fault = fault
            return self._tracker.total_ticks * resolution_uj * 1e-6, None

    def counter_j(self) -> float | None:
        return self.counter_reading()[0]

    def update_period_s(self) -> float | None:
        """Measured once, by polling the accumulator at idle; None if it cannot be told."""
        if not self._period_probed:
            self._period_probed = True
            self._period = probe_update_period(self.counter_j, clock=self.clock, sleep=self.sleep)
        return self._period

    def has_idle_model(self) -> bool:
        return True

    def start_window(self) -> AmdsmiWindow:
        return AmdsmiWindow(self)

    def unavailable_readings(self) -> dict[str, str]:
        """Why each reading the windows record is None here, read once."""
        device = self.device
        current, average = device.power_w()
        readings = {
            "power_current": current,
            "power_average": average,
            "energy_counter": self.counter_reading(),
            "gfx_clocks": device.gfx_clocks_hz(),
            "mem_clock": device.clock_hz("MEM"),
            "temperature_hotspot": device.temperature_c("HOTSPOT"),
        }
        out = {name: str(why) for name, (value, why) in readings.items() if value is None}
        out["throttle_time"] = "amdsmi reports violation shares, not times (see health)"
        return out

    def describe(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "available": True,
            "reason": self.reason,
            "scope": self.scope,
            "matched_by": self.matched_by,
            "match_notes": self.match_notes,
            "virtual_function": self.vf,
            "sample_rate_hz": self.rate_hz,
            "power_channel": f"{self.channel}_socket_power",
            "counter_update_period_s": self.update_period_s(),
            "counter_wraps": self._tracker.wraps,
            "unavailable": self.unavailable_readings(),
        }
        if self.synthetic_reason is not None:
            out["synthetic_reason"] = self.synthetic_reason
        return out

    def close(self) -> None:
        self._smi.close()
