"""The matmul kernel's declaration (kernels.matmul runs it): shapes, dtypes, ops and bytes.

Conventions: ops = 2*M*N*K, a multiply-add counting two, for int8 too (then they are integer
ops, shown as TOP/s); bytes = (M*K + N*K) input elements + M*N output elements, each at its
own itemsize, i.e. every operand touched once. Torch-free: see kernels.spec.
"""

from __future__ import annotations

import re

from kernels.case import Case
from kernels.spec import Axis, AxisError, KernelSpec, check_dtype, check_init

NAME = "matmul"
# Bytes per element of A and B, and of C, per math mode; the keys are the matmul dtypes,
# the one list of them (fp8 is e4m3 with a bf16 output, int8 accumulates into int32).
INPUT_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
OUTPUT_BYTES = {**INPUT_BYTES, "fp8": 2, "int8": 4}
DTYPES = tuple(INPUT_BYTES)

_SHAPE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*")


def parse_shape(text: str) -> dict[str, int]:
    """{"m", "n", "k"} from "MxNxK"; AxisError naming the problem otherwise."""
    match = _SHAPE.fullmatch(text)
    if match is None:
        raise AxisError(f"shape {text!r} is not MxNxK with positive integers, e.g. 4096x4096x4096")
    m, n, k = (int(g) for g in match.groups())
    if min(m, n, k) <= 0:
        raise AxisError(f"shape {text!r}: every dimension must be positive")
    return {"m": m, "n": n, "k": k}


def make_case(
    shape: dict[str, int], dtype: str, device: str, init: str = "randn", seed: int = 0
) -> Case:
    check_dtype(NAME, dtype, DTYPES)
    check_init(init)
    m, n, k = shape["m"], shape["n"], shape["k"]
    params = {
        "m": m,
        "n": n,
        "k": k,
        "shape_label": f"{m}x{n}x{k}",
        "layout": "TN",
        "init": init,
        "seed": seed,
    }
    return Case(kernel=NAME, params=params, dtype=dtype, device=device)


def _mnk(case: Case) -> tuple[int, int, int]:
    return case.params["m"], case.params["n"], case.params["k"]


def ops(case: Case) -> int:
    m, n, k = _mnk(case)
    return 2 * m * n * k


def ops_convention(case: Case) -> str:
    return "2*M*N*K (a multiply-add counts 2)"


def bytes_moved(case: Case) -> int:
    m, n, k = _mnk(case)
    return (m * k + n * k) * INPUT_BYTES[case.dtype] + m * n * OUTPUT_BYTES[case.dtype]


SPEC = KernelSpec(
    name=NAME,
    module="kernels.matmul",
    description="dense C = A @ B^T (TN layout), ops = 2*M*N*K",
    dtypes=DTYPES,
    shape=Axis(
        "shape",
        "--shape",
        "comma-separated MxNxK shapes, replacing the suite's",
        "MxNxK",
        parse=parse_shape,
    ),
    ops=ops,
    bytes_moved=bytes_moved,
    ops_convention=ops_convention,
    make_case=make_case,
)
