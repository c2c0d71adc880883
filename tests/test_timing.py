"""The timing engine on scripted sample streams (injected clock) and on the real CPU."""

import random

import pytest
from clock_backend import ClockBackend, FakeClock, ScriptedCall

from bench.devices.base import Unsupported
from bench.measuring.timing import Policy, StoppingRule, calls_per_sample, is_trending, measure

FAST = dict(warmup_min_s=0.1, warmup_max_s=2.0)


def run(durations, policy=None, mode="hot", flush_s=0.0, sync_s=0.0):
    clock = FakeClock()
    backend = ClockBackend(clock, default_mode=mode, flush_s=flush_s, sync_s=sync_s)
    call = ScriptedCall(clock, durations)
    timings = measure(call, backend, policy or Policy(**FAST), clock=clock)
    return timings, backend, call


# -- stopping rule on scripted streams -------------------------------------------------------


def test_quiet_stream_stops_on_noise_once_min_samples_and_time_are_reached():
    rule = StoppingRule(Policy(min_samples=10, min_time_s=0.5, max_noise=0.01))
    for i in range(499):
        rule.add(1e-3 * (1 + 0.001 * (i % 3)))
        assert rule.stop_reason(elapsed_s=1.0) is None  # < 0.5 s measured yet
    rule.add(1e-3)
    assert rule.stop_reason(elapsed_s=1.0) == "noise_below_target"


def test_min_samples_holds_even_with_long_samples():
    rule = StoppingRule(Policy(min_samples=10, min_time_s=0.5))
    for _ in range(9):
        rule.add(1.0)
    assert rule.stop_reason(elapsed_s=9.0) is None
    rule.add(1.0)
    assert rule.stop_reason(elapsed_s=10.0) == "noise_below_target"


def test_noisy_stream_stops_when_noise_stabilises_above_target():
    rng = random.Random(7)
    rule = StoppingRule(Policy(max_noise=0.01))
    reason, n = None, 0
    while reason is None and n < 100_000:
        rule.add(1e-3 * rng.uniform(0.8, 1.2))
        n += 1
        reason = rule.stop_reason(elapsed_s=1.0)
    assert reason == "noise_stabilised"
    assert rule.noise > 0.05  # uniform +-20% has ~11.5% relative stdev
    assert n >= 64 + 4  # the stabilisation test needs 64 noise estimates first


def test_timeout_wins_over_everything():
    rule = StoppingRule(Policy(timeout_s=2.0))
    rule.add(1e-3)
    assert rule.stop_reason(elapsed_s=2.0) == "timeout"


def test_trend_detection():
    flat = [1.0 + 0.001 * ((-1) ** i) for i in range(8)]
    assert not is_trending(flat, window=8, tol=0.02)
    falling = [2.0 - 0.1 * i for i in range(8)]
    assert is_trending(falling, window=8, tol=0.02)
    assert is_trending(flat[:5], window=8, tol=0.02)  # too few blocks to tell
    noisy_flat = [1.0, 1.08, 0.95, 1.05, 0.97, 1.06, 0.94, 1.02]  # noise, no drift
    assert not is_trending(noisy_flat, window=8, tol=0.02)


# -- measure() with an injected clock --------------------------------------------------------


def test_warmup_runs_until_the_trend_ends():
    # per-call time falls from 2 ms to 1 ms over the first second of calls, then stays flat
    def duration(i):
        return max(1e-3, 2e-3 - i * 1e-6)

    timings, _, _ = run(duration)
    assert timings.warmup.stable
    assert timings.warmup.seconds >= 0.9  # the drift lasts 1 s; the window may straddle its end
    assert timings.summary.median_s == pytest.approx(1e-3)
    assert timings.stop_reason == "noise_below_target"


def test_warmup_gives_up_at_its_maximum_and_says_so():
    timings, _, _ = run(
        lambda i: 1e-3 + i * 1e-6, Policy(**{**FAST, "warmup_max_s": 0.5}, timeout_s=3.0)
    )
    assert not timings.warmup.stable
    assert any("warm-up still trending" in w for w in timings.warnings)


def test_cold_mode_flushes_before_every_sample_and_excludes_the_flush():
    timings, backend, _ = run(lambda i: 2e-3, Policy(**FAST, mode="cold"), flush_s=5e-3)
    assert timings.mode == "cold"
    assert backend.flushes == len(timings.samples_s)
    assert all(s == pytest.approx(2e-3) for s in timings.samples_s)
    assert set(timings.calls_per_sample) == {1}
    assert timings.wall_time_s >= timings.measured_time_s + 5e-3 * len(timings.samples_s) * 0.99


def test_hot_mode_samples_are_at_least_min_sample_s_and_per_call():
    timings, backend, _ = run(lambda i: 10e-6, Policy(**FAST, mode="hot"))
    assert timings.mode == "hot"
    assert backend.flushes == 0
    calls = timings.calls_per_sample[0]
    assert calls * 10e-6 >= 1e-3 * 0.999
    assert timings.summary.median_s == pytest.approx(10e-6)


def test_one_sync_per_round_not_per_call():
    timings, backend, _ = run(lambda i: 1e-4, Policy(**FAST, mode="cold"))
    rounds = len(set(timings.round_of_sample))
    assert rounds < len(timings.samples_s) / 10
    warmup_blocks = len(timings.warmup.block_per_call_s)
    assert backend.syncs == 1 + warmup_blocks + rounds


