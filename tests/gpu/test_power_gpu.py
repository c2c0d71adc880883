"""The real NVML (or, on ROCm, amdsmi) power path on a GPU. Skipped without one;
scripts/gpu-check.sh runs it."""

import threading

import pytest

from bench.devices import get_backend
from bench.execution.context import CaseContext
from bench.execution.runner import run_case
from bench.measuring.timing import EnergyPolicy, Policy, measure_energy
from bench.peaks.lookup import resolve_peak
from bench.peaks.table import find_row
from bench.power import open_power_source
from bench.power.base import AMDSMI_COUNTER, NVML_COUNTER
from bench.power.idle import measure_idle
from kernels import matmul

pytestmark = pytest.mark.gpu


def counter_label():
    import torch

    return AMDSMI_COUNTER if torch.version.hip else NVML_COUNTER


@pytest.fixture(scope="module")
def cuda_and_power():
    import torch

    backend = get_backend("cuda")
    choice = open_power_source("amdsmi" if torch.version.hip else "nvml", backend.facts())
    yield backend, choice.source
    choice.source.close()
    backend.close()


def tdp_of(backend):
    identity = backend.facts().identity
    row = find_row(identity.name, identity.compute_capability)
    return row.tdp_w if row else None


def test_counter_update_period_and_idle_power_are_plausible(cuda_and_power):
    backend, power = cuda_and_power
    period = power.update_period_s()
    assert period is not None and 0.001 < period < 1.0
    idle = measure_idle(power, 2.0)
    assert idle.energy_source == counter_label() and idle.power_w > 0
    tdp = tdp_of(backend)
    if tdp:
        assert idle.power_w < tdp


@pytest.mark.slow
def test_bf16_matmul_energy_counter_and_integral_agree(cuda_and_power):
    backend, power = cuda_and_power
    identity = backend.facts().identity
    case = matmul.make_case({"m": 8192, "n": 8192, "k": 8192}, "bf16", backend.label)
    out = run_case(
        case,
        "gpu-power",
        matmul,
        CaseContext(
            backend=backend,
            power=power,
            policy=Policy(warmup_min_s=0.5, warmup_max_s=2.0, timeout_s=4.0),
            peak_for=lambda mode: resolve_peak(identity, mode),
            energy=EnergyPolicy(window_s=3.0, ramp_s=0.5),
        ),
    )
    r = out.result
    assert r.identity.status == "ok" and r.energy.energy_source == counter_label(), (
        r.energy.energy_reason
    )
    assert r.energy.ops_per_j is not None and r.energy.ops_per_j > 0, r.energy.energy_reason
    assert r.energy.energy_counter_vs_integral == pytest.approx(1.0, abs=0.15)
    tdp = tdp_of(backend)
    if tdp:
        assert 0.2 * tdp < r.energy.avg_power_w < 1.5 * tdp
        spec_ops_per_j = r.rates.peak_ops_per_s / tdp
        assert r.energy.ops_per_j < 1.5 * spec_ops_per_j
    assert r.energy.sm_clock_hz_median and r.energy.temp_c_max
    assert not [t for t in threading.enumerate() if t.name == "flopwatt-power-sampler"]


def test_sampler_thread_does_not_outlive_a_kernel_that_fails_mid_window(cuda_and_power):
    import torch

    backend, power = cuda_and_power
    a = torch.randn(2048, 2048, device="cuda", dtype=torch.bfloat16)
    calls = []

    def fails_later():
        calls.append(1)
        if len(calls) > 200:
            raise RuntimeError("kernel failed")
        return a @ a

    with pytest.raises(RuntimeError, match="kernel failed"):
        measure_energy(
            fails_later, backend, power, EnergyPolicy(window_s=5.0, ramp_s=0.0), per_call_s=1e-4
        )
    assert not [t for t in threading.enumerate() if t.name == "flopwatt-power-sampler"]
