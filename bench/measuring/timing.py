"""measure(): turn a callable into raw per-call times the way nvbench and do_bench would.

The order is fixed: one untimed call and a sync (JIT, lazy loading, workspace allocation);
a warm-up by time that ends when the per-call time stops trending; then samples in rounds
with one sync per round, until the adaptive stopping rule says the median is trustworthy or
the per-case timeout ends it. Three sampling modes, chosen per case and recorded:

- cold: the last-level cache is flushed before every call, outside the recorded interval, and
  each call gets its own pair of marks (CUDA events); no sync inside a round.
- hot: back-to-back calls between one pair of marks, each sample at least `min_sample_s` long
  so that timer resolution does not matter (on a CPU this is perf_counter_ns over blocks).
- graph: as hot, but the block is one CUDA-graph replay, for kernels of a few microseconds
  whose launch overhead would otherwise be measured instead of the kernel.

Autotuning stays out of every timed and energy window: a backend that has it (ROCm's
TunableOp) tunes a shape during the untimed first call and is frozen from then on.

Every sample is kept; statistics are derived from them in bench.measuring.stats. measure_energy() is
the separate energy phase that follows: back-to-back calls in a window the power source
measures, so that flushes and warm-up never land in the joules.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.devices.base import Backend, Unsupported
from bench.measuring.stats import Summary, rel_stdev, summarize
from bench.power.base import EnergyReading, PowerSource

Clock = Callable[[], float]
MODES = ("auto", "cold", "hot", "graph")
COLD_FIRST_ROUND = 16  # calls in the first cold round; later rounds are sized by its wall time


@dataclass(frozen=True)
class Policy:
    """How long and how hard to measure one case. The CLI builds one per device kind."""

    mode: str = "auto"
    min_samples: int = 10
    min_time_s: float = 0.5  # measured seconds before any criterion may stop
    max_noise: float = 0.01  # target relative noise (stdev / mean)
    timeout_s: float = 15.0  # wall-clock limit for the whole case measurement
    warmup_min_s: float = 1.0
    warmup_max_s: float = 10.0
    trend_tol: float = 0.02  # relative change across the warm-up window still called flat
    trend_window: int = 8  # warm-up blocks the trend is fitted over (they span warmup_min_s)
    min_sample_s: float = 1e-3  # hot and graph samples are at least this long
    round_s: float = 0.05  # work enqueued between two syncs
    graph_below_s: float = 20e-6  # auto mode uses graphs for kernels faster than this
    noise_history: int = 64  # noise estimates needed before the stabilisation test
    noise_check_every: int = 16
    noise_stable_spread: float = 0.05  # relative spread of recent noise estimates
    max_samples: int = 200_000

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown timing mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.max_noise <= 0 or self.timeout_s <= 0 or self.min_samples < 1:
            raise ValueError("max_noise and timeout_s must be positive, min_samples at least 1")


@dataclass(frozen=True)
class Warmup:
    """What the warm-up did and whether the per-call time had stopped trending."""

    seconds: float
    calls: int
    stable: bool
    block_per_call_s: tuple[float, ...]

    @property
    def per_call_estimate_s(self) -> float:
        tail = sorted(self.block_per_call_s[-3:])
        return tail[len(tail) // 2]


@dataclass(frozen=True)
class Timings:
    """Raw samples (per-call seconds) and how they were taken."""

    samples_s: tuple[float, ...]
    calls_per_sample: tuple[int, ...]
    round_of_sample: tuple[int, ...]
    mode: str
    mode_reason: str
    stop_reason: str
    first_call_s: float
    warmup: Warmup
    measured_time_s: float  # sum of recorded intervals
    wall_time_s: float  # host wall time of the sampling rounds, syncs included
    summary: Summary = field(repr=False)

    @property
    def warnings(self) -> list[str]:
        notes = list(self.summary.warnings())
        if not self.warmup.stable:
            notes.append(f"warm-up still trending after {self.warmup.seconds:.1f} s")
        if self.stop_reason == "timeout" and self.summary.rel_noise > 0:
            notes.append(f"timed out at {self.summary.rel_noise:.2%} noise")
        return notes


class StoppingRule:
    """nvbench's stdrel criterion as a pure object: feed samples, ask whether to stop.

    Stop once there are at least `min_samples` samples and `min_time_s` measured seconds and
    either the relative noise is under target, or the noise estimate itself has stabilised
    above it (relative spread of the last 512 estimates under `noise_stable_spread`, checked
    every `noise_check_every` samples once `noise_history` estimates exist), or at the timeout.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.n = 0
        self.measured_s = 0.0
        self._mean = 0.0
        self._m2 = 0.0
        self._noise_history: list[float] = []
        self._stabilised = False

    @property
    def noise(self) -> float:
        if self.n < 2 or self._mean <= 0:
            return math.inf
        return math.sqrt(self._m2 / (self.n - 1)) / self._mean

    def add(self, per_call_s: float, calls: int = 1) -> None:
        self.n += 1
        self.measured_s += per_call_s * calls
        delta = per_call_s - self._mean
        self._mean += delta / self.n
        self._m2 += delta * (per_call_s - self._mean)
        if self.n >= 5:
            self._noise_history.append(self.noise)
            del self._noise_history[:-512]
        p = self.policy
        if len(self._noise_history) >= p.noise_history and self.n % p.noise_check_every == 0:
            self._stabilised = rel_stdev(self._noise_history) < p.noise_stable_spread

    def stop_reason(self, elapsed_s: float) -> str | None:
        p = self.policy
        if elapsed_s >= p.timeout_s:
            return "timeout"
        if self.n >= p.max_samples:
            return "max_samples"
        if self.n < p.min_samples or self.measured_s < p.min_time_s:
            return None
        if self.noise < p.max_noise:
            return "noise_below_target"
        if self._stabilised:
            return "noise_stabilised"
        return None


