"""bench.power_window(): the energy a device used while a block of code ran.

The window opens and closes at synchronised edges (the device has finished the work queued
before it, and the work inside it), the way flopwatt's energy phase measures a case.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.api import inputs

OPEN = "the window is still open: read it after the with block"


@dataclass
class PowerWindow:
    """What a power source measured over one `with bench.power_window(...)` block.

    energy_j and avg_power_w are None until the block ends, and afterwards when nothing could
    measure them; `reason` then says why. `source` names the sensor (nvml_energy_counter,
    nvml_power_integral, amdsmi_energy_counter, amdsmi_power_integral, rapl or estimate);
    `reason` also carries its caveat when it has one.
    """

    device: str
    energy_j: float | None = None
    avg_power_w: float | None = None
    window_s: float | None = None
    source: str | None = None
    scope: str | None = None  # what the sensor covers: "GPU board", "CPU packages", ...
    reason: str | None = OPEN


@contextmanager
def power_window(device: Any = None, *, power: Any = "auto") -> Iterator[PowerWindow]:
    """Measure the energy of the code inside the with block on `device`.

    device: as for bench.measure ("cpu", "cuda:N", a torch.device; None = the caller's
    current device). power: "auto" (NVML on CUDA, RAPL on a CPU if readable), "nvml",
    "rapl", "none", or an opened bench.power source.

    >>> import torch, bench
    >>> a = torch.randn(512, 512)
    >>> with bench.power_window("cpu") as w:
    ...     for _ in range(100):
    ...         b = a @ a
    >>> w.energy_j is not None or w.reason is not None
    True

    A sensor updates every few ms (RAPL) to 100 ms (NVML): windows shorter than about a
    second are mostly the sensor's granularity. An exception inside the block still closes
    the window (no sampler thread outlives it) and propagates.
    """
    inputs.check_power(power)
    backend = inputs.open_backend(device)
    try:
        window = PowerWindow(backend.label)
        choice, owned = inputs.open_power(power, backend.facts())
        source = choice.source
        try:
            if not source.available:
                window.reason = source.reason
                yield window
                return
            yield from _measured(window, backend, source)
        finally:
            if owned:
                source.close()
    finally:
        backend.close()


def _measured(window: PowerWindow, backend: Any, source: Any) -> Iterator[PowerWindow]:
    backend.synchronize()
    sensor = source.start_window()
    start = time.perf_counter()
    try:
        yield window
        backend.synchronize()
    finally:
        reading = sensor.stop(time.perf_counter() - start)
    window.window_s = reading.window_s
    window.energy_j, window.source = reading.energy_j, reading.energy_source
    window.scope, window.reason = reading.scope or None, reading.reason
    if reading.energy_j is not None and reading.window_s > 0:
        window.avg_power_w = reading.energy_j / reading.window_s
