"""The real CUDA (or ROCm) and NVML (or amdsmi) paths. Skipped without a GPU;
scripts/gpu-check.sh runs them."""

import time

import pytest
import torch

from bench.commands.plausibility import MATMUL_DTYPES, bf16_floors, supported_dtypes
from bench.devices import get_backend
from bench.devices.environment import capture_environment
from bench.execution.context import CaseContext
from bench.execution.runner import run_case
from bench.measuring.timing import Policy, measure
from bench.peaks.lookup import resolve_peak
from bench.peaks.table import find_row
from bench.power.null import NullPowerSource
from kernels import matmul

pytestmark = pytest.mark.gpu

SHORT = Policy(warmup_min_s=0.3, warmup_max_s=2.0, timeout_s=4.0)


@pytest.fixture(scope="module")
def cuda():
    backend = get_backend("cuda")
    yield backend
    backend.close()


def test_event_time_never_exceeds_wall_time(cuda):
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(a)
    wall0 = time.perf_counter()
    start = cuda.mark()
    for _ in range(20):
        torch.mm(a, a, out=out)
    end = cuda.mark()
    cuda.synchronize()
    wall = time.perf_counter() - wall0
    events = cuda.elapsed_s(start, end)
    assert 0 < events <= wall


def test_nvml_is_matched_by_uuid_and_reads_clocks(cuda):
    if torch.version.hip:
        pytest.skip("ROCm: amdsmi, not NVML (the next test)")
    facts = cuda.facts()
    assert facts.extra["nvml_unavailable_reason"] is None
    clock, source = cuda.clock_hz()
    assert clock is not None and 100e6 < clock < 4e9, source
    assert facts.identity.max_sm_clock_hz is not None
    env = capture_environment(facts)
    assert env["nvml"]["driver_version"] and env["nvml"]["matched_by"] == "uuid"


def test_amdsmi_is_matched_and_reads_the_lowest_xcd_clock(cuda):
    if not torch.version.hip:
        pytest.skip("CUDA: NVML, not amdsmi (the test above)")
    facts = cuda.facts()
    assert facts.extra["amdsmi_unavailable_reason"] is None
    clock, source = cuda.clock_hz()
    assert clock is not None and 100e6 < clock < 4e9 and "XCD" in source, source
    assert facts.identity.max_sm_clock_hz is not None
    assert facts.identity.gcn_arch and ":" not in facts.identity.gcn_arch
    env = capture_environment(facts)
    assert env["amdsmi"]["matched_by"] in ("bdf", "uuid", "hip_id"), env["missing"]
    assert env["software"]["collective_library"] == "RCCL"
    assert env["software"]["blas_library"] in ("hipBLASLt", "rocBLAS", "CK")


def test_peak_resolves_from_the_table_on_this_sku(cuda):
    identity = cuda.facts().identity
    peak = resolve_peak(identity, "bf16")
    assert peak.ops_per_s is not None, peak.detail
    row = find_row(identity.name, identity.compute_capability)
    if identity.name.startswith(("NVIDIA H100", "NVIDIA H200")):
        # the SKUs the check anchors on: the exact datasheet row, never a derived figure
        assert row is not None, f"{identity.name} (cc {identity.compute_capability}) not in table"
        assert peak.source == "datasheet" and peak.detail.startswith(row.sku), peak.detail
        scale = min(1.0, identity.sm_count / row.sm_count)  # a MIG slice has fewer SMs
        assert peak.ops_per_s == pytest.approx(row.ops_per_s["bf16"] * scale)
    else:
        assert peak.source in ("datasheet", "derived"), peak.detail


def test_bf16_matmul_reaches_a_plausible_fraction_of_peak(cuda):
    case = matmul.make_case({"m": 8192, "n": 8192, "k": 8192}, "bf16", cuda.label)
    identity = cuda.facts().identity

    def peak_for(mode):
        return resolve_peak(identity, mode)

    out = run_case(
        case,
        "gpu-0",
        matmul,
        CaseContext(backend=cuda, power=NullPowerSource("test"), policy=SHORT, peak_for=peak_for),
    )
    r = out.result
    assert r.identity.status == "ok", r.identity.reason
    assert r.timing.timing_mode == "cold" and r.timing.measured_time_s <= r.timing.wall_time_s
    assert r.rates.frac_of_peak is not None, r.rates.peak_detail
    floor = bf16_floors(identity.vendor)[1]  # AMD's dense MFMA runs below the peak clock
    assert floor <= r.rates.frac_of_peak < 1.0, r.rates.frac_of_peak
    assert r.timing.clock_hz_before is not None and r.timing.clock_hz_after is not None


def test_graph_mode_times_a_microsecond_kernel(cuda):
    a = torch.randn(64, 64, device="cuda")
    out = torch.empty_like(a)
    timings = measure(lambda: torch.mm(a, a, out=out), cuda, SHORT)
    assert timings.mode == "graph", timings.mode_reason
    per_call = timings.summary.median_s
    assert per_call < 20e-6
    cold = measure(
        lambda: torch.mm(a, a, out=out), cuda, Policy(**{**SHORT.__dict__, "mode": "cold"})
    )
    assert cold.summary.median_s > per_call  # launch overhead is real
    # Lower bounds: a replay's time divided by its calls can beat neither the fp32 peak nor
    # (by 20x) the same call launched eagerly back to back; either would mean the per-call
    # division is wrong (graph calls counted twice, or a replay that ran nothing).
    peak = resolve_peak(cuda.facts().identity, "fp32").ops_per_s
    if peak:
        assert per_call >= 2 * 64**3 / peak
    hot = measure(
        lambda: torch.mm(a, a, out=out), cuda, Policy(**{**SHORT.__dict__, "mode": "hot"})
    )
    assert per_call >= 0.05 * hot.summary.median_s, (per_call, hot.summary.median_s)
    assert timings.calls_per_sample[0] > 1  # one replay holds many calls


@pytest.mark.parametrize("dtype", MATMUL_DTYPES)
def test_every_dtype_this_sku_supports_runs_ok(cuda, dtype):
    case = matmul.make_case({"m": 1024, "n": 1024, "k": 1024}, dtype, cuda.label)
    identity = cuda.facts().identity
    out = run_case(
        case,
        "gpu-1",
        matmul,
        CaseContext(
            backend=cuda,
            power=NullPowerSource("test"),
            policy=SHORT,
            peak_for=lambda mode: resolve_peak(identity, mode),
        ),
    )
    r = out.result
    if dtype not in supported_dtypes(identity.compute_capability, identity):
        assert r.identity.status == "skipped" and r.identity.reason, (
            r.identity.status,
            r.identity.reason,
        )
        return
    assert r.identity.status == "ok", (
        f"{dtype} on cc {identity.compute_capability} ({identity.gcn_arch}): {r.identity.reason}"
    )
    assert r.work.correctness["ok"], r.work.correctness
    assert r.rates.frac_of_peak is not None and 0 < r.rates.frac_of_peak <= 1.0, r.rates.peak_detail
