"""RunPlan and suites: which cases a command line produces, and with which policy."""

import pytest

from bench.errors import UsageError
from bench.execution.plan import PolicyOverrides, RunPlan, split_list, split_shapes
from bench.execution.suites import SUITES, get_suite

MATMUL_8 = {"matmul": {"shape": ("8x8x8",)}}
MATMUL_64 = {"matmul": {"shape": ("64x64x64",)}}


def attn_axes(**axes):
    """RunPlan.axes for attention; pass_ stands for the axis `pass`."""
    return {"attention": {k.rstrip("_"): (v,) for k, v in axes.items()}}


def labels(cases):
    return [(c.kernel, c.dtype, c.label()) for c in cases]


def test_quick_suite_differs_by_device_kind():
    cpu, gpu = RunPlan().cases("cpu", "cpu"), RunPlan().cases("cuda", "cuda:0")
    assert {c.dtype for c in gpu} == {"fp32", "tf32", "bf16", "fp16", "fp8", "int8"}
    assert ("matmul", "bf16", "8192x8192x8192") in labels(gpu)
    cpu_matmul = [c for c in cpu if c.kernel == "matmul"]
    assert (
        max(c.params["m"] * c.params["n"] * c.params["k"] for c in cpu_matmul) <= 2048 * 512 * 1024
    )
    assert all(c.device == "cpu" for c in cpu)
    assert {c.kernel for c in cpu} == {c.kernel for c in gpu} == {"matmul", "attention"}


def test_shape_and_dtype_replace_one_axis_each():
    plan = RunPlan(dtypes=("bf16",), axes={"matmul": {"shape": ("64x64x64", "128x64x32")}})
    assert labels(plan.cases("cuda", "cuda:0")) == [
        ("matmul", "bf16", "64x64x64"),
        ("matmul", "bf16", "128x64x32"),
    ]
    plan = RunPlan(suite="matmul", dtypes=("int8",))
    assert {c.dtype for c in plan.cases("cuda", "cuda:0")} == {"int8"}


def test_init_and_seed_reach_the_case_params():
    (case,) = RunPlan(axes=MATMUL_8, dtypes=("fp32",), init="ones", seed=3).cases("cpu", "cpu")
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
        RunPlan(axes={"matmul": {"shape": ("8x8",)}}).validate()
    with pytest.raises(UsageError, match="must be positive"):
        PolicyOverrides(timeout_s=-1)
    with pytest.raises(UsageError, match="empty item"):
        split_list("fp32,,bf16")


def test_every_suite_builds_for_both_kinds():
    for name in SUITES:
        for kind in ("cpu", "cuda"):
            cases = RunPlan(suite=name).cases(kind, kind)
            assert cases and len({(c.dtype, c.label()) for c in cases}) == len(cases)


def attn(cases):
    return [c for c in cases if c.kernel == "attention"]


def test_quick_suite_has_small_attention_on_cpu_and_llama_8k_on_gpu():
    cpu = attn(RunPlan().cases("cpu", "cpu"))
    assert [(c.dtype, c.label()) for c in cpu] == [
        ("fp32", "1x8x2x512x64 none fwd auto"),
        ("fp32", "1x8x2x512x64 causal fwd auto"),
        ("fp32", "1x8x2x512x64 none bwd auto"),
        ("fp32", "1x8x2x512x64 causal bwd auto"),
        ("fp32", "1x8x2x512x64 none fwd math"),
        ("bf16", "1x8x2x512x64 causal fwd auto"),
    ]
    gpu = attn(RunPlan().cases("cuda", "cuda:0"))
    assert {c.label() for c in gpu} == {
        f"2x32x8x8192x128 {m} {p} auto" for m in ("none", "causal") for p in ("fwd", "bwd")
    }


def test_attention_suite_sweeps_llama_presets_at_constant_tokens():
    cases = RunPlan(suite="attention").cases("cuda", "cuda:0")
    sweep = [c for c in cases if c.params["backend"] == "auto" and c.params["hq"] in (32, 64)]
    seqs = {c.params["sq"] for c in sweep}
    assert seqs == {512, 1024, 2048, 4096, 8192, 16384}
    assert {c.params["b"] * c.params["sq"] for c in sweep} == {16384}
    assert {(c.params["hq"], c.params["hkv"], c.params["d"]) for c in sweep} >= {
        (32, 8, 128),
        (64, 8, 128),
    }
    assert {c.params["mask"] for c in sweep} == {"none", "causal"}
    backends = {c.params["backend"] for c in cases}
    assert backends == {"auto", "flash", "efficient", "cudnn", "math"}
    assert {c.params["d"] for c in cases} == {64, 128, 256}


