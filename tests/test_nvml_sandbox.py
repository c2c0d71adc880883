"""NVML under a sandboxed runtime: each call the runtime refuses becomes None with its reason.

Containers and VMs refuse NVML calls one by one (not supported, no permission, or any other
NVMLError). For every pynvml function flopwatt calls, found by reading bench/ itself so that
a new call cannot slip past, this refuses that one call with each kind of error and drives
the NVML parts of `flopwatt run` (environment, power source, idle, energy window) and of
`flopwatt health` (idle, load and after reads, the verdicts, the GPU count) over the fake
pynvml: they must all finish, FAIL nothing, and carry the refusal as a reason somewhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from clock_backend import ClockBackend, FakeClock, ScriptedCall
from fake_pynvml import (
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_ERROR_UNKNOWN,
    EnergyCounter,
    FakeGpu,
    FakePynvml,
    install,
)

from bench.devices.base import DeviceFacts, GpuIdentity
from bench.devices.environment import capture_environment
from bench.commands.health.device import Reads, gpu_count_row, open_device
from bench.commands.health.model import FAIL, Thresholds
from bench.commands.health.nvml_checks import judge
from bench.power.base import PowerUnavailable
from bench.power.idle import measure_idle
from bench.power.nvml_source import NvmlPowerSource
from bench.measuring.timing import EnergyPolicy, measure_energy

BENCH = Path(__file__).resolve().parents[1] / "bench"
SYSTEM_CALLS = {"nvmlSystemGetDriverVersion", "nvmlSystemGetCudaDriverVersion"}
REFUSALS = {
    NVML_ERROR_NOT_SUPPORTED: "not supported on this GPU",
    NVML_ERROR_NO_PERMISSION: "needs root",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


def nvml_calls() -> list[str]:
    """Every pynvml function named in bench/, as the code names them."""
    names: set[str] = set()
    for path in BENCH.rglob("*.py"):
        names |= set(re.findall(r"\"(nvml[A-Z][A-Za-z]+)\"", path.read_text()))
    return sorted(names)


def gpu_facts(gpu: FakeGpu) -> DeviceFacts:
    identity = GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132)
    extra = {"uuid": gpu.uuid, "pci_bus_id": gpu.pci_bus_id, "index": 0}
    return DeviceFacts("cuda", "cuda:0", identity, extra)


def run_path(facts: DeviceFacts, tmp_path: Path, clock: FakeClock) -> list[str]:
    """What `run` reads through NVML, and every reason it recorded."""
    reasons: list[str] = []
    env = capture_environment(facts, project_root=tmp_path, environ={})
    reasons += [str(r) for r in env["missing"].values()]
    try:
        power = NvmlPowerSource.open(facts, {}, rate_hz=20, clock=clock, sleep=clock.advance)
    except PowerUnavailable as exc:  # `--power auto` goes on with an estimate
        return [*reasons, str(exc)]
    try:
        reasons.append(json.dumps(power.describe()))
        idle = measure_idle(power, seconds=0.5, sleep=clock.advance, clock=clock)
        reasons.append(str(idle.reason))
        call = ScriptedCall(clock, lambda i: 1e-3)
        phase = measure_energy(
            call, ClockBackend(clock), power, EnergyPolicy(window_s=1.0, ramp_s=0.1), 1e-3, clock
        )
        reading = phase.reading
        assert reading.energy_j is not None or reading.reason  # None only with its reason
        reasons += [str(reading.reason), *phase.warnings]
    finally:
        power.close()
    return reasons


def health_path(facts: DeviceFacts) -> tuple[list, list[str]]:
    """What `health` reads through NVML: its rows and every reason it recorded."""
    nvml, device, reason = open_device(facts)
    reads = Reads(device, reason if reason.startswith("lost") else None)
    reads.read_idle()
    reads.read_load()
    reads.read_after()
    rows = judge("cuda:0", reads.idle, reads.load, reads.after, reads.lost, Thresholds())
    rows.append(gpu_count_row(nvml, reason, expect=1))
    if nvml is not None:
        nvml.driver_version()
        nvml.cuda_driver_version()
        nvml.close()
    reasons = [reason, *(r.reason for r in rows), json.dumps(reads.as_dict(), default=str)]
    return rows, reasons


def test_the_calls_found_in_bench_are_the_ones_run_and_health_make(monkeypatch, tmp_path):
    """The list the refusals walk is complete: nothing run or health calls is missing from it."""
    clock = FakeClock()
    gpu = FakeGpu(total_energy_mj=EnergyCounter(250.0, 0.1, clock=clock))
    fake = install(monkeypatch, FakePynvml([gpu]))
    facts = gpu_facts(gpu)
    run_path(facts, tmp_path, clock)
    health_path(facts)
    made = set(fake.calls) - {"nvmlInit", "nvmlShutdown"}
    assert made <= set(nvml_calls())
    assert len(made) >= 30  # run and health really went through NVML


@pytest.mark.parametrize("code", sorted(REFUSALS))
@pytest.mark.parametrize("fn", nvml_calls())
def test_a_refused_call_is_none_with_its_reason_and_the_run_goes_on(
    monkeypatch, tmp_path, fn, code
):
    clock = FakeClock()
    gpu = FakeGpu(total_energy_mj=EnergyCounter(250.0, 0.1, clock=clock))
    if fn in SYSTEM_CALLS or fn.startswith("nvmlDeviceGetHandleBy") or fn == "nvmlDeviceGetCount":
        fake = FakePynvml([gpu], errors={fn: code})
    else:
        fake = FakePynvml([gpu])
        gpu.errors[fn] = code
    install(monkeypatch, fake)
    facts = gpu_facts(gpu)
    reasons = run_path(facts, tmp_path, clock)
    rows, health_reasons = health_path(facts)
    if fn not in fake.calls:
        pytest.skip(f"{fn}: not called by run or health here (unused, or a fallback)")
    assert not [r for r in rows if r.verdict == FAIL], [r for r in rows if r.verdict == FAIL]
    said = " | ".join(reasons + health_reasons)
    clean = clean_reasons(monkeypatch, tmp_path)
    assert said.count(REFUSALS[code]) > clean.count(REFUSALS[code])  # this refusal, said


def clean_reasons(monkeypatch, tmp_path: Path) -> str:
    """Every reason run and health record when NVML refuses nothing (some fields of the fake
    are unsupported anyway): the baseline a refusal must add to."""
    clock = FakeClock()
    gpu = FakeGpu(total_energy_mj=EnergyCounter(250.0, 0.1, clock=clock))
    install(monkeypatch, FakePynvml([gpu]))
    facts = gpu_facts(gpu)
    return " | ".join(run_path(facts, tmp_path, clock) + health_path(facts)[1])
