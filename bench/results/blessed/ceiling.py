"""results/baselines/<sku>/ceiling.json: the stored ceilings of one SKU.

A ceiling is a denominator, so a wrong one silently corrupts every fraction divided by it.
The loader therefore trusts a file only when it is valid JSON of this format, for this very
SKU (the folder name could have been copied) and for this METHOD_VERSION (a ceiling measured
another way is another number); anything else is ignored with a warning that says why, and
the fractions become None with that reason. Saving merges: dtypes measured now replace their
entries, others are kept, but only when the old file was measured with the same torch, CUDA
and driver versions; otherwise the old entries are dropped, since software moves ceilings
(MI300X went from ~450 to ~750 TFLOP/s between two ROCm releases).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from bench.results.ceiling_model import Ceiling, DtypeCeiling, MemoryCeiling
from bench.results.record import write_json_atomic
from bench.versions import METHOD_VERSION

KIND = "flopwatt-ceiling"
FORMAT_VERSION = "1.0"
FILE_NAME = "ceiling.json"
DEFAULT_BASELINES = Path("results/baselines")


class CeilingIgnored(UserWarning):
    """A ceiling.json was found but is not used as a denominator (the message says why)."""


def ceiling_path(baselines: Path, sku: str) -> Path:
    return baselines / sku / FILE_NAME


def software_of(environment: dict[str, Any]) -> dict[str, Any]:
    """The versions that move a ceiling: torch, its CUDA/HIP, cuBLAS, the driver."""
    software = environment.get("software") or {}
    nvml = environment.get("nvml") or {}
    return {
        "torch": software.get("torch"),
        "torch_cuda": software.get("torch_cuda"),
        "torch_hip": software.get("torch_hip"),
        "cublas": software.get("cublas"),
        "driver": nvml.get("driver_version"),
    }


def to_dict(ceiling: Ceiling) -> dict[str, Any]:
    return {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "method_version": ceiling.method_version,
        "sku": ceiling.sku,
        "peak_table_sku": ceiling.peak_table_sku,
        "device": ceiling.device,
        "measured_at": ceiling.measured_at,
        "command": ceiling.command,
        "software": ceiling.software,
        "warmup": ceiling.warmup,
        "matmul": {dtype: entry.as_dict() for dtype, entry in ceiling.matmul.items()},
        "skipped": ceiling.skipped,
        "memory": ceiling.memory.as_dict() if ceiling.memory is not None else None,
        "environment": ceiling.environment,
    }


def from_dict(data: Any) -> Ceiling:
    """A Ceiling from parsed JSON; ValueError naming the first thing that is wrong."""
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ValueError(f"not a flopwatt ceiling file (kind is not {KIND!r})")
    if str(data.get("format_version", "")).split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise ValueError(f"format version {data.get('format_version')!r}, this reads 1.x")
    try:
        matmul = {
            str(dtype): DtypeCeiling.from_dict(str(dtype), entry)
            for dtype, entry in dict(data.get("matmul") or {}).items()
        }
        memory = MemoryCeiling.from_dict(data["memory"]) if data.get("memory") else None
        return Ceiling(
            sku=str(data["sku"]),
            device=dict(data.get("device") or {}),
            peak_table_sku=data.get("peak_table_sku"),
            method_version=data["method_version"],
            measured_at=str(data.get("measured_at")),
            command=str(data.get("command")),
            environment=dict(data.get("environment") or {}),
            software=dict(data.get("software") or {}),
            matmul=matmul,
            memory=memory,
            warmup=data.get("warmup"),
            skipped={str(k): str(v) for k, v in dict(data.get("skipped") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed ceiling: {type(exc).__name__}: {exc}") from None


def read_ceiling(path: Path, sku: str) -> tuple[Ceiling | None, str]:
    """The ceiling stored at path if it may be used for this SKU, else (None, why not).

    A missing file is not a problem (no warning); a corrupt file, another SKU's or another
    METHOD_VERSION's is ignored with a CeilingIgnored warning.
    """
    if not path.is_file():
        return None, f"no stored ceiling ({path} does not exist)"
    try:
        ceiling = from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        return _ignored(path, f"unreadable or corrupt: {str(exc).splitlines()[0]}")
    if ceiling.sku != sku:
        return _ignored(path, f"measured on SKU {ceiling.sku!r}, this device is {sku!r}")
    if ceiling.method_version != METHOD_VERSION:
        return _ignored(
            path,
            f"method version {ceiling.method_version!r}, this flopwatt measures with "
            f"{METHOD_VERSION}",
        )
    return ceiling, ""


def _ignored(path: Path, why: str) -> tuple[None, str]:
    message = f"{path} ignored ({why}); it is not used as a denominator"
    warnings.warn(message, CeilingIgnored, stacklevel=3)
    return None, message


def merge(new: Ceiling, old: Ceiling | None) -> tuple[Ceiling, list[str]]:
    """new with the old file's other dtypes (and memory) when the software is the same."""
    if old is None:
        return new, []
    kept = [d for d in old.matmul if d not in new.matmul]
    if old.software != new.software:
        dropped = kept + (["memory"] if old.memory is not None and new.memory is None else [])
        notes = [f"dropped {', '.join(dropped)}: measured with other software"] if dropped else []
        return new, notes
    new.matmul = {**{d: old.matmul[d] for d in kept}, **new.matmul}
    for dtype, why in old.skipped.items():
        if dtype not in new.matmul and dtype not in new.skipped:
            new.skipped[dtype] = why
    for dtype in new.matmul:
        new.skipped.pop(dtype, None)
    if new.memory is None:
        new.memory = old.memory
    return new, [f"kept {', '.join(kept)} from the earlier file"] if kept else []


def save_ceiling(ceiling: Ceiling, baselines: Path) -> tuple[Path, list[str]]:
    """Write baselines/<sku>/ceiling.json (atomically), merged with a usable earlier file."""
    path = ceiling_path(baselines, ceiling.sku)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old, _why = read_ceiling(path, ceiling.sku)
    merged, notes = merge(ceiling, old)
    notes = [str(w.message) for w in caught] + notes
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, to_dict(merged))
    return path, notes
