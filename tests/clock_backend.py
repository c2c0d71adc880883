"""A backend on an injected clock, for testing the timing engine's logic deterministically.

This is not a stand-in for a real device (the CPU backend runs the real path in other
tests): it is the "injected clock" that lets a test script exactly how long each call,
flush and sync takes, and then assert what measure() must conclude from it.
"""

from __future__ import annotations

from collections.abc import Callable


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedCall:
    """A zero-argument callable whose i-th call takes durations(i) seconds of fake time."""

    def __init__(self, clock: FakeClock, durations: Callable[[int], float]) -> None:
        self.clock = clock
        self.durations = durations
        self.calls = 0

    def __call__(self) -> None:
        self.clock.advance(self.durations(self.calls))
        self.calls += 1


class ClockBackend:
    """Marks read the fake clock; a flush costs `flush_s`; syncs cost `sync_s`."""

    kind = "clock"
    label = "clock"
    supports_graphs = False

    def __init__(
        self, clock: FakeClock, default_mode: str = "hot", flush_s: float = 0.0, sync_s: float = 0.0
    ) -> None:
        self.clock = clock
        self.default_mode = default_mode
        self.flush_s = flush_s
        self.sync_s = sync_s
        self.flushes = 0
        self.syncs = 0

    def torch_device(self) -> str:
        return "cpu"

    def synchronize(self) -> None:
        self.syncs += 1
        self.clock.advance(self.sync_s)

    def mark(self) -> float:
        return self.clock.now

    def elapsed_s(self, start: float, end: float) -> float:
        return end - start

    def flush_cache(self) -> None:
        self.flushes += 1
        self.clock.advance(self.flush_s)

    def capture_graph(self, fn, calls):
        from bench.devices.base import Unsupported

        raise Unsupported("the clock backend has no graphs")

    def clock_hz(self) -> tuple[float | None, str]:
        return None, "no clock on the clock backend"

    def free_memory_bytes(self) -> tuple[int | None, str]:
        return None, "unknown"

    def close(self) -> None:
        pass
