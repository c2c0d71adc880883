"""SDPA on a real CUDA device: every backend checked or skipped with torch's reason, the
backend auto picks, torch's causal alignment on the fused kernels, a plausible flash rate.
Skipped without a GPU; scripts/gpu-check.sh runs them."""

import pytest
import torch

from bench.devices import get_backend
from bench.devices.base import Unsupported
from bench.execution.context import CaseContext
from bench.execution.runner import run_case
from bench.measuring.timing import Policy
from bench.peaks.lookup import resolve_peak
from bench.power.null import NullPowerSource
from kernels import attention

pytestmark = pytest.mark.gpu

SHORT = Policy(warmup_min_s=0.3, warmup_max_s=2.0, timeout_s=3.0)


@pytest.fixture(scope="module")
def cuda():
    backend = get_backend("cuda")
    yield backend
    backend.close()


def case(cuda, shape, dtype="bf16", mask="none", pass_="fwd", backend="auto"):
    options = {"mask": mask, "pass": pass_, "backend": backend}
    return attention.make_case(attention.parse_shape(shape), dtype, cuda.label, options=options)


def checked(cuda, c):
    """(details, verdict) of prepare + check, or (None, reason) when torch has no kernel."""
    if attention.unsupported_reason(c, cuda.facts()) is not None:
        return None, attention.unsupported_reason(c, cuda.facts())
    with attention.precision(c):
        try:
            prepared = attention.prepare(c, cuda.torch_device())
        except Unsupported as exc:
            return None, str(exc)
        return prepared.details, prepared.check()


@pytest.mark.parametrize("backend", attention.BACKENDS)
@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
def test_every_backend_is_right_or_skipped_with_torchs_reason(cuda, backend, pass_):
    for mask in attention.MASKS:
        details, verdict = checked(
            cuda, case(cuda, "2,8,2,1024,128", mask=mask, pass_=pass_, backend=backend)
        )
        if details is None:  # a refusal must be torch's, and name the backend it refused
            assert backend in ("flash", "efficient", "cudnn"), verdict
            if backend == "cudnn" and torch.version.hip:  # the capability table's refusal
                assert "NVIDIA-only" in verdict, verdict
                continue
            assert f"no {backend} SDPA" in verdict, verdict
            major = int(cuda.facts().identity.compute_capability.split(".")[0])
            assert not (major >= 8 and backend == "flash"), verdict  # bf16 flash: sm80+
            continue
        assert verdict.ok, verdict
        if backend != "auto":
            assert details["sdpa_backend"] == backend
        else:
            assert details["sdpa_backend"] in ("flash", "efficient", "cudnn", "math"), details


def test_flash_runs_bf16_on_ampere_and_newer_and_refuses_fp32_with_a_reason(cuda):
    major = int(cuda.facts().identity.compute_capability.split(".")[0])
    if major < 8:
        pytest.skip("flash needs sm80+")
    details, verdict = checked(cuda, case(cuda, "1,8,8,512,64", backend="flash"))
    assert details is not None and verdict.ok
    details, reason = checked(cuda, case(cuda, "1,8,8,512,64", "fp32", backend="flash"))
    assert details is None and "no flash SDPA kernel" in reason, reason


@pytest.mark.parametrize("backend", ["efficient", "flash", "cudnn"])
def test_causal_with_fewer_queries_than_keys_is_top_left_or_refused(cuda, backend):
    # torch documents is_causal as top-left aligned; the check's reference uses that mask,
    # so a kernel that ran and passed agrees with it.
    details, verdict = checked(cuda, case(cuda, "1,4,4,256,512,64", mask="causal", backend=backend))
    if details is not None:
        assert verdict.ok, verdict


@pytest.mark.slow
def test_backward_calls_do_not_grow_memory(cuda):
    c = case(cuda, "2,8,2,2048,128", pass_="bwd")
    with attention.precision(c):
        prepared = attention.prepare(c, cuda.torch_device())
        for _ in range(3):
            prepared.run()
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        for _ in range(20):
            prepared.run()
        torch.cuda.synchronize()
        assert torch.cuda.memory_allocated() == before


@pytest.mark.slow
def test_flash_forward_8k_reaches_a_plausible_fraction_of_peak(cuda):
    c = case(cuda, "llama3-8b:8192", backend="flash")
    identity = cuda.facts().identity
    out = run_case(
        c,
        "gpu-attn",
        attention,
        CaseContext(
            backend=cuda,
            power=NullPowerSource("test"),
            policy=SHORT,
            peak_for=lambda mode: resolve_peak(identity, mode),
        ),
    )
    r = out.result
    assert r.identity.status == "ok", r.identity.reason  # bf16 flash exists on every sm80+ GPU
    assert r.work.kernel_details["sdpa_backend"] == "flash"
    assert r.timing.measured_time_s <= r.timing.wall_time_s
    assert r.rates.frac_of_peak is not None, r.rates.peak_detail
    assert 0.28 <= r.rates.frac_of_peak < 1.0, r.rates.frac_of_peak
