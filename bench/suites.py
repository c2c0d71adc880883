"""Named suites as plain data: per device kind, which kernels, dtypes and shapes to run.

A suite is a recipe, not a list of cases, so that --kernel, --dtype and --shape can replace
one axis and keep the others. `quick` is what `flopwatt run` does with no arguments; it must
finish in about a minute on a GPU and within 90 s on a 2-core CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import UsageError

ALL_MATMUL = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")

# LLM-like rectangles (M = tokens per step, N x K = the weight): Llama-3-8B's MLP up and
# down projections and Llama-3-70B's fused QKV (64 query + 2 x 8 kv heads of 128).
LLM_SHAPES = ("8192x14336x4096", "8192x4096x14336", "8192x10240x8192")
GPU_SQUARES = tuple(f"{n}x{n}x{n}" for n in (1024, 2048, 4096, 8192, 16384))


@dataclass(frozen=True)
class KernelPlan:
    kernel: str
    dtypes: tuple[str, ...]
    shapes: tuple[str, ...]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    plans: tuple[KernelPlan, ...]
    timeout_s: float  # default per-case timeout; --timeout-s overrides


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
        )
        return Suite("quick", "small matmuls in every dtype the CPU runs", plans, timeout_s=6.0)
    plans = (KernelPlan("matmul", ALL_MATMUL, ("4096x4096x4096", "8192x8192x8192", LLM_SHAPES[0])),)
    return Suite("quick", "matmul at 4k, 8k and an LLM MLP shape in every dtype", plans, 10.0)


def _matmul(kind: str) -> Suite:
    if kind == "cpu":
        shapes = (*(f"{n}x{n}x{n}" for n in (128, 256, 512, 1024, 2048)), "2048x512x1024")
        plans = (KernelPlan("matmul", ALL_MATMUL, shapes),)
        return Suite("matmul", "matmul sweep sized for a CPU", plans, timeout_s=10.0)
    plans = (KernelPlan("matmul", ALL_MATMUL, GPU_SQUARES + LLM_SHAPES),)
    return Suite("matmul", "matmul 1k..16k squares and LLM rectangles, every dtype", plans, 8.0)


SUITES = {"quick": _quick, "matmul": _matmul}


def get_suite(name: str, kind: str) -> Suite:
    """The suite called `name` for a device kind ("cpu" or "cuda")."""
    if name not in SUITES:
        raise UsageError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    return SUITES[name](kind)
