"""The GPU cache flush of cold-mode timing: how big, and in which order its passes run.

A flush must leave nothing of the timed kernel's inputs in the last-level cache and nothing
dirty that the timed kernel would have to write back. So the buffer is twice the cache (a
replacement policy that is not strict LRU still keeps part of a buffer of exactly its size),
and it is touched twice: a write pass that evicts everything (dirty lines of the previous
call are written back now, outside the timed interval), then a read pass that refills the
cache with clean lines, whose eviction by the timed kernel costs no write-back. A device
sync then waits for both, so none of their traffic overlaps the interval; a short busy
kernel queued after the sync covers the host's launch latency of the marks and call that
follow, so the timed interval starts when the kernel can start, not when the host caught up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# AMD's Infinity Cache (up to 256 MiB on MI300X) sits behind L2 and is not in the properties.
AMD_LAST_LEVEL_FLOOR_BYTES = 256 * 1024**2
FLUSH_MULTIPLE = 2


@dataclass(frozen=True)
class FlushSize:
    """How many bytes the flush touches, and from what that number came."""

    nbytes: int
    source: str


def flush_size(props: Any, vendor: str) -> FlushSize:
    """Twice the device's last-level cache, from its properties (torch's L2_cache_size).

    On AMD the last level is at least the Infinity Cache floor; an L2 size the runtime does
    not report (0 or missing) falls back to that floor on either vendor, and says so.
    """
    l2 = int(getattr(props, "L2_cache_size", 0) or 0)
    if vendor == "amd":
        last, source = max(l2, AMD_LAST_LEVEL_FLOOR_BYTES), "max(L2, 256 MiB Infinity Cache)"
    elif l2 > 0:
        last, source = l2, "L2_cache_size"
    else:
        last, source = AMD_LAST_LEVEL_FLOOR_BYTES, "L2 size not reported: 256 MiB assumed"
    return FlushSize(FLUSH_MULTIPLE * last, f"{FLUSH_MULTIPLE} x {source}")


class CacheFlush:
    """One flush buffer and its passes: write, read, synchronise, cover the launch latency.

    The device operations are torch calls on whatever device the buffer lives on, so the
    same object runs on a CPU tensor in tests; `synchronize` and `cover` are the device's.
    """

    def __init__(
        self,
        size: FlushSize,
        device: Any,
        synchronize: Callable[[], None],
        cover: Callable[[], None] = lambda: None,
    ) -> None:
        import torch

        self.size = size
        self._buf = torch.empty(size.nbytes // 4, dtype=torch.int32, device=device)
        self._synchronize = synchronize
        self._cover = cover
        self._value = 0

    def __call__(self) -> Any:
        """Flush; returns the read pass's result (a device scalar: reading it would sync)."""
        self._value ^= 1  # a new value each time, so no pass can be skipped as a no-op
        self._buf.fill_(self._value)
        total = self._buf.sum()
        self._synchronize()
        self._cover()
        return total

    def release(self) -> None:
        self._buf = None  # type: ignore[assignment]
