"""The energy phase: what is counted, what is not, and how results carry it."""

import pytest
from clock_backend import ClockBackend, FakeClock, ScriptedCall
from fake_pynvml import EnergyCounter, FakeGpu, FakePynvml, install

from bench.cli import main
from bench.devices.base import DeviceFacts, GpuIdentity
from bench.devices.cpu import CpuBackend
from bench.peaks import Peak
from bench.power.base import ESTIMATE, NVML_COUNTER, EnergyReading
from bench.power.nvml_source import NvmlPowerSource
from bench.record import load_run
from bench.runner import run_case
from bench.timing import EnergyPolicy, Policy, measure_energy
from kernels import matmul


class WindowLog:
    """A power source for these tests: records when its window opened and closed."""

    name, available, reason = "log", True, None

    def __init__(self, clock):
        self.clock, self.opened, self.closed, self.open_windows = clock, None, None, 0

    def start_window(self):
        self.opened, self.open_windows = self.clock(), self.open_windows + 1
        return self

    def stop(self, window_s):
        self.closed, self.open_windows = self.clock(), self.open_windows - 1
        return EnergyReading(100.0 * window_s, "log", None, window_s)


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
    assert phase.reading.energy_j == pytest.approx(100.0 * phase.window_s)
    assert phase.warnings == []


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
    assert any("under 1 s" in w for w in phase.warnings)


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
        backend,
        power,
        policy,
        lambda mode: Peak(1e12, "user", "test", None),
        energy=EnergyPolicy(window_s=0.3, ramp_s=0.05),
        idle_power_w=50.0,
    )
    r = out.result
    assert r.energy_source == NVML_COUNTER
    assert r.avg_power_w == pytest.approx(250.0, rel=0.15)
    assert r.ops_per_j == pytest.approx(r.iterations * r.ops / r.energy_j)
    assert r.net_power_w == pytest.approx(r.avg_power_w - 50.0)
    assert r.net_ops_per_j == pytest.approx(r.iterations * r.ops / (r.energy_j - 50.0 * r.window_s))
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
    assert row.energy_source == ESTIMATE and "TDP 100 W" in row.energy_reason
    assert 0 < row.avg_power_w <= 100.0
    assert row.ops_per_j == pytest.approx(row.iterations * row.ops / row.energy_j)
    assert row.idle_power_w is None or row.idle_power_w != row.idle_power_w  # no idle model
    assert run.meta["idle"]["power_w"] is None and run.meta["power_source"]["name"] == "estimate"
    assert "W est." in out and "FLOP/s/W est." in out
    assert any("under 1 s" in w for w in row.warnings)
