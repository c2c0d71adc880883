"""Dense matmul C = A @ B^T in every math mode a device offers.

Layout follows MAMF finder: A is M x K row-major, B is stored N x K and multiplied transposed
(the "TN" layout cuBLASLt needs for fp8), C is written into a preallocated output so that no
call allocates. Shapes, dtypes, ops and bytes are declared in kernels.matmul_spec.

Math modes: fp32 runs with TF32 off (the CUDA-core fp32 peak applies), tf32 is fp32 storage
with TF32 tensor cores on, fp8 is e4m3 through torch._scaled_mm with unit scales and bf16
output (the device's own e4m3 encoding: FNUZ on MI300, OCP elsewhere, from
bench.devices.capabilities), int8 is torch._int_mm with int32 output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from bench.devices.base import CpuIdentity, DeviceFacts, GpuIdentity
from bench.devices.capabilities import capabilities_of, fp8_format_of_torch_device, torch_fp8_dtype
from kernels.base import Correctness, Prepared
from kernels.case import Case
from kernels.matmul_spec import (  # noqa: F401  the declared half of the Kernel interface
    SPEC,
    bytes_moved,
    make_case,
    ops,
    ops_convention,
    parse_shape,
)

NAME = SPEC.name
DTYPES = SPEC.dtypes
CHECK_ROWS = 256  # rows of C compared against the fp64 reference: cheap, and every K is used

_STORAGE = {
    "fp32": torch.float32,
    "tf32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "fp8": torch.float8_e4m3fn,
    "int8": torch.int8,
}
_OUTPUT = {**_STORAGE, "fp8": torch.bfloat16, "int8": torch.int32}

# Normwise relative error allowed against an fp64 product of the same (already rounded)
# inputs: a few times the output dtype's rounding error. fp32's bound is tight enough that an
# fp32 case silently running on TF32 (error ~5e-4) fails it. int8 accumulates exactly.
TOLERANCE = {"fp32": 1e-4, "tf32": 5e-3, "bf16": 1e-2, "fp16": 2e-3, "fp8": 1e-2, "int8": 0.0}


def _mnk(case: Case) -> tuple[int, int, int]:
    return case.params["m"], case.params["n"], case.params["k"]


def memory_bytes(case: Case) -> int:
    """Inputs, output, and the fp64 reference's copies of B and of the checked rows."""
    m, n, k = _mnk(case)
    rows = min(m, CHECK_ROWS)
    return bytes_moved(case) + 8 * (n * k + rows * k + 2 * rows * n)


def math_mode(case: Case) -> str:
    return case.dtype


@contextlib.contextmanager
def precision(case: Case) -> Iterator[None]:
    """TF32 on for tf32 and off for every other mode; the previous setting is restored."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = case.dtype == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def unsupported_reason(case: Case, facts: DeviceFacts) -> str | None:
    m, n, k = _mnk(case)
    identity = facts.identity
    caps = capabilities_of(identity)
    if case.dtype == "tf32" and not caps.tf32:
        return caps.why["tf32"]
    if case.dtype == "fp8" and caps.fp8_format is None:
        return caps.why["fp8"]
    if isinstance(identity, CpuIdentity):
        return None
    assert isinstance(identity, GpuIdentity)
    major, minor = (int(x) for x in identity.compute_capability.split("."))
    if identity.vendor == "nvidia" and case.dtype == "bf16" and (major, minor) < (8, 0):
        return f"bf16 needs compute capability 8.0 or newer; this is {major}.{minor}"
    if case.dtype == "fp8" and (k % 16 or n % 16):
        return "torch._scaled_mm needs K and N to be multiples of 16"
    if case.dtype == "int8" and (m <= 16 or k % 8 or n % 8):
        return "torch._int_mm on CUDA needs M > 16 and K, N multiples of 8"
    return None


def _inputs(
    rows: int, cols: int, dtype: str, init: str, gen: torch.Generator, device: Any
) -> torch.Tensor:
    if init == "zeros":
        base = torch.zeros(rows, cols, device=device)
    elif init == "ones":
        base = torch.ones(rows, cols, device=device)
    else:
        base = torch.randn(rows, cols, generator=gen, device=device)
    if dtype == "int8":
        # randn scaled to use int8's range without saturating: values in [-127, 127].
        base = (base * 32).round_().clamp_(-127, 127)
    return base.to(_storage(dtype, device))


def _storage(dtype: str, device: Any) -> torch.dtype:
    """The torch dtype of a math mode here: fp8 is the device's own encoding (e4m3fnuz on
    MI300, OCP e4m3fn on MI350 and NVIDIA), from the capability table."""
    if dtype == "fp8":
        return torch_fp8_dtype(fp8_format_of_torch_device(device) or "e4m3fn")
    return _STORAGE[dtype]


def prepare(case: Case, device: Any) -> Prepared:
    m, n, k = _mnk(case)
    init, seed = case.params["init"], case.params["seed"]
    gen = torch.Generator(device=device).manual_seed(seed)
    a = _inputs(m, k, case.dtype, init, gen, device)
    b = _inputs(n, k, case.dtype, init, gen, device)
    c = torch.empty(m, n, dtype=_OUTPUT[case.dtype], device=device)
    bt = b.t()
    if case.dtype == "fp8":
        scale = torch.ones((), device=device)

        def run() -> torch.Tensor:
            return torch._scaled_mm(
                a, bt, scale_a=scale, scale_b=scale, out_dtype=torch.bfloat16, out=c
            )
    elif case.dtype == "int8":

        def run() -> torch.Tensor:
            return torch._int_mm(a, bt, out=c)
    else:

        def run() -> torch.Tensor:
            return torch.mm(a, bt, out=c)

    def check() -> Correctness:
        run()
        return compare_to_reference(a, b, c, case.dtype)

    return Prepared(run=run, check=check, refresh=_refresher(c, gen))


def _refresher(c: torch.Tensor, gen: torch.Generator) -> Callable[[], object]:
    """c.copy_(random) for MAMF-style output re-randomisation; the source is made on first use,
    so cases (which never refresh) allocate nothing for it."""
    source: list[torch.Tensor] = []

    def refresh() -> torch.Tensor:
        if not source:
            if c.dtype.is_floating_point:
                fresh = torch.randn(c.shape, generator=gen, device=c.device).to(c.dtype)
            else:
                fresh = torch.randint(-(2**20), 2**20, c.shape, generator=gen, device=c.device)
            source.append(fresh.to(c.dtype))
        return c.copy_(source[0])

    return refresh


def refresh_bytes(case: Case) -> int:
    """Memory the re-randomisation source takes (one output-sized tensor)."""
    m, n, _k = _mnk(case)
    return m * n * _OUTPUT[case.dtype].itemsize


def compare_to_reference(
    a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, dtype: str
) -> Correctness:
    """Normwise relative error of out = a @ b^T against fp64, on the first CHECK_ROWS rows."""
    rows = min(a.shape[0], CHECK_ROWS)
    ref = a[:rows].to(torch.float64) @ b.to(torch.float64).t()
    diff = float(torch.linalg.vector_norm(out[:rows].to(torch.float64) - ref))
    scale = float(torch.linalg.vector_norm(ref))
    error = diff / scale if scale > 0 else diff
    tol = TOLERANCE[dtype]
    metric = f"normwise relative error vs fp64 on {rows} of {a.shape[0]} rows"
    return Correctness(ok=error <= tol, metric=metric, error=error, tolerance=tol)
