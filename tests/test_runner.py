"""run_case(): statuses, reasons and what is recorded, with the real CPU backend."""

import contextlib

import pytest
import torch

from bench.devices.cpu import CpuBackend
from bench.execution.context import CaseContext
from bench.execution.runner import run_case
from bench.measuring.timing import Policy
from bench.peaks.lookup import Peak
from bench.power.null import NullPowerSource
from bench.results.render import summary_rows
from kernels import matmul
from kernels.base import Correctness, Prepared
from kernels.case import Case

POLICY = Policy(warmup_min_s=0.02, warmup_max_s=0.2, min_time_s=0.02, timeout_s=0.5)
POWER = NullPowerSource("no sensor in this test")


@pytest.fixture(scope="module")
def backend():
    backend = CpuBackend(threads=1)
    yield backend
    backend.close()


def peak(mode: str) -> Peak:
    return Peak(1e12, "user", f"--peak {mode}=1e12", None)


class ToyKernel:
    """A workload written for these tests: a vector add whose behaviour each test chooses."""

    NAME = "toy"
    DTYPES = ("fp32",)

    def __init__(self, error=None, wrong=False, need_bytes=1024):
        self.error, self.wrong, self.need_bytes = error, wrong, need_bytes

    def make_case(self):
        return Case("toy", {"shape_label": "1024"}, "fp32", "cpu")

    def unsupported_reason(self, case, facts):
        return None

    def memory_bytes(self, case):
        return self.need_bytes

    def math_mode(self, case):
        return "fp32"

    def precision(self, case):
        return contextlib.nullcontext()

    def ops(self, case):
        return 1024

    def ops_convention(self, case):
        return "one add per element"

    def bytes_moved(self, case):
        return 3 * 1024 * 4

    def prepare(self, case, device):
        x = torch.ones(1024)

        def run():
            if self.error is not None:
                raise self.error
            return x + x

        def check():
            value = float(run().sum())
            err = abs(value - (1.0 if self.wrong else 2048.0))
            return Correctness(err == 0, "exact sum", err, 0.0)

        return Prepared(run, check)


def outcome(kernel, backend, case=None):
    case = case or kernel.make_case()
    return run_case(
        case,
        "0000-toy",
        kernel,
        CaseContext(backend=backend, power=POWER, policy=POLICY, peak_for=peak),
    )


def test_ok_case_records_rates_against_the_denominator(backend):
    out = outcome(ToyKernel(), backend)
    r = out.result
    assert r.identity.status == "ok" and r.identity.reason is None
    assert r.rates.frac_of_peak == pytest.approx(r.rates.achieved_ops_per_s / 1e12)
    assert r.rates.peak_source == "user" and r.rates.peak_detail == "--peak fp32=1e12"
    assert r.energy.energy_j is None and r.energy.energy_reason == "no sensor in this test"
    assert r.timing.clock_source and r.timing.n_samples == len(out.timings.samples_s)
    assert out.sample_columns()["time_s"] == list(out.timings.samples_s)


def test_a_wrong_result_fails_the_case_and_is_not_timed(backend):
    out = outcome(ToyKernel(wrong=True), backend)
    assert out.result.identity.status == "failed" and "wrong result" in out.result.identity.reason
    assert out.result.work.correctness["ok"] is False
    assert out.timings is None and out.result.timing.time_median_s is None
    assert out.result.rates.peak_ops_per_s == 1e12  # the denominator is still recorded


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (
            RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
            "skipped",
            "out of memory",
        ),
        (torch.OutOfMemoryError("oom"), "skipped", "out of memory"),
        (NotImplementedError("no fp8 here"), "skipped", "unsupported here"),
        (RuntimeError("\"addmm\" not implemented for 'Half'"), "skipped", "unsupported here"),
        (RuntimeError("illegal memory access\nmore lines"), "failed", "illegal memory access"),
        (ValueError("bad"), "failed", "ValueError: bad"),
    ],
)
def test_exceptions_become_statuses_with_one_line_reasons(backend, error, status, words):
    out = outcome(ToyKernel(error=error), backend)
    assert out.result.identity.status == status
    assert words in out.result.identity.reason and "\n" not in out.result.identity.reason


def test_a_case_that_does_not_fit_is_skipped_before_allocating(backend):
    out = outcome(ToyKernel(need_bytes=10**18), backend)
    assert out.result.identity.status == "skipped" and "GB free" in out.result.identity.reason


def test_unknown_peak_leaves_the_fraction_unknown(backend):
    def no_peak(mode):
        return Peak(None, None, "no native fp8 on this CPU", None)

    case = matmul.make_case({"m": 32, "n": 32, "k": 32}, "fp32", "cpu")
    out = run_case(
        case,
        "0000",
        matmul,
        CaseContext(backend=backend, power=POWER, policy=POLICY, peak_for=no_peak),
    )
    assert out.result.identity.status == "ok"
    assert (
        out.result.rates.frac_of_peak is None
        and out.result.rates.peak_detail == "no native fp8 on this CPU"
    )
    assert out.result.rates.achieved_ops_per_s > 0


def test_impossible_fraction_is_flagged(backend):
    def tiny_peak(mode):
        return Peak(1.0, "user", "--peak fp32=1", None)

    case = matmul.make_case({"m": 32, "n": 32, "k": 32}, "fp32", "cpu")
    out = run_case(
        case,
        "0000",
        matmul,
        CaseContext(backend=backend, power=POWER, policy=POLICY, peak_for=tiny_peak),
    )
    assert out.result.rates.frac_of_peak > 1 and out.result.rates.peak_exceeded is True
    assert any(
        "the peak is wrong" in w and "--peak fp32=1" in w for w in out.result.identity.warnings
    )
    rows, notes = summary_rows([out.result])
    assert rows[0][7].endswith("wrong peak") and any("the peak is wrong" in n for n in notes)


def test_a_rate_within_2_percent_above_the_peak_is_timing_noise_not_a_wrong_peak():
    from bench.measuring.metrics import PEAK_MARGIN, peak_exceeded

    assert PEAK_MARGIN == 1.02
    assert peak_exceeded(1.019) is False and peak_exceeded(1.021) is True
    assert peak_exceeded(0.5) is False and peak_exceeded(None) is None