def test_every_sample_is_kept_including_outliers():
    def duration(i):
        return 1e-2 if i % 97 == 0 else 1e-3

    timings, _, _ = run(duration, Policy(**FAST, mode="cold", min_time_s=0.2))
    assert any(s == pytest.approx(1e-2) for s in timings.samples_s)
    assert timings.summary.max_s == pytest.approx(1e-2)
    assert timings.summary.median_s == pytest.approx(1e-3)


def test_timeout_is_recorded_with_the_samples_taken():
    timings, _, _ = run(lambda i: 0.4, Policy(**FAST, timeout_s=2.0, mode="cold"))
    assert timings.stop_reason == "timeout"
    assert 0 < len(timings.samples_s) < 10


def test_graph_mode_requested_on_a_backend_without_graphs_raises():
    with pytest.raises(Unsupported):
        run(lambda i: 1e-5, Policy(**FAST, mode="graph"))


def test_bad_policy_is_refused():
    with pytest.raises(ValueError, match="unknown timing mode"):
        Policy(mode="warm")
    with pytest.raises(ValueError):
        Policy(max_noise=0)


# -- the real CPU path -------------------------------------------------------------------------


def test_cpu_backend_measures_a_real_matmul():
    import torch

    from bench.devices.cpu import CpuBackend

    backend = CpuBackend(threads=1)
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    out = torch.empty(64, 64)
    policy = Policy(**FAST, min_time_s=0.05, timeout_s=2.0)
    timings = measure(lambda: torch.mm(a, b, out=out), backend, policy)
    assert timings.mode == "hot"
    assert 1e-7 < timings.summary.median_s < 1e-2
    assert timings.measured_time_s <= timings.wall_time_s
    assert len(timings.samples_s) >= 10
    assert torch.get_num_threads() == 1


# -- graph mode: one replay of many calls, divided back into per-call time ----------------


class GraphClockBackend(ClockBackend):
    """The clock backend with graphs: a replay of n captured calls costs n calls of fake time,
    so a per-call figure can only come out right if the interval is divided by n."""

    supports_graphs = True

    def __init__(self, clock, refuse=None):
        super().__init__(clock)
        self.refuse, self.captured = refuse, []

    def capture_graph(self, fn, calls):
        if self.refuse:
            raise Unsupported(self.refuse)
        self.captured.append(calls)

        def replay():
            for _ in range(calls):
                fn()

        return replay


def test_calls_per_sample_fills_the_minimum_sample():
    assert calls_per_sample("graph", 1e-3, 5e-6) == 200  # 200 x 5 us = 1 ms
    assert calls_per_sample("hot", 1e-3, 3e-4) == 4  # 3 would be 0.9 ms, under the minimum
    assert calls_per_sample("hot", 1e-3, 2e-3) == 1  # a long call is a sample on its own
    assert calls_per_sample("cold", 1e-3, 5e-6) == 1  # cold calls are timed one by one


def test_graph_mode_divides_each_replay_by_the_calls_it_holds():
    clock = FakeClock()
    backend = GraphClockBackend(clock)
    call = ScriptedCall(clock, lambda i: 5e-6)
    timings = measure(call, backend, Policy(**FAST), clock=clock)
    assert timings.mode == "graph" and "launch-bound" in timings.mode_reason
    assert backend.captured == [200]
    assert set(timings.calls_per_sample) == {200}
    # each sample is one replay of 200 calls of 5 us: 1 ms, divided back to 5 us per call
    assert timings.summary.median_s == pytest.approx(5e-6, rel=1e-9)
    assert min(timings.samples_s) == pytest.approx(5e-6, rel=1e-9)  # the lower bound, too


def test_a_graph_capture_that_fails_falls_back_to_hot_and_says_why():
    clock = FakeClock()
    backend = GraphClockBackend(clock, refuse="capture not permitted on this stream")
    timings = measure(ScriptedCall(clock, lambda i: 5e-6), backend, Policy(**FAST), clock=clock)
    assert timings.mode == "hot"
    assert "graph capture failed (capture not permitted on this stream)" in timings.mode_reason
    assert set(timings.calls_per_sample) == {200}
    assert timings.summary.median_s == pytest.approx(5e-6, rel=1e-9)


def test_a_requested_graph_whose_capture_fails_raises():
    clock = FakeClock()
    backend = GraphClockBackend(clock, refuse="no capture here")
    with pytest.raises(Unsupported, match="no capture here"):
        measure(
            ScriptedCall(clock, lambda i: 5e-6), backend, Policy(**FAST, mode="graph"), clock=clock
        )


def test_cold_calls_run_before_each_then_the_flush_then_the_marks():
    clock = FakeClock()
    events = []

    class Recording(ClockBackend):
        def flush_cache(self):
            events.append("flush")

        def mark(self):
            events.append("mark")
            return clock.now

    def before_each():
        events.append("before")

    def call():
        events.append("call")
        clock.advance(1e-3)

    measure(
        call, Recording(clock), Policy(**FAST, mode="cold"), clock=clock, before_each=before_each
    )
    timed = events[events.index("before") :]
    assert timed[:5] == ["before", "flush", "mark", "call", "mark"]
    assert timed.count("before") == timed.count("flush") == timed.count("call")
