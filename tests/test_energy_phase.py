"""The energy phase: what is counted, what is not, and how results carry it.

Energy figures are checked against references worked out by hand from a scripted power
trace (a constant 250 W is 0.25 J per 1 ms call; 25 J per 100 ms counter tick), never by
repeating the multiplication the code does.
"""

import pytest
from clock_backend import ClockBackend, FakeClock, ScriptedCall
from fake_pynvml import NVML_ERROR_NOT_SUPPORTED, EnergyCounter, FakeGpu, FakePynvml, install

from bench.cli import main
from bench.devices.base import DeviceFacts, GpuIdentity
from bench.devices.cpu import CpuBackend
from bench.execution.context import CaseContext
from bench.execution.runner import run_case
from bench.measuring.timing import EnergyPolicy, Policy, default_energy_policy, measure_energy
from bench.peaks.lookup import Peak
from bench.power.base import ESTIMATE, NVML_COUNTER, EnergyReading
from bench.power.nvml_source import NvmlPowerSource
from bench.results.record import load_run
from kernels import matmul


class WindowLog:
    """A source without a counter, for the phase's bookkeeping: when its window opened and
    closed (what it reads is no concern of these tests)."""

    name, available, reason = "log", True, None

    def __init__(self, clock):
        self.clock, self.opened, self.closed, self.open_windows = clock, None, None, 0

    def update_period_s(self):
        return None

    def counter_j(self):
        return None

    def start_window(self):
        self.opened, self.open_windows = self.clock(), self.open_windows + 1
        return self

    def stop(self, window_s):
        self.closed, self.open_windows = self.clock(), self.open_windows - 1
        return EnergyReading(None, None, "not measured", window_s)


def test_the_ramp_is_not_counted_and_the_window_counts_its_iterations():
    clock = FakeClock()
    backend = ClockBackend(clock)
    call = ScriptedCall(clock, lambda i: 2e-3)
    power = WindowLog(clock)
    phase = measure_energy(
        call, backend, power, EnergyPolicy(window_s=1.0, ramp_s=0.5), per_call_s=2e-3, clock=clock
    )
    assert power.opened >= 0.5  # the window opens after the ramp
    assert phase.ramp_s >= 0.5 and phase.window_s >= 1.0
    assert phase.iterations * 2e-3 == pytest.approx(phase.window_s)
    assert call.calls * 2e-3 == pytest.approx(power.closed)  # ramp + window, nothing else
    assert not phase.aligned  # no counter to align to, and nothing said about it
    assert phase.warnings == [
        "energy window 1.00 s is under 5 s: the power sensor sees too little of it"
    ]


def test_a_short_window_is_warned_about():
    clock = FakeClock()
    phase = measure_energy(
        ScriptedCall(clock, lambda i: 1e-3),
        ClockBackend(clock),
        WindowLog(clock),
        EnergyPolicy(window_s=0.2, ramp_s=0.0),
        1e-3,
        clock,
    )
    assert any("under 5 s" in w for w in phase.warnings)


def test_windows_are_at_least_five_seconds_on_a_gpu_by_default():
    gpu = default_energy_policy("cuda")
    assert gpu.window_s >= 5.0 and gpu.warn_below_s >= 5.0
    assert default_energy_policy("cpu").window_s == 1.0  # RAPL ticks every millisecond


def test_the_window_is_closed_when_the_kernel_raises():
    clock = FakeClock()
    power = WindowLog(clock)

    def crash(i):
        if i > 600:
            raise RuntimeError("kernel died")
        return 1e-3

    with pytest.raises(RuntimeError, match="kernel died"):
        measure_energy(
            ScriptedCall(clock, crash),
            ClockBackend(clock),
            power,
            EnergyPolicy(window_s=1.0, ramp_s=0.5),
            1e-3,
            clock,
        )
    assert power.open_windows == 0


