"""kernels.matmul: operation counts, the correctness check, and what each device can run."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import kernels
from bench.devices.base import CpuIdentity, DeviceFacts, GpuIdentity
from bench.errors import UsageError
from kernels import matmul
from kernels.spec import AxisError

dims = st.integers(min_value=1, max_value=96)


def case(shape="32x48x64", dtype="fp32", init="randn", seed=0):
    return matmul.make_case(matmul.parse_shape(shape), dtype, "cpu", init, seed)


def counted_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@settings(max_examples=30, deadline=None)
@given(dims, dims, dims, st.sampled_from(["fp32", "bf16", "fp16"]))
def test_ops_equal_flop_counter_for_the_call_that_runs(m, n, k, dtype):
    c = case(f"{m}x{n}x{k}", dtype)
    prepared = matmul.prepare(c, "cpu")
    assert matmul.ops(c) == counted_flops(prepared.run) == 2 * m * n * k


@settings(max_examples=10, deadline=None)
@given(
    st.integers(1, 4).map(lambda x: 16 * x),
    st.integers(1, 4).map(lambda x: 16 * x),
    st.integers(1, 4).map(lambda x: 16 * x),
)
def test_fp8_ops_equal_flop_counter(m, n, k):
    c = case(f"{m}x{n}x{k}", "fp8")
    assert matmul.ops(c) == counted_flops(matmul.prepare(c, "cpu").run)


def test_int8_ops_equal_the_flop_counter_of_the_same_product_in_float():
    # FlopCounterMode has no formula for torch._int_mm; the same product in fp32 has one.
    c = case("24x40x56", "int8")
    a, b = torch.ones(24, 56), torch.ones(40, 56)
    assert matmul.ops(c) == counted_flops(lambda: a @ b.t())


def test_bytes_count_each_operand_once_at_its_own_itemsize():
    assert matmul.bytes_moved(case("2x3x4", "fp32")) == (2 * 4 + 3 * 4 + 2 * 3) * 4
    assert matmul.bytes_moved(case("2x3x4", "bf16")) == (2 * 4 + 3 * 4 + 2 * 3) * 2
    assert matmul.bytes_moved(case("2x3x4", "int8")) == (2 * 4 + 3 * 4) * 1 + 2 * 3 * 4
    assert matmul.bytes_moved(case("16x16x16", "fp8")) == (2 * 256) * 1 + 256 * 2


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp8", "int8"])
@pytest.mark.parametrize("init", ["randn", "zeros", "ones"])
def test_every_cpu_dtype_passes_its_own_check(dtype, init):
    verdict = matmul.prepare(case("64x64x64", dtype, init), "cpu").check()
    assert verdict.ok, verdict
    assert verdict.error <= verdict.tolerance


def test_the_check_catches_a_single_wrong_element():
    a, b = torch.randn(64, 32), torch.randn(48, 32)
    out = a @ b.t()
    assert matmul.compare_to_reference(a, b, out, "fp32").ok
    out[3, 5] += 1.0
    verdict = matmul.compare_to_reference(a, b, out, "fp32")
    assert not verdict.ok and verdict.error > verdict.tolerance


def test_fp32_tolerance_catches_a_product_computed_at_tf32_like_precision():
    a, b = torch.randn(128, 512), torch.randn(96, 512)
    rounded = a.to(torch.bfloat16).float() @ b.to(torch.bfloat16).float().t()  # < fp32 precision
    assert not matmul.compare_to_reference(a, b, rounded, "fp32").ok
    assert matmul.compare_to_reference(a, b, rounded, "bf16").ok


def test_int8_check_is_exact():
    a = torch.randint(-127, 128, (32, 64), dtype=torch.int8)
    b = torch.randint(-127, 128, (40, 64), dtype=torch.int8)
    out = torch._int_mm(a, b.t())
    assert matmul.compare_to_reference(a, b, out, "int8").error == 0.0
    out[0, 0] += 1
    assert not matmul.compare_to_reference(a, b, out, "int8").ok


def test_seeded_inputs_are_reproducible_and_the_seed_matters():
    def first_output(seed):
        prepared = matmul.prepare(case("8x8x8", "fp32", seed=seed), "cpu")
        return prepared.run().clone()

    assert torch.equal(first_output(1), first_output(1))
    assert not torch.equal(first_output(1), first_output(2))


def test_fp32_runs_with_tf32_off_and_tf32_with_it_on():
    previous = torch.backends.cuda.matmul.allow_tf32
    with matmul.precision(case(dtype="tf32")):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    with matmul.precision(case(dtype="fp32")):
        assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cuda.matmul.allow_tf32 == previous


CPU = DeviceFacts("cpu", "cpu", CpuIdentity(None, "x86_64", frozenset(), 2, 2, None, "none"))


def gpu(cc: str, vendor: str = "nvidia", arch: str | None = None) -> DeviceFacts:
    return DeviceFacts("cuda", "cuda:0", GpuIdentity(vendor, "some gpu", cc, 100, gcn_arch=arch))


@pytest.mark.parametrize(
    ("facts", "dtype", "shape", "expected"),
    [
        (CPU, "tf32", "64x64x64", "tensor-core"),
        (CPU, "fp32", "64x64x64", None),
        (gpu("7.0"), "bf16", "64x64x64", "8.0 or newer"),
        (gpu("8.0"), "bf16", "64x64x64", None),
        (gpu("8.0"), "fp8", "64x64x64", "8.9 or newer"),
        (gpu("9.0"), "fp8", "64x64x64", None),
        (gpu("9.0"), "fp8", "64x64x40", "multiples of 16"),
        (gpu("9.0"), "int8", "16x64x64", "M > 16"),
        (gpu("9.4", "amd"), "fp8", "64x64x64", "gcn arch is unknown"),
        (gpu("9.4", "amd", "gfx942"), "fp8", "64x64x64", None),  # e4m3fnuz
        (gpu("9.4", "amd", "gfx942"), "tf32", "64x64x64", None),
        (gpu("9.5", "amd", "gfx950"), "tf32", "64x64x64", "no TF32"),
        (gpu("9.0", "amd", "gfx90a"), "fp8", "64x64x64", "no fp8"),
        (gpu("7.0"), "tf32", "64x64x64", "8.0 or newer"),
    ],
)
def test_unsupported_reasons(facts, dtype, shape, expected):
    reason = matmul.unsupported_reason(case(shape, dtype), facts)
    if expected is None:
        assert reason is None
    else:
        assert expected in reason


@pytest.mark.parametrize("text", ["4096", "4096x4096", "0x8x8", "-1x8x8", "axbxc", "8x8x8x8", ""])
def test_malformed_shapes_are_value_errors_naming_the_shape(text):
    with pytest.raises(AxisError, match=f"^shape {text!r}"):
        matmul.parse_shape(text)


def test_unknown_dtype_and_init_are_value_errors():
    with pytest.raises(AxisError, match="matmul has no dtype 'fp4'"):
        matmul.make_case({"m": 1, "n": 1, "k": 1}, "fp4", "cpu")
    with pytest.raises(AxisError, match=r"^init 'uniform' is not one of"):
        matmul.make_case({"m": 1, "n": 1, "k": 1}, "fp32", "cpu", init="uniform")


def test_registry_lists_the_module_dtypes_without_importing_it():
    assert kernels.kernel_dtypes("matmul") == matmul.DTYPES
    assert kernels.get_kernel("matmul") is matmul
    with pytest.raises(UsageError, match="unknown kernel"):
        kernels.get_kernel("conv")
