"""The sampler thread, the trapezoid integral and the update-period probe, on known inputs."""

import itertools
import threading
import time

import pytest

from bench.power.base import PowerSample
from bench.power.sampler import Sampler, max_of, median_of, probe_update_period, trapezoid_energy


def sampler_threads():
    return [t for t in threading.enumerate() if t.name == "flopwatt-power-sampler"]


def test_trapezoid_of_a_constant_trace_is_power_times_time():
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert trapezoid_energy(times, [100.0] * 5, 0.0, 2.0) == pytest.approx(200.0)


def test_trapezoid_of_a_ramp_and_a_clipped_window():
    times = [0.0, 1.0, 2.0]
    powers = [0.0, 100.0, 200.0]  # P(t) = 100 t
    assert trapezoid_energy(times, powers, 0.0, 2.0) == pytest.approx(200.0)
    # the window [0.5, 1.5] interpolates its edges: integral of 100 t = 50 (t^2) -> 100
    assert trapezoid_energy(times, powers, 0.5, 1.5) == pytest.approx(100.0)


def test_trapezoid_holds_the_edge_values_outside_the_samples():
    # samples inside [0, 1] only; the window starts earlier and ends later
    assert trapezoid_energy([0.2, 0.8], [50.0, 50.0], 0.0, 1.0) == pytest.approx(50.0)


def test_trapezoid_ignores_missing_values_and_refuses_too_little_data():
    assert trapezoid_energy([0.0, 0.5, 1.0], [10.0, None, 10.0], 0.0, 1.0) == pytest.approx(10.0)
    assert trapezoid_energy([0.5], [10.0], 0.0, 1.0) is None
    assert trapezoid_energy([0.0, 1.0], [10.0, 10.0], 1.0, 1.0) is None
    assert trapezoid_energy([5.0, 6.0], [10.0, 10.0], 0.0, 1.0) is None  # no sample near it


class SteppedCounter:
    """A counter on an injected clock that steps every `period` seconds."""

    def __init__(self, period):
        self.now, self.period = 0.0, period

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def read(self):
        return int(self.now / self.period)


@pytest.mark.parametrize("period", [0.01, 0.02, 0.1])
def test_probe_finds_the_counter_update_period(period):
    counter = SteppedCounter(period)
    found = probe_update_period(
        counter.read, duration_s=1.0, poll_s=0.001, clock=counter.clock, sleep=counter.sleep
    )
    assert found == pytest.approx(period, rel=0.1)


def test_probe_of_a_frozen_counter_is_unknown():
    counter = SteppedCounter(1e9)
    assert probe_update_period(counter.read, 0.5, 0.001, counter.clock, counter.sleep) is None


def test_sampler_samples_at_its_rate_and_its_thread_ends_with_stop():
    sampler = Sampler(lambda now: PowerSample(now, 42.0), rate_hz=100).start()
    time.sleep(0.25)
    samples = sampler.stop()
    assert not sampler.alive and not sampler_threads()
    assert 10 <= len(samples) <= 40
    gaps = [b.t_s - a.t_s for a, b in itertools.pairwise(samples)]
    assert max(gaps) < 0.2  # waits on an Event with its own schedule; no long stalls


def test_sampler_stops_at_the_first_error_and_keeps_it():
    calls = []

    def read(now):
        calls.append(now)
        if len(calls) == 3:
            raise RuntimeError("sensor gone")
        return PowerSample(now, 1.0)

    sampler = Sampler(read, rate_hz=200).start()
    time.sleep(0.1)
    samples = sampler.stop()
    assert len(samples) == 2 and str(sampler.error) == "sensor gone"
    assert not sampler_threads()


def test_median_and_max_skip_unknowns():
    assert median_of([None, 1.0, 3.0, None, 2.0]) == 2.0
    assert max_of([None, 4.0, 1.0]) == 4.0
    assert median_of([None]) is None and max_of([]) is None
