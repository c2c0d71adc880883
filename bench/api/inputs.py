"""What the API's callers pass in, checked before any device is touched.

Every bad value is a one-line ValueError that says what would be accepted, so a notebook
user sees the fix, not a traceback from deep inside torch.
"""

from __future__ import annotations

import math
from typing import Any

from bench.peaks.table import MATH_MODES

POWER_NAMES = ("auto", "none", "nvml", "amdsmi", "rapl")

# Names a caller may use for a math mode besides the modes themselves; a torch.dtype maps
# through its own name (torch.bfloat16 -> "bfloat16" -> "bf16").
_DTYPE_ALIASES = {
    "float64": "fp64",
    "double": "fp64",
    "float32": "fp32",
    "float": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float8_e4m3fn": "fp8",
    "float8_e4m3fnuz": "fp8",
}


def math_mode_of(dtype: Any) -> str | None:
    """The peak-table math mode a dtype names ("tf32", "bf16", torch.float16, ...), or None."""
    if dtype is None:
        return None
    text = str(dtype).removeprefix("torch.").strip().lower()
    mode = _DTYPE_ALIASES.get(text, text)
    if mode not in MATH_MODES:
        raise ValueError(
            f"unknown dtype {dtype!r}; pass a math mode ({', '.join(MATH_MODES)}) or the torch "
            "dtype it runs in"
        )
    return mode


def count_of(name: str, value: Any) -> int | float | None:
    """ops= or bytes=: a positive finite number per call, or None (unknown)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}= must be a number per call, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}= must be a positive finite number per call, got {value!r}")
    return value


def seconds_of(name: str, value: Any) -> float | None:
    """A positive time limit in seconds, or None (the default)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}= must be seconds as a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}= must be a positive number of seconds, got {value!r}")
    return float(value)


def check_power(power: Any) -> None:
    """A power choice by name, or an opened source with bench.power.base's protocol."""
    if isinstance(power, str):
        if power not in POWER_NAMES:
            raise ValueError(f"power={power!r} is not one of {', '.join(POWER_NAMES)}")
    elif not hasattr(power, "start_window") or not hasattr(power, "available"):
        raise ValueError(
            f"power= must be one of {', '.join(POWER_NAMES)} or a power source, "
            f"got {type(power).__name__}"
        )


def device_spec(device: Any) -> str:
    """A backend spec ("cpu", "cuda:N") for device=; None means the caller's current device.

    None is decided here, once per call: the default device torch places new tensors on
    (`torch.set_default_device`, `with torch.device(...)`) when that is not the CPU, else the
    current CUDA device (`torch.cuda.set_device`) when CUDA is available, else the CPU. So
    CUDA work is timed on its GPU by default; pass device="cpu" to time CPU work on a GPU host.
    """
    import torch

    if device is None:
        default = torch.get_default_device()
        if default.type != "cpu":
            device = default
        elif torch.cuda.is_available():
            return f"cuda:{torch.cuda.current_device()}"
        else:
            return "cpu"
    text = str(device).strip().lower()
    if text == "cpu":
        return "cpu"
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"device={device!r}: flopwatt measures on 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: torch sees no CUDA device here; pass device='cpu'")
    number = int(index) if index else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if number >= count:
        raise ValueError(f"device={device!r}: only {count} CUDA device(s) visible (0..{count - 1})")
    return f"cuda:{number}"


def open_backend(device: Any) -> Any:
    """The timing backend for device= (see device_spec)."""
    from bench.devices import get_backend

    return get_backend(device_spec(device))


def open_power(power: Any, facts: Any) -> tuple[Any, bool]:
    """(a bench.power PowerChoice, whether this call opened its source and must close it).

    "auto" picks what `flopwatt run` picks: NVML on an NVIDIA GPU, amdsmi on an AMD GPU, RAPL
    on a CPU where its counters are readable, else an estimate from the peak table's TDP
    (labelled `estimate`), else none, with the reasons for each source skipped.
    """
    from bench.power import PowerChoice, open_power_source
    from bench.power.base import PowerUnavailable
    from bench.power.null import NullPowerSource

    if not isinstance(power, str):
        return PowerChoice(power, "given by the caller"), False
    if power == "none":
        return PowerChoice(NullPowerSource("power='none' was passed"), "none"), True
    try:
        return open_power_source(power, facts), True
    except PowerUnavailable as exc:
        raise ValueError(f"power={power!r}: {str(exc).splitlines()[0]}") from None
