"""Per-clock throughput of each architecture: the data behind derived peaks.

A SKU missing from bench/peaks/peaks.csv gets its peak as units x clock x the rate here, so these
numbers are only ever used for hardware the table does not name. Sources and caveats are in
shared/reference/research-peaks.md §3-§4 (whitepapers, the CUDA throughput table, and the
tensor-clock ratio XLA uses).
"""

from __future__ import annotations

TENSOR_CLOCK_FACTOR = {(9, 0): 0.924, (10, 0): 0.934}
"""Tensor clock / max SM clock (XLA: 1830/1980 MHz on H100), for deriving unknown SKUs."""


# Dense FLOPs (ops for int8) per clock per SM, research-peaks.md §3, as (pro, geforce).
# A missing mode means the architecture has no native path for it; None means the rate for
# that tier is not known (sm_120 pro parts), which is not the same as zero.
# "fp64_tensor" is the FP64 tensor-core (DMMA) rate that DGEMM uses where it exists.
Rate = tuple[int | None, int | None]
NVIDIA_RATES: dict[tuple[int, int], dict[str, Rate]] = {
    (7, 0): {"fp64": (64, 64), "fp32": (128, 128), "fp16": (1024, 1024)},
    (7, 5): {"fp64": (4, 4), "fp32": (128, 128), "fp16": (1024, 512), "int8": (2048, 2048)},
    (8, 0): {
        "fp64": (64, 64),
        "fp64_tensor": (128, 128),
        "fp32": (128, 128),
        "tf32": (1024, 1024),
        "bf16": (2048, 2048),
        "fp16": (2048, 2048),
        "int8": (4096, 4096),
    },
    (8, 6): {
        "fp64": (4, 4),
        "fp32": (256, 256),
        "tf32": (512, 256),
        "bf16": (1024, 512),
        "fp16": (1024, 512),
        "int8": (2048, 2048),
    },
    (8, 9): {
        "fp64": (4, 4),
        "fp32": (256, 256),
        "tf32": (512, 256),
        "bf16": (1024, 512),
        "fp16": (1024, 512),
        "fp8": (2048, 1024),
        "int8": (2048, 2048),
    },
    (9, 0): {
        "fp64": (128, 128),
        "fp64_tensor": (256, 256),
        "fp32": (256, 256),
        "tf32": (2048, 2048),
        "bf16": (4096, 4096),
        "fp16": (4096, 4096),
        "fp8": (8192, 8192),
        "int8": (8192, 8192),
    },
    (10, 0): {
        "fp64": (128, 128),
        "fp64_tensor": (128, 128),
        "fp32": (256, 256),
        "tf32": (4096, 4096),
        "bf16": (8192, 8192),
        "fp16": (8192, 8192),
        "fp8": (16384, 16384),
        "int8": (16384, 16384),
    },
    (12, 0): {
        "fp64": (4, 4),
        "fp32": (256, 256),
        "tf32": (None, 256),
        "bf16": (None, 512),
        "fp16": (None, 512),
        "fp8": (None, 1024),
        "int8": (2048, 2048),
    },
}

# Dense FLOPs per clock per CU, research-peaks.md §3 (keyed on gfx arch: HIP's cc 9.0 covers
# both gfx908 and gfx90a). fp32 is the vector rate, as in the CSV.
AMD_RATES: dict[str, dict[str, int]] = {
    "gfx908": {"fp64": 64, "fp32": 128, "fp16": 1024, "bf16": 512, "int8": 1024},
    "gfx90a": {
        "fp64": 128,
        "fp64_tensor": 256,
        "fp32": 128,
        "fp16": 1024,
        "bf16": 1024,
        "int8": 1024,
    },
    "gfx942": {
        "fp64": 128,
        "fp64_tensor": 256,
        "fp32": 256,
        "tf32": 1024,
        "fp16": 2048,
        "bf16": 2048,
        "fp8": 4096,
        "int8": 4096,
    },
    "gfx950": {
        "fp64": 128,
        "fp64_tensor": 128,
        "fp32": 256,
        "fp16": 4096,
        "bf16": 4096,
        "fp8": 8192,
        "int8": 8192,
    },
}
