"""Backends per device kind; get_backend() is the only place that inspects torch.cuda."""

from __future__ import annotations

import re

from bench.devices.base import Backend
from bench.errors import UsageError

DEVICE_FORMS = "auto, cpu, cuda or cuda:N"


def parse_device(spec: str) -> tuple[str, int | None]:
    """("cpu"|"cuda"|"auto", index or None) from a --device value; UsageError if malformed."""
    text = spec.strip().lower()
    if text in ("auto", "cpu", "cuda"):
        return text, None
    match = re.fullmatch(r"cuda:(\d+)", text)
    if match is None:
        raise UsageError(f"--device {spec!r} is not one of {DEVICE_FORMS}")
    return "cuda", int(match.group(1))


def get_backend(spec: str, threads: int | None = None) -> Backend:
    """The backend for a --device value. Imports torch; call it once, from the CLI."""
    kind, index = parse_device(spec)
    import torch

    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        from bench.devices.cpu import CpuBackend

        return CpuBackend(threads)
    if not torch.cuda.is_available():
        raise UsageError(
            f"--device {spec}: no CUDA device is visible (torch {torch.__version__} "
            f"{'has no CUDA support' if torch.version.cuda is None else 'found none'}); "
            "use --device cpu or --device auto"
        )
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if index is None else index
    if index >= count:
        raise UsageError(
            f"--device cuda:{index}: only {count} CUDA device(s) visible (0..{count - 1})"
        )
    from bench.devices.cuda import CudaBackend

    return CudaBackend(index)
