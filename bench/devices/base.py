"""What a device is (identities) and how it is timed (the Backend protocol).

The identities are plain data so that peak lookup, environment capture and tests can use
them without a device. The Backend is the only thing the timing engine knows about a device:
how to mark a point in its stream, how long lay between two marks, how to wait for it, how to
flush its last-level cache, and (where it can) how to replay a block of calls as one graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class GpuIdentity:
    """A GPU as the runtime reports it; the key for the peak table."""

    vendor: str  # "nvidia" | "amd"
    name: str  # torch.cuda.get_device_name(), e.g. "NVIDIA H100 80GB HBM3"
    compute_capability: str  # "9.0"; HIP reports 9.4 for gfx942
    sm_count: int  # SMs (NVIDIA) or CUs (AMD)
    gcn_arch: str | None = None  # AMD only, e.g. "gfx942" (HIP's 9.0 is ambiguous)
    max_sm_clock_hz: float | None = None  # NVML max SM clock; None when NVML cannot say
    memory_bytes: int | None = None


@dataclass(frozen=True)
class CpuIdentity:
    """A CPU with the facts its derived peak needs, and where each came from."""

    model: str | None
    arch: str  # platform.machine(): "x86_64", "aarch64", ...
    flags: frozenset[str]  # ISA feature flags (/proc/cpuinfo "flags" or "Features")
    physical_cores: int | None
    threads: int  # the fixed torch thread count of the run
    max_clock_hz: float | None
    clock_source: str  # where max_clock_hz came from, or why it is None


DeviceIdentity = GpuIdentity | CpuIdentity


class Unsupported(Exception):
    """The device cannot do what was asked (a timing mode, a dtype); the message says why."""


@dataclass(frozen=True)
class DeviceFacts:
    """What a backend knows about its device, for results and the environment record."""

    kind: str  # "cpu" | "cuda"
    label: str  # "cpu", "cuda:0"
    identity: DeviceIdentity
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """How one device syncs, times and flushes. The runner never asks which device it is."""

    kind: str
    label: str
    default_mode: str  # the timing mode `auto` picks for ordinary kernels here
    supports_graphs: bool

    def torch_device(self) -> Any:
        """The torch.device that inputs are allocated on."""

    def synchronize(self) -> None:
        """Wait until all work queued on the device has finished."""

    def mark(self) -> Any:
        """Record a point in the device's work stream; pair two with elapsed_s()."""

    def elapsed_s(self, start: Any, end: Any) -> float:
        """Seconds between two marks; valid only after synchronize()."""

    def flush_cache(self) -> None:
        """Evict the inputs from the last-level cache and wait until the eviction's traffic
        (write-backs included) has ended; called outside timed intervals, right before one."""

    def capture_graph(self, fn: Callable[[], object], calls: int) -> Callable[[], None]:
        """A callable that replays `calls` calls of fn as one graph; Unsupported if none."""

    def clock_hz(self) -> tuple[float | None, str]:
        """Current compute clock and its source, or (None, the reason it is unknown)."""

    def free_memory_bytes(self) -> tuple[int | None, str]:
        """Memory free for new allocations and its source, or (None, reason)."""

    def facts(self) -> DeviceFacts:
        """Identity and other facts about the device."""

    # Optional: `tuning_frozen()`, a context manager that keeps autotuning (ROCm's TunableOp)
    # from running inside timed and energy windows; bench.measuring.timing uses it if present.

    def close(self) -> None:
        """Release buffers and handles."""
