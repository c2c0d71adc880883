"""The allreduce kernel's declaration (kernels.allreduce runs it): sizes, axes and bytes.

S is the operation's size in bytes as nccl-tests defines it (doc/PERFORMANCE.md): the
per-rank buffer for allreduce, the total gathered (allgather) or the total scattered
(reduce-scatter) array. Collectives are rated by bandwidth, not by operations, so `ops` is
None. Torch-free: see kernels.spec.
"""

from __future__ import annotations

import re

from kernels.case import Case
from kernels.spec import Axis, AxisError, KernelSpec
from kernels.spec import option as _option

NAME = "allreduce"
ITEM_BYTES = {"fp32": 4, "bf16": 2}  # the keys are the collective dtypes
DTYPES = tuple(ITEM_BYTES)
COLLECTIVE = _option(
    "collective",
    ("allreduce", "allgather", "reduce_scatter"),
    "allreduce",
    "collectives: allreduce,allgather,reduce_scatter",
)
PLACE = _option(
    "place", ("out", "in"), "out", "collective buffer placement: out,in (nccl-tests' two)"
)
COLLECTIVES = COLLECTIVE.choices

_UNITS = {
    "": 1,
    "B": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}
_SIZE = re.compile(r"\s*(\d+)\s*([KMG]i?B?|B)?\s*")


def parse_size(text: str) -> int:
    """Bytes from "8", "64K" (10^3), "1Mi" (2^20), "1Gi", "256MiB"; AxisError otherwise."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2) or "" if match else None
    if match is None or unit not in _UNITS:
        raise AxisError(
            f"size {text!r} is not a size like 8, 64K, 1Mi or 1Gi "
            "(K, M, G are powers of 10; Ki, Mi, Gi powers of 2)"
        )
    value = int(match.group(1)) * _UNITS[unit]
    if value <= 0:
        raise AxisError(f"size {text!r} must be positive")
    return value


def format_size(nbytes: int) -> str:
    for unit, scale in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{unit}"
    return f"{nbytes}B"


def parse_shape(text: str) -> dict[str, int]:
    return {"bytes": parse_size(text)}


def make_case(
    shape: dict[str, int],
    dtype: str,
    device: str,
    init: str = "randn",
    seed: int = 0,
    options: dict[str, str] | None = None,
) -> Case:
    """The inputs are always the exact integers of kernels.allreduce, whatever `init` says."""
    chosen = SPEC.choose(dtype, options)
    label = f"{format_size(shape['bytes'])} {chosen['collective']} {chosen['place']}"
    params = {
        "bytes_requested": shape["bytes"],
        **chosen,
        "shape_label": label,
        "init": "exact-integers",
        "seed": seed,
    }
    return Case(kernel=NAME, params=params, dtype=dtype, device=device)


def counts(case: Case) -> tuple[int, int, int]:
    """(elements per rank input, per rank output, S in bytes) for this world size.

    Sizes are rounded down to what the world divides evenly, as nccl-tests does.
    """
    item = ITEM_BYTES[case.dtype]
    n = case.world_size
    elements = max(1, case.params["bytes_requested"] // item)
    collective = case.params["collective"]
    if collective == "allreduce":
        return elements, elements, elements * item
    per_rank = max(1, elements // n)
    if collective == "allgather":  # S = the gathered total
        return per_rank, per_rank * n, per_rank * n * item
    return per_rank * n, per_rank, per_rank * n * item  # reduce_scatter: S = the input total


def ops(case: Case) -> None:
    return None


def ops_convention(case: Case) -> str:
    return (
        "rated by bandwidth, not ops: algbw = S/t, busbw = algbw x 2(n-1)/n (allreduce) "
        "or (n-1)/n (allgather, reduce_scatter), S as nccl-tests defines it"
    )


def bytes_moved(case: Case) -> int:
    return counts(case)[2]


SPEC = KernelSpec(
    name=NAME,
    module="kernels.allreduce",
    description=(
        "allreduce, allgather, reduce-scatter as nccl-tests: algbw = S/t, busbw = algbw x factor"
    ),
    dtypes=DTYPES,
    shape=Axis(
        "bytes",
        "--bytes",
        "collective sizes, comma-separated: 8,64K,1Mi,1Gi (Ki/Mi/Gi = 2^10/20/30)",
        "SIZE",
        parse=parse_shape,
    ),
    options=(COLLECTIVE, PLACE),
    ops=ops,
    bytes_moved=bytes_moved,
    ops_convention=ops_convention,
    make_case=make_case,
    collective=True,
)
