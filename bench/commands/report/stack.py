"""The software stack of each run, one column per run, for the vendor comparison.

On GPUs the software moves the result as much as the silicon (MI300X's matmul rate moved by
two thirds between two ROCm releases), so every number of a comparison stands next to what
it ran on. Fields are read tolerantly: a run written before a field existed shows "not
recorded"; a field recorded as unknown shows the reason the run gave.
"""

from __future__ import annotations

from typing import Any

from bench.results.document import Table

# (row name, dotted paths in run.json, the first present one wins); "meta." reads run.json's top.
STACK_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("vendor", ("environment.gpu.vendor",)),
    (
        "device",
        (
            "environment.gpu.name",
            "meta.device_facts.identity.name",
            "meta.device_facts.identity.model",
        ),
    ),
    ("arch", ("environment.gpu.gcn_arch", "environment.gpu.compute_capability")),
    ("SMs / CUs", ("environment.gpu.sm_count",)),
    ("fp8 format", ("environment.gpu.fp8_format",)),
    ("torch", ("environment.software.torch",)),
    ("CUDA (torch build)", ("environment.software.torch_cuda",)),
    ("HIP (torch build)", ("environment.software.torch_hip",)),
    ("ROCm", ("environment.software.rocm_version",)),
    ("BLAS library", ("environment.software.blas_library",)),
    ("cuBLAS", ("environment.software.cublas",)),
    ("TunableOp", ("environment.software.tunableop_enabled",)),
    ("collective library", ("environment.software.collective_library",)),
    ("NCCL / RCCL", ("environment.software.nccl",)),
    ("cuDNN", ("environment.software.cudnn",)),
    ("driver", ("environment.nvml.driver_version", "environment.amdsmi.driver_version")),
    (
        "power limit (W)",
        ("environment.nvml.power_limit_enforced_w", "environment.amdsmi.power_cap_w"),
    ),
    ("power source", ("meta.power_source.name",)),
    ("python", ("environment.host.python",)),
    ("flopwatt commit", ("environment.git.sha",)),
    ("method version", ("meta.method_version",)),
    ("synthetic", ("meta.synthetic",)),
)
NOT_RECORDED = "not recorded"


def _lookup(meta: dict[str, Any], path: str) -> tuple[bool, Any, str]:
    """(present, value, reason) for "environment.a.b" or "meta.a.b"."""
    head, _, rest = path.partition(".")
    node: Any = (meta.get("environment") or {}) if head == "environment" else meta
    missing = (meta.get("environment") or {}).get("missing") or {}
    for part in rest.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None, ""
        node = node[part]
    return True, node, str(missing.get(rest, "unknown")) if head == "environment" else "unknown"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def field_value(meta: dict[str, Any], paths: tuple[str, ...]) -> str:
    """The first recorded value among paths; 'unknown (why)' or 'not recorded' otherwise."""
    reasons = []
    for path in paths:
        present, value, why = _lookup(meta, path)
        if present and value is not None:
            text = _show(value)
            return text[:12] if path.endswith("git.sha") else text
        if present:
            reasons.append(why)
    if reasons:
        return f"unknown ({reasons[0]})"
    return NOT_RECORDED


def env_vars(meta: dict[str, Any]) -> dict[str, str]:
    """The environment variables the run recorded as set (TunableOp, NCCL_*, visibility)."""
    recorded = (meta.get("environment") or {}).get("env_vars") or {}
    return {k: str(v) for k, v in recorded.items() if v is not None}


def stack_table(labels: list[str], metas: list[dict[str, Any]]) -> Table:
    """One row per stack field, one column per run; set environment variables at the end."""
    rows = [[name, *(field_value(m, paths) for m in metas)] for name, paths in STACK_FIELDS]
    names = sorted({k for m in metas for k in env_vars(m)})
    for name in names:
        rows.append([f"${name}", *(env_vars(m).get(name, "not set") for m in metas)])
    caption = (
        "what each run ran on, from its run.json; 'not recorded': the run's flopwatt did not "
        "record the field; 'unknown (...)': it tried and says why it could not"
    )
    return Table(["software stack", *labels], rows, caption)