def test_run_case_fills_energy_fields_from_nvml(monkeypatch):
    gpu = FakeGpu(
        total_energy_mj=EnergyCounter(250.0, 0.01),
        power_instant_mw=250_000,
        sm_clock_mhz=1500,
        mem_clock_mhz=2619,
        temperature_c=61,
        clocks_event_reasons=0x4 | 0x20,
    )
    install(monkeypatch, FakePynvml([gpu]))
    identity = GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132)
    power = NvmlPowerSource.open(
        DeviceFacts("cuda", "cuda:0", identity, {"uuid": gpu.uuid}), {}, rate_hz=100
    )
    backend = CpuBackend(threads=1)  # the kernel runs here; the power figures are scripted
    case = matmul.make_case({"m": 64, "n": 64, "k": 64}, "fp32", "cpu")
    policy = Policy(warmup_min_s=0.02, warmup_max_s=0.1, min_time_s=0.02, timeout_s=0.3)
    out = run_case(
        case,
        "0000",
        matmul,
        CaseContext(
            backend=backend,
            power=power,
            policy=policy,
            peak_for=lambda mode: Peak(1e12, "user", "test", None),
            energy=EnergyPolicy(window_s=0.3, ramp_s=0.05),
            idle_power_w=50.0,
        ),
    )
    r = out.result.energy  # every figure here is of the energy window
    assert r.energy_source == NVML_COUNTER
    assert r.avg_power_w == pytest.approx(250.0, rel=0.15)
    assert r.net_power_w == pytest.approx(200.0, rel=0.2)  # 250 W scripted, 50 W idle
    # above idle, 200 of every 250 J are the kernel's: net work per joule is 250/200 = 1.25x
    assert r.net_ops_per_j / r.ops_per_j == pytest.approx(1.25, rel=0.1)
    assert r.sm_clock_hz_median == 1500e6 and r.mem_clock_hz_median == 2619e6
    assert r.temp_c_max == 61 and r.throttle == ["SwPowerCap", "SwThermalSlowdown"]
    assert r.energy_counter_vs_integral == pytest.approx(1.0, abs=0.15)
    trace = out.trace_columns()
    assert trace["t_s"][0] == 0.0 and len(trace["power_w"]) >= 10
    power.close()


