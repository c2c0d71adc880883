"""CUDA backend (and ROCm's, which reuses torch.cuda): events as marks, a flush of twice the
last-level cache, CUDA/HIP graphs, clocks from NVML or amdsmi.

Events are recorded on the current stream and read only after a synchronize(), so a round of
samples costs one sync however many calls it holds. The cold-mode flush (bench.devices.flush)
writes then reads twice the last-level cache (at least 256 MiB on AMD, whose Infinity Cache
sits behind L2) and syncs, outside the timed interval. The device is matched to NVML by UUID,
falling back to the PCI bus id, never by index, because CUDA_VISIBLE_DEVICES renumbers devices
for torch but not for NVML. On ROCm (torch.version.hip set) the same holds for amdsmi,
matched by BDF, UUID, then HIP id (bench.hardware.amdsmi); the clock is the lowest XCD clock,
and TunableOp's tuning is frozen around timed windows (bench.devices.rocm).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import torch

from bench.devices import rocm
from bench.devices.base import DeviceFacts, GpuIdentity, Unsupported
from bench.devices.flush import CacheFlush, flush_size
from bench.hardware.amdsmi import (
    Amdsmi,
    AmdsmiCallFailed,
    AmdsmiDevice,
    AmdsmiUnavailable,
    open_amdsmi,
)
from bench.hardware.nvml import NvmlDevice, NvmlUnavailable, open_nvml

# torch.cuda._sleep cycles queued after the flush's sync: ~25 us at 2 GHz, longer than the
# host takes to queue the start mark and a call, so the GPU never idles waiting for them.
LAUNCH_COVER_CYCLES = 50_000


def pci_bus_id(props: Any) -> str | None:
    """NVML's bus-id spelling, "00000000:19:00.0", from torch's device properties."""
    try:
        return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
    except AttributeError:
        return None


def gpu_uuid(props: Any) -> str | None:
    """The device UUID as torch gives it (no "GPU-"/"MIG-" prefix), or None if hidden.

    The prefix is left to NVML's lookup, which tries both: torch cannot tell a MIG slice's
    UUID from a whole GPU's.
    """
    raw = getattr(props, "uuid", None)
    return None if raw is None else str(raw)


def gcn_arch(name: str | None) -> str | None:
    """The architecture of HIP's gcnArchName without its feature flags:
    "gfx942:sramecc+:xnack-" -> "gfx942"."""
    arch = (name or "").split(":")[0].strip()
    return arch or None


class CudaBackend:
    """Backend for one CUDA (or ROCm) device."""

    kind = "cuda"
    default_mode = "cold"
    supports_graphs = True

    def __init__(self, index: int) -> None:
        self.index = index
        self.label = f"cuda:{index}"
        self._device = torch.device("cuda", index)
        torch.cuda.set_device(self._device)
        self._props = torch.cuda.get_device_properties(index)
        self._vendor = "amd" if torch.version.hip else "nvidia"
        self._flush_size = flush_size(self._props, self._vendor)
        self._flush: CacheFlush | None = None
        self._nvml_device: NvmlDevice | None = None
        self._nvml_reason: str | None = None
        self._nvml = None
        self._amd: AmdsmiDevice | None = None
        self._amd_reason: str | None = None
        self._amdsmi: Amdsmi | None = None
        self._facts: DeviceFacts | None = None

    def torch_device(self) -> torch.device:
        return self._device

    def synchronize(self) -> None:
        torch.cuda.synchronize(self._device)

    def mark(self) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed_s(self, start: torch.cuda.Event, end: torch.cuda.Event) -> float:
        return start.elapsed_time(end) / 1e3

    def flush_cache(self) -> None:
        if self._flush is None:
            self._flush = CacheFlush(
                self._flush_size, self._device, self.synchronize, self._cover_launch
            )
        self._flush()

    @staticmethod
    def _cover_launch() -> None:
        sleep = getattr(torch.cuda, "_sleep", None)  # private but stable since torch 1.x
        if sleep is not None:
            sleep(LAUNCH_COVER_CYCLES)

    def capture_graph(self, fn: Callable[[], object], calls: int) -> Callable[[], None]:
        """Capture `calls` calls of fn in one CUDA graph (warmed up on a side stream first)."""
        try:
            side = torch.cuda.Stream(self._device)
            side.wait_stream(torch.cuda.current_stream(self._device))
            with torch.cuda.stream(side):
                for _ in range(3):
                    fn()
            torch.cuda.current_stream(self._device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for _ in range(calls):
                    fn()
        except RuntimeError as exc:
            raise Unsupported(f"CUDA graph capture failed: {str(exc).splitlines()[0]}") from exc
        return graph.replay

    def tuning_frozen(self) -> contextlib.AbstractContextManager[bool]:
        """TunableOp tuning off for a timed window (bench.measuring.timing calls this)."""
        return rocm.tuning_frozen(torch)

    def _amd_handle(self) -> AmdsmiDevice | None:
        """The amdsmi device for this torch device, opened once; None with a reason if none."""
        if self._amd is None and self._amd_reason is None:
            try:
                self._amdsmi = open_amdsmi()
                self._amd, _how, _notes = self._amdsmi.match(
                    self.index, gpu_uuid(self._props), pci_bus_id(self._props), os.environ
                )
            except (AmdsmiUnavailable, AmdsmiCallFailed) as exc:
                self._amd_reason = str(exc)
        return self._amd

    def _nvml_handle(self) -> NvmlDevice | None:
        """The NVML device for this torch device, opened once; None with a reason if none."""
        if self._vendor == "amd":
            self._nvml_reason = "NVML describes NVIDIA GPUs; this one is AMD (amdsmi instead)"
            return None
        if self._nvml_device is None and self._nvml_reason is None:
            try:
                self._nvml = open_nvml()
            except NvmlUnavailable as exc:
                self._nvml_reason = str(exc)
                return None
            self._nvml_device, self._nvml_reason = self._match_nvml(self._nvml)
        return self._nvml_device

    def _match_nvml(self, nvml: Any) -> tuple[NvmlDevice | None, str | None]:
        """By UUID, else by PCI bus id; never by index."""
        reasons = []
        for key, lookup in (
            (gpu_uuid(self._props), nvml.device_by_uuid),
            (pci_bus_id(self._props), nvml.device_by_pci_bus_id),
        ):
            if key is None:
                continue
            try:
                return lookup(key), None
            except NvmlUnavailable as exc:
                reasons.append(str(exc))
        return None, "; ".join(reasons) or "torch exposes neither UUID nor PCI bus id"

    def clock_hz(self) -> tuple[float | None, str]:
        if self._vendor == "amd":
            amd = self._amd_handle()
            if amd is None:
                return None, f"amdsmi unavailable: {self._amd_reason}"
            value, reason = amd.min_gfx_clock_hz()
            return value, "amdsmi lowest XCD gfx clock" if value is not None else str(reason)
        device = self._nvml_handle()
        if device is None:
            return None, f"NVML unavailable: {self._nvml_reason}"
        value, reason = device.sm_clock_hz()
        return value, "nvml current SM clock" if value is not None else str(reason)

    def free_memory_bytes(self) -> tuple[int | None, str]:
        free, _total = torch.cuda.mem_get_info(self._device)
        return int(free), "torch.cuda.mem_get_info"

    def facts(self) -> DeviceFacts:
        """Read once: the identity does not change during a run."""
        if self._facts is None:
            self._facts = self._read_facts()
        return self._facts

    def _read_facts(self) -> DeviceFacts:
        props = self._props
        device = self._nvml_handle()
        max_clock = device.max_sm_clock_hz()[0] if device is not None else None
        amd = self._amd_handle() if self._vendor == "amd" else None
        if amd is not None:
            max_clock = amd.clock_hz("GFX", "max_clk")[0]
        gcn = getattr(props, "gcnArchName", None)
        identity = GpuIdentity(
            vendor=self._vendor,
            name=torch.cuda.get_device_name(self.index),
            compute_capability=f"{props.major}.{props.minor}",
            sm_count=int(props.multi_processor_count),
            gcn_arch=gcn_arch(gcn),
            max_sm_clock_hz=max_clock,
            memory_bytes=int(props.total_memory),
        )
        return DeviceFacts(
            kind=self.kind,
            label=self.label,
            identity=identity,
            extra={
                "index": self.index,
                "uuid": gpu_uuid(props),
                "pci_bus_id": pci_bus_id(props),
                "l2_bytes": int(getattr(props, "L2_cache_size", 0) or 0) or None,
                "memory_bytes": int(props.total_memory),
                "flush_bytes": self._flush_size.nbytes,
                "flush_source": self._flush_size.source,
                "nvml_unavailable_reason": self._nvml_reason,
                **(
                    {"amdsmi_unavailable_reason": self._amd_reason} if self._vendor == "amd" else {}
                ),
            },
        )

    def close(self) -> None:
        if self._flush is not None:
            self._flush.release()
            self._flush = None
        if self._nvml is not None:
            self._nvml.close()
            self._nvml = None
            self._nvml_device = None
        if self._amdsmi is not None:
            self._amdsmi.close()
            self._amdsmi = None
            self._amd = None
