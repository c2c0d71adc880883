"""CPU backend: perf_counter_ns marks, a fixed torch thread count, and a real LLC flush.

Work on a CPU is synchronous, so a mark is a host timestamp and synchronize() has nothing to
wait for. The thread count is set once, when the backend is made, and recorded: torch's
default follows the machine and the environment, and a number measured with an unknown
thread count cannot be compared with anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.devices.base import DeviceFacts, Unsupported
from bench.devices.clockprobe import measure_core_clock
from bench.devices.cpuinfo import read_cpu_identity


def last_level_cache_bytes(root: Path = Path("/")) -> int | None:
    """Largest cache size that sysfs lists for cpu0, or None when sysfs does not say."""
    sizes = []
    for size_file in (root / "sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = size_file.read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes) if sizes else None


def read_meminfo_available(root: Path = Path("/")) -> int | None:
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def running_clock_hz(root: Path = Path("/")) -> tuple[float | None, str]:
    """The highest core's current clock, where /proc/cpuinfo's "cpu MHz" is one: with
    cpufreq, or where the kernel reads it from the APERF/MPERF counters. Elsewhere (a VM)
    it is a fixed figure from the hypervisor, and a clock peak scaled by it would be wrong."""
    try:
        text = (root / "proc/cpuinfo").read_text()
    except OSError:
        return None, "/proc/cpuinfo unreadable"
    lines = text.splitlines()
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    has_cpufreq = (root / "sys/devices/system/cpu/cpu0/cpufreq").is_dir()
    if not has_cpufreq and "aperfmperf" not in flags:
        return None, "no cpufreq and no APERF/MPERF: /proc/cpuinfo cpu MHz is a fixed figure here"
    try:
        mhz = [float(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("cpu mhz")]
    except ValueError:
        mhz = []
    if mhz:
        return max(mhz) * 1e6, "/proc/cpuinfo cpu MHz (highest core)"
    return None, "/proc/cpuinfo lists no cpu MHz"


class CpuBackend:
    """Backend for torch's CPU device."""

    kind = "cpu"
    label = "cpu"
    default_mode = "hot"
    supports_graphs = False

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        llc = last_level_cache_bytes()
        # Twice the LLC: caches need not be inclusive, and a flush that leaves data behind is
        # worse than one that costs a millisecond outside the timed interval.
        self._flush_bytes = 2 * llc if llc else 64 * 1024**2
        self._flush_source = "2 x sysfs LLC size" if llc else "64 MiB (sysfs gives no LLC size)"
        self._flush_buf: torch.Tensor | None = None
        self._facts: DeviceFacts | None = None

    def torch_device(self) -> torch.device:
        return torch.device("cpu")

    def synchronize(self) -> None:
        """Nothing to wait for: CPU kernels return when they are done."""

    def mark(self) -> int:
        return time.perf_counter_ns()

    def elapsed_s(self, start: int, end: int) -> float:
        return (end - start) / 1e9

    def flush_cache(self) -> None:
        if self._flush_buf is None:
            self._flush_buf = torch.empty(self._flush_bytes // 4, dtype=torch.int32)
        self._flush_buf.fill_(1)

    def capture_graph(self, fn: Callable[[], object], calls: int) -> Callable[[], None]:
        raise Unsupported("graph timing needs a CUDA device; use --timing hot or cold on a CPU")

    def clock_hz(self) -> tuple[float | None, str]:
        return running_clock_hz()

    def free_memory_bytes(self) -> tuple[int | None, str]:
        available = read_meminfo_available()
        if available is None:
            return None, "/proc/meminfo has no MemAvailable"
        return available, "/proc/meminfo MemAvailable"

    def facts(self) -> DeviceFacts:
        """Read once: the identity does not change during a run."""
        if self._facts is None:
            self._facts = DeviceFacts(
                kind=self.kind,
                label=self.label,
                identity=read_cpu_identity(self.threads, clock_probe=measure_core_clock),
                extra={
                    "threads": self.threads,
                    "flush_bytes": self._flush_bytes,
                    "flush_source": self._flush_source,
                },
            )
        return self._facts

    def close(self) -> None:
        self._flush_buf = None