def test_estimate_source_end_to_end_through_the_cli(tmp_path, capsys):
    code = main(
        [
            "run",
            "--device",
            "cpu",
            "--shape",
            "64x64x64",
            "--dtype",
            "fp32",
            "--timeout-s",
            "0.5",
            "--min-time-s",
            "0.05",
            "--warmup-s",
            "0.05",
            "--power",
            "estimate",
            "--tdp-w",
            "100",
            "--energy-window-s",
            "0.3",
            "--energy-ramp-s",
            "0.05",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    run = load_run(run_dir)
    row = run.cases.iloc[0]
    assert row["energy.energy_source"] == ESTIMATE and "TDP 100 W" in row["energy.energy_reason"]
    assert 0 < row["energy.avg_power_w"] <= 100.0
    assert row["energy.energy_j"] <= 100.0 * row["energy.window_s"]  # never above TDP x time
    assert (
        row["energy.idle_power_w"] is None
        or row["energy.idle_power_w"] != row["energy.idle_power_w"]
    )  # no idle model
    assert run.meta["idle"]["power_w"] is None and run.meta["power_source"]["name"] == "estimate"
    assert "W est." in out and "FLOP/s/W est." in out
    assert any("under 1 s" in w for w in row["identity.warnings"])  # the CPU policy warns under 1 s


# -- edges aligned to the energy counter's ticks ---------------------------------------------

POWER_W = 250.0
PER_CALL_S = 1.3e-3  # 0.325 J a call at a constant 250 W; 76-call blocks of 98.8 ms


def scripted_gpu(clock, period_s=0.1, first_tick_s=0.037, **overrides):
    """A GPU drawing a constant 250 W whose counter ticks every period_s, first at 37 ms."""
    counter = EnergyCounter(
        POWER_W, period_s, start_mj=7_000_000, clock=clock, first_tick_s=first_tick_s
    )
    return FakeGpu(total_energy_mj=counter, power_instant_mw=250_000, **overrides), counter


def open_scripted(monkeypatch, clock, gpu):
    install(monkeypatch, FakePynvml([gpu]))
    identity = GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132)
    facts = DeviceFacts("cuda", "cuda:0", identity, {"uuid": gpu.uuid})
    return NvmlPowerSource.open(facts, {}, rate_hz=20, clock=clock, sleep=clock.advance)


@pytest.mark.parametrize("period_s", [0.1, 0.025])
def test_the_counter_period_is_probed_over_two_seconds(monkeypatch, period_s):
    clock = FakeClock()
    gpu, _ = scripted_gpu(clock, period_s=period_s)
    power = open_scripted(monkeypatch, clock, gpu)
    assert power.update_period_s() == pytest.approx(period_s, rel=0.05)
    assert clock.now >= 2.0  # not the 0.5 s that saw a 100 ms counter tick only 4 times
    power.close()


def test_a_slow_counter_is_probed_until_it_has_ticked_three_times(monkeypatch):
    clock = FakeClock()
    gpu, _ = scripted_gpu(clock, period_s=1.0, first_tick_s=0.5)
    power = open_scripted(monkeypatch, clock, gpu)
    assert power.update_period_s() == pytest.approx(1.0, rel=0.05)
    assert 2.5 <= clock.now < 3.0  # ticks at 0.5, 1.5 and 2.5 s: the probe ends at the third
    power.close()


def test_a_counter_ticking_less_than_three_times_in_five_seconds_has_no_period(monkeypatch):
    clock = FakeClock()
    gpu, _ = scripted_gpu(clock, period_s=3.0, first_tick_s=1.0)
    power = open_scripted(monkeypatch, clock, gpu)
    assert power.update_period_s() is None
    power.close()


def aligned_phase(monkeypatch, window_s, **gpu_overrides):
    clock = FakeClock()
    gpu, _ = scripted_gpu(clock, **gpu_overrides)
    power = open_scripted(monkeypatch, clock, gpu)
    power.update_period_s()  # the run probes at its start, before any case
    call = ScriptedCall(clock, lambda i: PER_CALL_S)
    policy = EnergyPolicy(window_s=window_s, ramp_s=0.5)
    phase = measure_energy(call, ClockBackend(clock), power, policy, PER_CALL_S, clock)
    power.close()
    return phase


def test_an_aligned_window_has_no_quantisation_error_at_its_edges(monkeypatch):
    phase = aligned_phase(monkeypatch, window_s=5.0)
    reading = phase.reading
    assert phase.aligned and reading.energy_source == NVML_COUNTER
    assert phase.window_s >= 5.0
    # the counter moves in 25 J ticks (250 W x 100 ms); the window holds whole ticks
    assert reading.energy_j / 25.0 == pytest.approx(round(reading.energy_j / 25.0), abs=1e-9)
    # 1.3 ms calls at 250 W: 0.325 J each. Each edge is seen within one 2.6 ms poll block
    # (two calls) of its tick, so the window misses the truth by at most 2 x 2.6 ms x 250 W
    # = 1.3 J in ~1250 J; edges rounded to ticks would miss by up to 25 J each.
    assert abs(reading.energy_j - 0.325 * phase.iterations) <= 1.3
    assert reading.energy_j / phase.window_s == pytest.approx(POWER_W, abs=0.3)


def test_without_alignment_the_same_window_would_have_been_off_by_up_to_a_tick():
    """The error the alignment removes, from the scripted counter alone: 5.05 s at 250 W is
    1262.5 J, but a counter ticking every 100 ms (first at 37 ms) reads 1275 J over
    [0.50, 5.55] s and 1250 J over [0.54, 5.59] s: +-1% from where the edges fell."""

    def counter_j(start_s, end_s):
        clock = FakeClock()
        counter = EnergyCounter(POWER_W, 0.1, start_mj=0, clock=clock, first_tick_s=0.037)
        clock.advance(start_s)
        start_mj = counter()
        clock.advance(end_s - start_s)
        return (counter() - start_mj) / 1000

    assert counter_j(0.50, 5.55) == 1275.0  # ticks 0.537 ... 5.537: 51 ticks
    assert counter_j(0.54, 5.59) == 1250.0  # ticks 0.637 ... 5.537: 50 ticks


def test_two_seconds_at_a_constant_250_w_is_500_j(monkeypatch):
    phase = aligned_phase(monkeypatch, window_s=2.0, first_tick_s=0.0)
    assert phase.aligned
    # ticks at whole tenths; the window holds 20 or 21 of them: 500 J, or 525 J over 2.1 s
    assert phase.reading.energy_j in (500.0, 525.0)
    assert phase.reading.energy_j / phase.window_s == pytest.approx(POWER_W, abs=0.3)


def test_a_counter_that_stops_ticking_leaves_the_window_unaligned_and_says_so(monkeypatch):
    clock = FakeClock()
    gpu, _ = scripted_gpu(clock)
    power = open_scripted(monkeypatch, clock, gpu)
    power.update_period_s()
    gpu.total_energy_mj = 9_000_000  # frozen from here on
    call = ScriptedCall(clock, lambda i: PER_CALL_S)
    policy = EnergyPolicy(window_s=5.0, ramp_s=0.5)
    phase = measure_energy(call, ClockBackend(clock), power, policy, PER_CALL_S, clock)
    power.close()
    assert not phase.aligned
    assert any("not aligned to counter ticks" in w for w in phase.warnings)
    assert phase.reading.energy_source != NVML_COUNTER
    assert "energy counter did not advance" in phase.reading.reason


def test_without_a_readable_counter_there_is_nothing_to_align_and_no_warning(monkeypatch):
    clock = FakeClock()
    gpu, _ = scripted_gpu(
        clock, errors={"nvmlDeviceGetTotalEnergyConsumption": NVML_ERROR_NOT_SUPPORTED}
    )
    power = open_scripted(monkeypatch, clock, gpu)
    call = ScriptedCall(clock, lambda i: PER_CALL_S)
    policy = EnergyPolicy(window_s=5.0, ramp_s=0.5)
    phase = measure_energy(call, ClockBackend(clock), power, policy, PER_CALL_S, clock)
    power.close()
    assert power.update_period_s() is None and not phase.aligned and phase.warnings == []
    assert "energy counter unavailable (not supported" in phase.reading.reason
