"""RunPlan and suites: which cases a command line produces, and with which policy."""

import pytest

from bench.errors import UsageError
from bench.plan import PolicyOverrides, RunPlan, split_list
from bench.suites import SUITES, get_suite


def labels(cases):
    return [(c.kernel, c.dtype, c.label()) for c in cases]


def test_quick_suite_differs_by_device_kind():
    cpu, gpu = RunPlan().cases("cpu", "cpu"), RunPlan().cases("cuda", "cuda:0")
    assert {c.dtype for c in gpu} == {"fp32", "tf32", "bf16", "fp16", "fp8", "int8"}
    assert ("matmul", "bf16", "8192x8192x8192") in labels(gpu)
    assert max(c.params["m"] * c.params["n"] * c.params["k"] for c in cpu) <= 2048 * 512 * 1024
    assert all(c.device == "cpu" for c in cpu)


def test_shape_and_dtype_replace_one_axis_each():
    plan = RunPlan(dtypes=("bf16",), shapes=("64x64x64", "128x64x32"))
    assert labels(plan.cases("cuda", "cuda:0")) == [
        ("matmul", "bf16", "64x64x64"),
        ("matmul", "bf16", "128x64x32"),
    ]
    plan = RunPlan(suite="matmul", dtypes=("int8",))
    assert {c.dtype for c in plan.cases("cuda", "cuda:0")} == {"int8"}


def test_init_and_seed_reach_the_case_params():
    (case,) = RunPlan(shapes=("8x8x8",), dtypes=("fp32",), init="ones", seed=3).cases("cpu", "cpu")
    assert case.params["init"] == "ones" and case.params["seed"] == 3


def test_policy_defaults_and_overrides():
    gpu = RunPlan().policy("cuda")
    assert gpu.warmup_min_s == 1.0 and gpu.timeout_s == get_suite("quick", "cuda").timeout_s
    assert gpu.max_noise == 0.01 and gpu.min_samples == 10 and gpu.min_time_s == 0.5
    cpu = RunPlan(overrides=PolicyOverrides(mode="cold", timeout_s=2.0, max_noise=0.05)).policy(
        "cpu"
    )
    assert (cpu.mode, cpu.timeout_s, cpu.max_noise) == ("cold", 2.0, 0.05)
    assert cpu.warmup_max_s <= 1.0  # warm-up never eats more than half the case budget


def test_validation_rejects_bad_plans_before_any_device():
    with pytest.raises(UsageError, match="unknown kernel"):
        RunPlan(kernels=("conv",)).validate()
    with pytest.raises(UsageError, match="unknown dtype"):
        RunPlan(dtypes=("fp64",)).validate()
    with pytest.raises(UsageError, match="MxNxK"):
        RunPlan(shapes=("8x8",)).validate()
    with pytest.raises(UsageError, match="must be positive"):
        PolicyOverrides(timeout_s=-1)
    with pytest.raises(UsageError, match="empty item"):
        split_list("fp32,,bf16")


def test_every_suite_builds_for_both_kinds():
    for name in SUITES:
        for kind in ("cpu", "cuda"):
            cases = RunPlan(suite=name).cases(kind, kind)
            assert cases and len({(c.dtype, c.label()) for c in cases}) == len(cases)
