"""Memory-bandwidth workloads for the memory ceiling: a copy and a read-only reduction.

Both run over one buffer far larger than the last-level cache, so every byte comes from
DRAM/HBM. Byte conventions are STREAM's and BabelStream's: a copy moves its buffer twice
(read the source, write the destination), a read-only sum moves it once. Not a registered
kernel: `flopwatt run` has no use for them; bench.commands.ceiling measures them.
"""

from __future__ import annotations

from typing import Any

import torch

from kernels.base import Correctness, Prepared

KERNELS = ("copy", "read")
CONVENTION = {
    "copy": "2 x buffer bytes per call (read the source, write the destination)",
    "read": "1 x buffer bytes per call (read once, sum into a scalar)",
}
ELEMENT = torch.float32


def bytes_per_call(kernel: str, buffer_bytes: int) -> int:
    return 2 * buffer_bytes if kernel == "copy" else buffer_bytes


def memory_bytes(kernel: str, buffer_bytes: int) -> int:
    """Device memory the kernel allocates: the copy needs a source and a destination."""
    return 2 * buffer_bytes if kernel == "copy" else buffer_bytes


def prepare(kernel: str, buffer_bytes: int, device: Any, seed: int = 0) -> Prepared:
    """Allocate a random buffer of buffer_bytes (rounded down to whole fp32 elements)."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown memory kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    n = buffer_bytes // ELEMENT.itemsize
    gen = torch.Generator(device=device).manual_seed(seed)
    src = torch.rand(n, generator=gen, device=device, dtype=ELEMENT)
    if kernel == "copy":
        dst = torch.empty_like(src)

        def run() -> torch.Tensor:
            return dst.copy_(src)

        def check() -> Correctness:
            run()
            wrong = int((dst != src).sum())
            return Correctness(wrong == 0, "elements differing from the source", wrong, 0.0)

        return Prepared(run=run, check=check)
    out = torch.empty((), device=device, dtype=ELEMENT)

    def run() -> torch.Tensor:
        return torch.sum(src, dim=0, out=out)

    def check() -> Correctness:
        run()
        ref = float(src.sum(dtype=torch.float64))
        error = abs(float(out) - ref) / max(abs(ref), 1e-30)
        return Correctness(error <= 1e-4, "relative error of the sum vs fp64", error, 1e-4)

    return Prepared(run=run, check=check)
