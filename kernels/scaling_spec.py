"""The scaling kernel's declaration (kernels.scaling runs it): steps, axes, ops and bytes.

A step proxy is "MxNxK/SIZE": the matmul each rank runs and the gradient allreduced after
it. ops = 2*M*N*K per rank per step at N = 1; bytes = the gradient. Torch-free: see
kernels.spec.
"""

from __future__ import annotations

import re

from kernels.allreduce_spec import format_size, parse_size
from kernels.case import Case
from kernels.spec import Axis, AxisError, KernelSpec
from kernels.spec import option as _option

NAME = "scaling"
DTYPES = ("bf16", "fp32")
SCALING = _option("scaling", ("weak", "strong"), "weak", "scaling modes: weak,strong")
OVERLAP = _option(
    "overlap",
    ("seq", "overlap"),
    "seq",
    "allreduce after the matmul or overlapping it: seq,overlap",
)

_STEP = re.compile(r"\s*(\d+)x(\d+)x(\d+)\s*/\s*(\S+)\s*")


def parse_shape(text: str) -> dict[str, int]:
    """{"m", "n", "k", "grad_bytes"} from "MxNxK/SIZE", e.g. "8192x8192x8192/2Gi"."""
    match = _STEP.fullmatch(text)
    if match is None:
        raise AxisError(
            f"step {text!r} is not MxNxK/SIZE, e.g. 4096x4096x4096/2Gi "
            "(the matmul per rank / the gradient allreduced each step)"
        )
    m, n, k = (int(g) for g in match.groups()[:3])
    if min(m, n, k) <= 0:
        raise AxisError(f"step {text!r}: every matmul dimension must be positive")
    return {"m": m, "n": n, "k": k, "grad_bytes": parse_size(match.group(4))}


def make_case(
    shape: dict[str, int],
    dtype: str,
    device: str,
    init: str = "randn",
    seed: int = 0,
    options: dict[str, str] | None = None,
) -> Case:
    chosen = SPEC.choose(dtype, options)
    label = (
        f"{shape['m']}x{shape['n']}x{shape['k']}/{format_size(shape['grad_bytes'])} "
        f"{chosen['scaling']} {chosen['overlap']}"
    )
    params = {**shape, **chosen, "shape_label": label, "init": init, "seed": seed}
    return Case(kernel=NAME, params=params, dtype=dtype, device=device)


def ops(case: Case) -> int:
    return 2 * case.params["m"] * case.params["n"] * case.params["k"]


def ops_convention(case: Case) -> str:
    return "2*M*N*K matmul ops per rank per step at N = 1; the allreduce adds none"


def bytes_moved(case: Case) -> int:
    return case.params["grad_bytes"]


SPEC = KernelSpec(
    name=NAME,
    module="kernels.scaling",
    description="data-parallel step (matmul + gradient allreduce) on 1, 2, 4, ... ranks: E(N)",
    dtypes=DTYPES,
    shape=Axis(
        "step",
        "--step",
        "scaling step proxies MxNxK/SIZE: matmul per rank / gradient allreduced",
        "MxNxK/SIZE",
        parse=parse_shape,
    ),
    options=(SCALING, OVERLAP),
    ops=ops,
    bytes_moved=bytes_moved,
    ops_convention=ops_convention,
    make_case=make_case,
    collective=True,
)