def test_attn_shapes_and_options_replace_their_axes_and_select_attention():
    plan = RunPlan(
        axes={"attention": {"shape": ("1,4,2,64,32",), "mask": ("causal",), "pass": ("bwd", "fwd")}}
    )
    cases = plan.cases("cpu", "cpu")
    assert {c.kernel for c in cases} == {"attention"}
    assert {(c.dtype, c.label()) for c in cases} == {
        ("fp32", "1x4x2x64x32 causal bwd auto"),
        ("fp32", "1x4x2x64x32 causal fwd auto"),
        ("fp32", "1x4x2x64x32 causal fwd math"),
        ("fp32", "1x4x2x64x32 causal bwd math"),
        ("bf16", "1x4x2x64x32 causal fwd auto"),
        ("bf16", "1x4x2x64x32 causal bwd auto"),
    }
    assert len(cases) == 6  # duplicates produced by replacing axes are dropped
    axes = {"attention": {"backend": ("flash",), "mask": ("none",), "pass": ("fwd",)}}
    (only,) = RunPlan(axes=axes, dtypes=("fp32",)).cases("cpu", "cpu")
    assert only.label() == "1x8x2x512x64 none fwd flash"


def test_shape_and_attn_together_run_both_kernels_with_their_own_shapes():
    plan = RunPlan(
        axes={"matmul": {"shape": ("64x64x64",)}, "attention": {"shape": ("llama3-8b:1024",)}},
        dtypes=("bf16",),
    )
    labels_ = {(c.kernel, c.label().split()[0]) for c in plan.cases("cuda", "cuda:0")}
    assert labels_ == {("matmul", "64x64x64"), ("attention", "16x32x8x1024x128")}
    assert RunPlan(kernels=("attention",)).cases("cpu", "cpu") == attn(
        RunPlan().cases("cpu", "cpu")
    )


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (RunPlan(kernels=("attention",), axes=MATMUL_64), "--shape gives matmul shapes"),
        (
            RunPlan(kernels=("matmul",), axes=attn_axes(shape="1,8,8,128,64")),
            "--attn gives attention",
        ),
        (
            RunPlan(kernels=("matmul",), axes=attn_axes(mask="causal")),
            "--mask applies to attention",
        ),
        (
            RunPlan(kernels=("matmul",), axes=attn_axes(backend="flash")),
            "--backend applies to attention",
        ),
        (
            RunPlan(axes=attn_axes(mask="sideways")),
            "--mask: mask 'sideways' is not one of none, causal",
        ),
        (
            RunPlan(axes=attn_axes(pass_="both")),
            "--pass: pass 'both' is not one of fwd, bwd, fwdbwd",
        ),
        (RunPlan(axes=attn_axes(backend="xformers")), "--backend: backend 'xformers'"),
        (RunPlan(axes=attn_axes(shape="1,6,4,128,64")), "--attn: shape .* not a multiple of Hkv=4"),
        (RunPlan(axes=attn_axes(shape="1,8,8,128")), "is not B,Hq,Hkv,S,D"),
        (RunPlan(kernels=("attention",), dtypes=("int8",)), "unknown dtype 'int8'"),
        (RunPlan(suite="matmul", kernels=("attention",)), "nothing to run"),
        (RunPlan(kernels=("attention",), dtypes=("fp32",), suite="matmul"), "nothing to run"),
    ],
)
def test_attention_flags_are_validated_before_any_device(plan, message):
    with pytest.raises(UsageError, match=message):
        plan.validate()


def test_split_shapes_takes_semicolons_and_repeats():
    assert split_shapes(["1,8,8,128,64; 2,8,2,256,64", "llama3-8b:4k"], "--attn") == (
        "1,8,8,128,64",
        "2,8,2,256,64",
        "llama3-8b:4k",
    )
    assert split_shapes(None, "--attn") == ()
    with pytest.raises(UsageError, match="empty item in --attn"):
        split_shapes(["1,8,8,128,64;"], "--attn")


def test_suite_case_counts_match_the_cases_built():
    for name in SUITES:
        for kind in ("cpu", "cuda"):
            assert get_suite(name, kind).n_cases == len(RunPlan(suite=name).cases(kind, kind))
