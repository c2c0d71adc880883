"""flopwatt's pytest plugin: a `flopwatt` fixture that measures a callable with bench.measure.

    def test_gemm(flopwatt):
        a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        m = flopwatt(lambda: a @ a, ops=2 * 4096**3, dtype="bf16")
        assert m.frac_of_peak > 0.5

The fixture is called once per test with bench.measure's arguments and returns its
Measurement. Where pytest-benchmark runs, the device-timed samples become the benchmark's
rounds (through SampleClock), the figures of cases.jsonl go to `extra_info` and the device
identity to `machine_info`, so `--benchmark-json` and `pytest-benchmark compare` carry them.
Under `--benchmark-disable` the function is called once and the fixture returns None, as
pytest-benchmark runs a disabled benchmark once; `--benchmark-skip` skips the test.

Registered through the `pytest11` entry point, this module loads in every pytest run of
every user: it imports neither torch nor flopwatt's measuring code until a test asks for
the fixture, and without pytest-benchmark it offers the fixture alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

# Figures copied to pytest-benchmark's extra_info, named as in cases.jsonl.
EXTRA_FIELDS = (
    "device",
    "dtype",
    "ops",
    "bytes",
    "time_median_s",
    "n_samples",
    "rel_noise",
    "timing_mode",
    "stop_reason",
    "achieved_ops_per_s",
    "peak_ops_per_s",
    "peak_source",
    "frac_of_peak",
    "frac_of_measured_peak",
    "frac_of_clock_peak",
    "energy_j",
    "energy_source",
    "avg_power_w",
    "ops_per_j",
    "window_s",
    "iterations",
)

_DEVICES = pytest.StashKey[dict]()  # device label -> identity, for machine_info


class _Meter:
    """What the `flopwatt` fixture gives a test: call it with bench.measure's arguments."""

    def __init__(self, request: pytest.FixtureRequest, benchmark: Any) -> None:
        self._request = request
        self._benchmark = benchmark

    def __call__(self, fn: Callable[[], object], **options: Any) -> Any:
        """bench.measure(fn, **options), reported to pytest-benchmark when it runs."""
        from bench.api.measurement import measure_with_facts

        if self._benchmark is not None and self._benchmark.disabled:
            self._benchmark.pedantic(fn)  # --benchmark-disable: pytest-benchmark runs fn once
            return None
        measurement, facts = measure_with_facts(fn, **options)
        self._request.config.stash.setdefault(_DEVICES, {})[facts.label] = _identity(facts)
        if self._benchmark is not None:
            self._benchmark.extra_info.update(extra_info(measurement))
            _clock(self._request.node).replay(self._benchmark, measurement.samples_s)
        return measurement


def extra_info(m: Any) -> dict[str, Any]:
    """The Measurement's figures for extra_info; unknown ones None, with their reasons."""
    info = {name: getattr(m, name) for name in EXTRA_FIELDS}
    info["reasons"] = {name: m.reasons[name] for name in EXTRA_FIELDS if name in m.reasons}
    info["warnings"] = list(m.warnings)
    return info


def _identity(facts: Any) -> dict[str, Any]:
    """The device for machine_info, as JSON (pytest-benchmark writes it with json.dumps)."""
    identity = {k: v for k, v in vars(facts.identity).items() if k != "flags"}
    info = {"kind": facts.kind, "identity": identity, **facts.extra}
    return json.loads(json.dumps(info, default=str))


def _clock(node: pytest.Item) -> Any:
    from bench.commands.report.pytest_benchmark import SampleClock

    marker = node.get_closest_marker("benchmark")
    timer = marker.kwargs.get("timer") if marker is not None else None
    if not isinstance(timer, SampleClock):
        raise pytest.UsageError(
            "flopwatt's fixture must be a test argument (not getfixturevalue) so that its "
            "benchmark records device time"
        )
    return timer


class _WithBenchmark:
    @pytest.fixture
    def flopwatt(self, request: pytest.FixtureRequest, benchmark: Any) -> _Meter:
        """Measure a callable with bench.measure and report it to pytest-benchmark."""
        return _Meter(request, benchmark)


class _Alone:
    @pytest.fixture
    def flopwatt(self, request: pytest.FixtureRequest) -> _Meter:
        """Measure a callable with bench.measure (pytest-benchmark is not running)."""
        return _Meter(request, None)


def _has_benchmark(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("benchmark")


def pytest_configure(config: pytest.Config) -> None:
    """Offer the fixture that fits: with pytest-benchmark's `benchmark`, or on its own."""
    fixtures = _WithBenchmark() if _has_benchmark(config) else _Alone()
    config.pluginmanager.register(fixtures, "flopwatt-fixture")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each test that measures with flopwatt a SampleClock as its benchmark timer,
    keeping the other options of its own benchmark marker (group, ...)."""
    if not _has_benchmark(config):
        return
    from bench.commands.report.pytest_benchmark import SampleClock

    for item in items:
        if "flopwatt" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("benchmark")
        options = dict(marker.kwargs) if marker is not None else {}
        merged = pytest.mark.benchmark(**{**options, **SampleClock().mark_options()})
        item.add_marker(merged, append=False)  # first, so that it is the closest


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add the devices measured on: pytest-benchmark's machine_info has no GPU in it."""
    devices = config.stash.get(_DEVICES, {})
    if devices:
        machine_info["flopwatt"] = {"devices": dict(devices)}
