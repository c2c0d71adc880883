"""Named suites as plain data: per device kind, which kernels, dtypes, shapes and options.

A suite is a recipe, not a list of cases, so that --kernel, --dtype, --shape, --attn,
--mask, --pass and --backend can each replace one axis and keep the others. `quick` is what
`flopwatt run` does with no arguments; it must finish in about a minute on a GPU and within
90 s on a 2-core CPU. Shapes are the strings the kernel's shape axis reads (matmul
"MxNxK"; attention "B,Hq,Hkv,S,D" or a model preset "llama3-8b:4096"); this module reads
only the kernels' torch-free declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.errors import UsageError
from kernels.matmul_spec import DTYPES as MATMUL_DTYPES

ALL_MATMUL = MATMUL_DTYPES

# LLM-like rectangles (M = tokens per step, N x K = the weight): Llama-3-8B's MLP up and
# down projections and Llama-3-70B's fused QKV (64 query + 2 x 8 kv heads of 128).
LLM_SHAPES = ("8192x14336x4096", "8192x4096x14336", "8192x10240x8192")
GPU_SQUARES = tuple(f"{n}x{n}x{n}" for n in (1024, 2048, 4096, 8192, 16384))

# Attention: sequence lengths of the model sweeps; the batch keeps 16k tokens per step
# (kernels.attention.TOKENS_PER_STEP), as FlashAttention's own benchmarks do.
ATTN_SEQS = (512, 1024, 2048, 4096, 8192, 16384)
ATTN_MODELS = ("llama3-8b", "llama3-70b")
BOTH_MASKS = ("none", "causal")
ALL_BACKENDS = ("flash", "efficient", "cudnn", "math")
CPU_ATTN = "1,8,2,512,64"  # a small GQA shape (4 query heads per kv head) for CPUs


@dataclass(frozen=True)
class KernelPlan:
    """One kernel, its dtypes and shapes, and one value for each of its other axes."""

    kernel: str
    dtypes: tuple[str, ...]
    shapes: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()  # e.g. (("mask", "causal"), ("pass", "fwd"))

    @property
    def n_cases(self) -> int:
        return len(self.dtypes) * len(self.shapes)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    plans: tuple[KernelPlan, ...]
    timeout_s: float  # default per-case timeout; --timeout-s overrides
    measures_ceilings: bool = False  # measure this device's ceilings first (bench.commands.ceiling)
    timing: str = "auto"  # the timing mode when --timing is left at auto
    health_first: bool = False  # run `flopwatt health` first and mark a failed GPU's cases

    @property
    def n_cases(self) -> int:
        return sum(plan.n_cases for plan in self.plans)


def attention_plans(
    dtypes: tuple[str, ...],
    shapes: tuple[str, ...],
    masks: tuple[str, ...] = BOTH_MASKS,
    passes: tuple[str, ...] = ("fwd", "bwd"),
    backends: tuple[str, ...] = ("auto",),
) -> tuple[KernelPlan, ...]:
    """One plan per (backend, pass, mask), so a table reads as one shape sweep per variant."""
    return tuple(
        KernelPlan("attention", dtypes, shapes, (("mask", m), ("pass", p), ("backend", b)))
        for b in backends
        for p in passes
        for m in masks
    )


def _model_shapes(models: tuple[str, ...], seqs: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(f"{model}:{seq}" for model in models for seq in seqs)


def _quick(kind: str) -> Suite:
    if kind == "cpu":
        plans = (
            KernelPlan(
                "matmul",
                ("fp32",),
                ("256x256x256", "512x512x512", "1024x1024x1024", "2048x512x1024"),
            ),
            KernelPlan("matmul", ("bf16", "fp16", "fp8"), ("256x256x256",)),
            KernelPlan("matmul", ("int8",), ("128x128x128",)),
            *attention_plans(("fp32",), (CPU_ATTN,)),
            *attention_plans(("fp32",), (CPU_ATTN,), ("none",), ("fwd",), ("math",)),
            *attention_plans(("bf16",), (CPU_ATTN,), ("causal",), ("fwd",)),
        )
        description = "small matmuls in every dtype the CPU runs; small GQA attention"
        return Suite("quick", description, plans, timeout_s=4.0)
    plans = (
        KernelPlan("matmul", ALL_MATMUL, ("4096x4096x4096", "8192x8192x8192", LLM_SHAPES[0])),
        *attention_plans(("bf16",), ("llama3-8b:8192",)),
    )
    description = "matmul at 4k, 8k and an LLM MLP shape in every dtype; Llama-3-8B attention 8k"
    return Suite("quick", description, plans, 10.0)


def _matmul(kind: str) -> Suite:
    if kind == "cpu":
        shapes = (*(f"{n}x{n}x{n}" for n in (128, 256, 512, 1024, 2048)), "2048x512x1024")
        plans = (KernelPlan("matmul", ALL_MATMUL, shapes),)
        return Suite("matmul", "matmul sweep sized for a CPU", plans, timeout_s=10.0)
    plans = (KernelPlan("matmul", ALL_MATMUL, GPU_SQUARES + LLM_SHAPES),)
    return Suite("matmul", "matmul 1k..16k squares and LLM rectangles, every dtype", plans, 8.0)


def _attention(kind: str) -> Suite:
    if kind == "cpu":
        plans = (
            *attention_plans(
                ("fp32",),
                ("1,8,2,256,64", CPU_ATTN, "1,8,2,1024,64"),
                passes=("fwd", "bwd", "fwdbwd"),
            ),
            *attention_plans(("fp32",), (CPU_ATTN,), backends=("flash", "math")),
            *attention_plans(("bf16", "fp16"), (CPU_ATTN,), ("causal",), ("fwd",)),
            *attention_plans(("fp32",), ("1,4,4,512,128", "1,2,2,512,256"), ("none",), ("fwd",)),
        )
        return Suite("attention", "SDPA sized for a CPU: passes, backends, dtypes", plans, 4.0)
    plans = (
        *attention_plans(("bf16",), _model_shapes(ATTN_MODELS, ATTN_SEQS)),
        *attention_plans(
            ("bf16",), ("llama3-8b:8192",), passes=("fwd", "bwd", "fwdbwd"), backends=ALL_BACKENDS
        ),
        *attention_plans(("bf16",), ("llama3.2-1b:4096", "gemma2-9b:4096")),
        *attention_plans(("fp16", "fp32"), ("llama3-8b:8192",), ("none",), ("fwd",)),
    )
    description = (
        "SDPA: Llama-3-8B/70B 512..16k (16k tokens per step), every backend at 8k, "
        "head dims 64/128/256"
    )
    return Suite("attention", description, plans, 4.0)


def collective_plans(kind: str, step: int) -> tuple[KernelPlan, ...]:
    """nccl-tests' sweep: sizes from 8 B by powers of `step`, out of place and in place.

    Up to 1 GiB on a GPU; up to 8 MiB (quick) or 64 MiB on a CPU, where gloo moves well under
    1 GB/s. bf16 only on GPUs: gloo sums bf16, but nobody trains over it.
    """
    top = 2**30 if kind == "cuda" else (2**23 if step > 2 else 2**26)
    sizes = []
    size = 8
    while size <= top:
        sizes.append(str(size))
        size *= step
    dtypes = ("fp32", "bf16") if kind == "cuda" else ("fp32",)
    collectives = ("allreduce",) if step > 2 else ("allreduce", "allgather", "reduce_scatter")
    return tuple(
        KernelPlan("allreduce", dtypes, tuple(sizes), (("collective", c), ("place", p)))
        for c in collectives
        for p in ("out", "in")
    )


def scaling_plans(kind: str) -> tuple[KernelPlan, ...]:
    """The step proxy: a 1B-parameter bf16 gradient on GPUs; a small one over gloo."""
    step, dtype = ("8192x8192x8192/2Gi", "bf16") if kind == "cuda" else ("256x256x256/4Mi", "fp32")
    return tuple(
        KernelPlan("scaling", (dtype,), (step,), (("scaling", s), ("overlap", o)))
        for s in ("weak", "strong")
        for o in ("seq", "overlap")
    )


def _collectives(kind: str) -> Suite:
    description = "allreduce, allgather, reduce-scatter from 8 B by powers of 2, both placements"
    return Suite("collectives", description, collective_plans(kind, 2), timeout_s=10.0)


def _full(kind: str) -> Suite:
    """The measured ceilings first, then the matmul and attention suites. Every case is timed
    cold, as the ceiling is, so that each is compared with a ceiling measured the same way
    (a hot CPU matmul keeps its operands in cache and can pass a cold ceiling)."""
    matmul = _matmul(kind)
    plans = (*matmul.plans, *_attention(kind).plans)
    description = "ceilings measured first, then the matmul and attention suites, all timed cold"
    return Suite(
        "full", description, plans, matmul.timeout_s, measures_ceilings=True, timing="cold"
    )


def _nightly(kind: str) -> Suite:
    """The quick suite after a hardware health check (bench.commands.health): the cases of a GPU
    that fails it are measured and kept, but marked, so that no baseline takes them."""
    quick = _quick(kind)
    description = "health check first, then the quick suite; a failed GPU's cases are marked"
    return replace(quick, name="nightly", description=description, health_first=True)


SUITES = {
    "quick": _quick,
    "matmul": _matmul,
    "attention": _attention,
    "collectives": _collectives,
    "full": _full,
    "nightly": _nightly,
}


def get_suite(name: str, kind: str, world_size: int = 1) -> Suite:
    """The suite called `name` for a device kind ("cpu" or "cuda") and a job of world_size.

    With several ranks, `quick` (and `nightly`) add the distributed part: the allreduce
    sweep by powers of 4 and scaling.
    """
    if name not in SUITES:
        raise UsageError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    suite = SUITES[name](kind)
    if name in ("quick", "nightly") and world_size > 1:
        suite = replace(
            suite,
            plans=(*suite.plans, *collective_plans(kind, 4), *scaling_plans(kind)),
            description=suite.description + "; allreduce 8 B.. by powers of 4; scaling E(N)",
        )
    return suite
