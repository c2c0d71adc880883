"""The workloads flopwatt measures, one module each, looked up by name.

Modules are imported on demand: listing kernels or printing help must not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from bench.errors import UsageError

if TYPE_CHECKING:
    from kernels.base import Kernel

# name -> (module, dtypes, one-line description); dtypes are repeated here so that
# `flopwatt list` and argument validation need no torch import.
REGISTRY: dict[str, tuple[str, tuple[str, ...], str]] = {
    "matmul": (
        "kernels.matmul",
        ("fp32", "tf32", "bf16", "fp16", "fp8", "int8"),
        "dense C = A @ B^T (TN layout), ops = 2*M*N*K",
    ),
    "attention": (
        "kernels.attention",
        ("bf16", "fp16", "fp32"),
        "torch SDPA fwd/bwd/fwdbwd per backend, causal or not, GQA; ops = 4*B*Hq*D*P (fwd)",
    ),
    "scaling": (
        "kernels.scaling",
        ("bf16", "fp32"),
        "data-parallel step (matmul + gradient allreduce) on 1, 2, 4, ... ranks: E(N)",
    ),
    "allreduce": (
        "kernels.allreduce",
        ("fp32", "bf16"),
        "allreduce, allgather, reduce-scatter as nccl-tests: algbw = S/t, busbw = algbw x factor",
    ),
}


def kernel_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def kernel_dtypes(name: str) -> tuple[str, ...]:
    return REGISTRY[check_kernel_name(name)][1]


def check_kernel_name(name: str) -> str:
    if name not in REGISTRY:
        raise UsageError(f"unknown kernel {name!r}; choose from {', '.join(REGISTRY)}")
    return name


def get_kernel(name: str) -> Kernel:
    """The kernel module for a name (imports torch)."""
    module = importlib.import_module(REGISTRY[check_kernel_name(name)][0])
    return module  # type: ignore[return-value]