def is_trending(per_call_s: list[float] | tuple[float, ...], window: int, tol: float) -> bool:
    """True while the last `window` block times still drift by more than `tol` of their median.

    A least-squares line is fitted to the window; the drift it implies across the window must
    be both larger than tol and statistically significant (|t| > 2) to count, so plain noise
    does not keep a stable kernel warming up forever.
    """
    if len(per_call_s) < window:
        return True
    ys = list(per_call_s[-window:])
    n = len(ys)
    x_mean = (n - 1) / 2
    y_mean = math.fsum(ys) / n
    sxx = math.fsum((i - x_mean) ** 2 for i in range(n))
    slope = math.fsum((i - x_mean) * (y - y_mean) for i, y in enumerate(ys)) / sxx
    median = sorted(ys)[n // 2]
    drift = abs(slope) * (n - 1) / median if median > 0 else math.inf
    if drift <= tol:
        return False
    resid = math.fsum((y - (y_mean + slope * (i - x_mean))) ** 2 for i, y in enumerate(ys))
    stderr = math.sqrt(resid / (n - 2) / sxx) if n > 2 else 0.0
    return stderr == 0.0 or abs(slope) / stderr > 2.0


def _timed_block(fn: Callable[[], object], backend: Backend, calls: int) -> float:
    """Per-call seconds of `calls` back-to-back calls, synchronised."""
    start = backend.mark()
    for _ in range(calls):
        fn()
    end = backend.mark()
    backend.synchronize()
    return backend.elapsed_s(start, end) / calls


def warm_up(
    fn: Callable[[], object],
    backend: Backend,
    policy: Policy,
    first_call_s: float,
    clock: Clock,
) -> Warmup:
    """Run back-to-back blocks until the per-call time stops trending (or warmup_max_s).

    Blocks are sized so that the trend window spans the minimum warm-up: a drift is then
    judged over a second of work on a GPU, not over a few milliseconds where it hides.
    """
    block_s = max(policy.warmup_min_s / policy.trend_window, policy.min_sample_s)
    start = clock()
    estimate = max(first_call_s, 1e-9)
    blocks: list[float] = []
    calls_done = 0
    stable = False
    while True:
        calls = max(1, int(block_s / estimate))
        per_call = _timed_block(fn, backend, calls)
        blocks.append(per_call)
        calls_done += calls
        estimate = max(per_call, 1e-9)
        elapsed = clock() - start
        if elapsed >= policy.warmup_min_s and not is_trending(
            blocks, policy.trend_window, policy.trend_tol
        ):
            stable = True
            break
        if elapsed >= policy.warmup_max_s:
            break
    return Warmup(clock() - start, calls_done, stable, tuple(blocks))


def choose_mode(policy: Policy, backend: Backend, per_call_s: float) -> tuple[str, str]:
    """Resolve `auto` from the warmed-up per-call time; say why."""
    if policy.mode != "auto":
        return policy.mode, "requested"
    if backend.supports_graphs and per_call_s < policy.graph_below_s:
        return "graph", f"auto: {per_call_s * 1e6:.1f} us per call is launch-bound"
    return backend.default_mode, f"auto: default for {backend.kind}"


def calls_per_sample(mode: str, min_sample_s: float, per_call_s: float) -> int:
    """Calls between one pair of marks: one when cold; else enough to fill min_sample_s.

    A graph replays this many calls, so its interval is divided by the same number: the
    division and the capture can never disagree.
    """
    if mode == "cold":
        return 1
    return max(1, math.ceil(min_sample_s / max(per_call_s, 1e-9)))


def measure(
    fn: Callable[[], object],
    backend: Backend,
    policy: Policy,
    clock: Clock = time.perf_counter,
    *,
    before_each: Callable[[], object] | None = None,
) -> Timings:
    """Measure fn on backend under policy; raises Unsupported if the mode cannot run here.

    `before_each` (cold mode only) runs before every timed call, before its flush and outside
    the recorded interval: MAMF finder re-randomises the output there so that every call
    really writes new data and draws realistic power.
    """
    if before_each is not None and policy.mode != "cold":
        raise ValueError("before_each needs timing mode 'cold': only cold calls are timed apart")
    start = clock()
    fn()
    backend.synchronize()
    first_call_s = clock() - start
    with tuning_frozen(backend):
        return _measure_warm(fn, backend, policy, clock, before_each, start, first_call_s)


def tuning_frozen(backend: Backend) -> contextlib.AbstractContextManager[object]:
    """The backend's guard that keeps autotuning (ROCm's TunableOp) out of timed windows;
    the untimed first call has tuned the case's shape by then. Optional on a backend."""
    guard = getattr(backend, "tuning_frozen", None)
    return guard() if guard is not None else contextlib.nullcontext()


def _measure_warm(
    fn: Callable[[], object],
    backend: Backend,
    policy: Policy,
    clock: Clock,
    before_each: Callable[[], object] | None,
    start: float,
    first_call_s: float,
) -> Timings:
    """measure() after its untimed first call: warm-up, mode choice, sampling rounds."""
    warm = warm_up(fn, backend, policy, first_call_s, clock)
    estimate = max(warm.per_call_estimate_s, 1e-9)
    mode, why = choose_mode(policy, backend, estimate)
    calls = calls_per_sample(mode, policy.min_sample_s, estimate)
    block = fn
    if mode == "graph":
        try:
            block = backend.capture_graph(fn, calls)
        except Unsupported as exc:
            if policy.mode == "graph":
                raise
            mode, why, block = "hot", f"auto: graph capture failed ({exc}); hot instead", fn
    per_round = max(1, min(1000, int(policy.round_s / (estimate * calls))))
    if mode == "cold":  # a flush's cost is unknown until a round has run (ms on a CPU)
        per_round = min(per_round, COLD_FIRST_ROUND)

    rule = StoppingRule(policy)
    samples: list[float] = []
    calls_of: list[int] = []
    round_of: list[int] = []
    wall = 0.0
    reason: str | None = None
    round_no = 0
    while reason is None:
        t0 = clock()
        if mode == "cold":
            intervals = _cold_round(fn, backend, per_round, before_each)
        elif mode == "graph":
            intervals = _block_round(block, backend, per_round, 1)
        else:
            intervals = _block_round(fn, backend, per_round, calls)
        round_wall = clock() - t0
        wall += round_wall
        if mode == "cold":  # size the next round by what a call cost with its flush
            per_call_wall = max(round_wall / len(intervals), 1e-9)
            per_round = max(1, min(1000, int(policy.round_s / per_call_wall)))
        per_sample_calls = 1 if mode == "cold" else calls
        for seconds in intervals:
            per_call = seconds / per_sample_calls
            samples.append(per_call)
            calls_of.append(per_sample_calls)
            round_of.append(round_no)
            rule.add(per_call, per_sample_calls)
        round_no += 1
        reason = rule.stop_reason(clock() - start)
    return Timings(
        samples_s=tuple(samples),
        calls_per_sample=tuple(calls_of),
        round_of_sample=tuple(round_of),
        mode=mode,
        mode_reason=why,
        stop_reason=reason,
        first_call_s=first_call_s,
        warmup=warm,
        measured_time_s=rule.measured_s,
        wall_time_s=wall,
        summary=summarize(samples),
    )


def _cold_round(
    fn: Callable[[], object],
    backend: Backend,
    n: int,
    before_each: Callable[[], object] | None = None,
) -> list[float]:
    """n calls, each after a cache flush and between its own marks; one sync at the end.

    before_each runs before the flush, so that the lines it dirties are written back by the
    flush rather than inside the timed interval; the flush ends synchronised (Backend).
    """
    marks = []
    for _ in range(n):
        if before_each is not None:
            before_each()
        backend.flush_cache()
        start = backend.mark()
        fn()
        marks.append((start, backend.mark()))
    backend.synchronize()
    return [backend.elapsed_s(a, b) for a, b in marks]


def _block_round(block: Callable[[], object], backend: Backend, n: int, calls: int) -> list[float]:
    """n samples, each `calls` back-to-back calls of block between one pair of marks."""
    marks = []
    for _ in range(n):
        start = backend.mark()
        for _ in range(calls):
            block()
        marks.append((start, backend.mark()))
    backend.synchronize()
    return [backend.elapsed_s(a, b) for a, b in marks]


# How long an edge waits for the energy counter to tick, in update periods, before the window
# goes on unaligned (a counter that stalls must not stall the run).
EDGE_WAIT_PERIODS = 3.0


@dataclass(frozen=True)
class EnergyPolicy:
    """The energy phase: a ramp that is not counted, then a window that is.

    On a GPU the window is at least 5 s: the A100/H100 power sensor sees only part of each
    100 ms, so a short window is an unsound sample of the power, not just a noisy one.
    """

    window_s: float = 5.0
    ramp_s: float = 0.5
    block_s: float = 0.1  # back-to-back work between the syncs that bound the window
    edge_block_s: float = 0.002  # work between counter polls while an edge waits for a tick
    warn_below_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.window_s > 0 or self.ramp_s < 0:
            raise ValueError("the energy window must be positive and the ramp not negative")


def default_energy_policy(kind: str) -> EnergyPolicy:
    """Seconds on a GPU (its sensor sees part of each 100 ms); a CPU's RAPL updates every ms,
    and the quick CPU suite must stay within 90 s."""
    if kind == "cpu":
        return EnergyPolicy(window_s=1.0, ramp_s=0.25, warn_below_s=1.0)
    return EnergyPolicy(window_s=5.0, ramp_s=0.5)


@dataclass(frozen=True)
class EnergyPhase:
    """What the energy phase ran and what the power source measured over it.

    `aligned`: both window edges fell right after a tick of the source's energy counter, so
    the counter's difference covers the window itself and not the window rounded to ticks.
    """

    reading: EnergyReading
    window_s: float
    iterations: int
    ramp_s: float
    warnings: list[str] = field(default_factory=list)
    aligned: bool = False


def measure_energy(
    fn: Callable[[], object],
    backend: Backend,
    power: PowerSource,
    policy: EnergyPolicy,
    per_call_s: float,
    clock: Clock = time.perf_counter,
) -> EnergyPhase:
    """Run fn back to back: a ramp, then a window between synchronised edges, counted.

    Where the source has an energy counter with a known update period, each edge waits (the
    work still running, in short synchronised blocks) until the counter ticks: the window
    opens right after one tick and closes right after another, so the counter's difference
    is the energy of the window, without up to one period of quantisation at each edge.
    Syncs inside the window only bound its length (one per `block_s` of work, so the idle gap
    they leave is a few microseconds per 100 ms). The power window is always closed, so no
    sampler thread outlives it even when the kernel raises.
    """
    with tuning_frozen(backend):
        return _energy_phase(fn, backend, power, policy, per_call_s, clock)


def _energy_phase(
    fn: Callable[[], object],
    backend: Backend,
    power: PowerSource,
    policy: EnergyPolicy,
    per_call_s: float,
    clock: Clock,
) -> EnergyPhase:
    """measure_energy() with autotuning frozen."""
    calls = max(1, int(policy.block_s / max(per_call_s, 1e-9)))
    edge_calls = max(1, int(policy.edge_block_s / max(per_call_s, 1e-9)))
    ramp_start = clock()
    while clock() - ramp_start < policy.ramp_s:
        _run_block(fn, backend, calls)
    period = power.update_period_s()
    wait_s = EDGE_WAIT_PERIODS * period if period is not None else 0.0
    notes = []
    aligned = False
    if period is not None:
        aligned, _ = _run_to_tick(fn, backend, power.counter_j, edge_calls, clock, wait_s)
        if not aligned:
            notes.append(f"energy window not aligned to counter ticks: none within {wait_s:.3g} s")
    ramp_s = clock() - ramp_start
    window = power.start_window()
    start = clock()
    iterations = 0
    try:
        while True:
            _run_block(fn, backend, calls)
            iterations += calls
            if clock() - start >= policy.window_s:
                break
        if aligned:
            ticked, edge_iterations = _run_to_tick(
                fn, backend, power.counter_j, edge_calls, clock, wait_s
            )
            iterations += edge_iterations
            if not ticked:
                aligned = False
                notes.append("energy window end not aligned: the counter stopped ticking")
    except BaseException:
        window.stop(clock() - start)
        raise
    elapsed = clock() - start
    reading = window.stop(elapsed)
    if elapsed < policy.warn_below_s:
        notes.append(
            f"energy window {elapsed:.2f} s is under {policy.warn_below_s:g} s: "
            "the power sensor sees too little of it"
        )
    return EnergyPhase(reading, elapsed, iterations, ramp_s, notes, aligned)


def _run_to_tick(
    fn: Callable[[], object],
    backend: Backend,
    read_counter: Callable[[], float | None],
    calls: int,
    clock: Clock,
    limit_s: float,
) -> tuple[bool, int]:
    """Run synchronised blocks until the counter changes: (whether it did, calls run).

    Reading the counter after each short block places the tick within one block of its
    real time, at both edges alike.
    """
    last = read_counter()
    start = clock()
    done = 0
    while clock() - start < limit_s:
        _run_block(fn, backend, calls)
        done += calls
        value = read_counter()
        if value is not None and last is not None and value != last:
            return True, done
        last = value if value is not None else last
    return False, done


def _run_block(fn: Callable[[], object], backend: Backend, calls: int) -> None:
    for _ in range(calls):
        fn()
    backend.synchronize()
