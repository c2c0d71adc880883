"""Scaled dot-product attention (torch SDPA): forward, backward, and both, per backend.

One case is one `torch.nn.functional.scaled_dot_product_attention` call pattern on tensors
laid out (B, H, S, D), with grouped-query attention (Hq a multiple of Hkv) through
`enable_gqa` so that K and V are never copied to Hq heads. The backend is fixed with
`torch.nn.attention.sdpa_kernel` (flash, efficient, cudnn, math) or left to torch (`auto`);
the backend that really ran is observed once at prepare time and stored in the results.

Shapes, the mask, pass and backend axes, dtypes, and the ops and bytes conventions are
declared in kernels.attention_spec.

What is timed: `fwd` is one forward on inputs that need no grad; `bwd` is
`torch.autograd.grad` of one fixed forward graph (kept with retain_graph) with a fixed grad
output, so no .grad accumulates and every call does the same work; `fwdbwd` is a fresh
forward and that same autograd.grad per call.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode

from bench.devices.base import DeviceFacts, Unsupported
from bench.devices.capabilities import capabilities_of
from kernels import spec
from kernels.attention_check import CHECK_SCORES, compare_to_reference
from kernels.attention_spec import (  # noqa: F401  the declared half of the Kernel interface
    BACKENDS,
    MASKS,
    MODELS,
    PASSES,
    SPEC,
    TOKENS_PER_STEP,
    bytes_moved,
    forward_ops,
    make_case,
    ops,
    ops_convention,
    parse_shape,
    visible_pairs,
)
from kernels.attention_spec import causal as _causal
from kernels.attention_spec import elements as _elements
from kernels.attention_spec import has_backward as _has_backward
from kernels.base import Correctness, Prepared
from kernels.case import Case

NAME = SPEC.name
DTYPES = SPEC.dtypes
INITS = spec.INITS

_STORAGE = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# torch's SDPBackend member of each --backend value (cuDNN's exists from torch 2.4 on).
_SDP_NAMES = {
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
    "cudnn": "CUDNN_ATTENTION",
    "math": "MATH",
}


def sdp_backends(backend: str) -> list[SDPBackend]:
    """The SDPBackend list to enable; `auto` enables all four and lets torch choose."""
    names = list(_SDP_NAMES) if backend == "auto" else [backend]
    found = [getattr(SDPBackend, _SDP_NAMES[n], None) for n in names]
    if not any(found):
        raise Unsupported(f"this torch ({torch.__version__}) has no {backend} SDPA backend")
    return [b for b in found if b is not None]


# Fused aten operators and the backend each belongs to (backward ops end in "_backward").
_FUSED_OPS = {
    "_scaled_dot_product_flash_attention": "flash",
    "_scaled_dot_product_flash_attention_for_cpu": "flash",
    "_scaled_dot_product_efficient_attention": "efficient",
    "_scaled_dot_product_cudnn_attention": "cudnn",
    "_scaled_dot_product_fused_attention_overrideable": "overrideable",
}
_MATH_OPS = ("bmm", "_softmax", "_safe_softmax")
_HOW = (
    "aten operators dispatched below autograd during one untimed call at prepare time; "
    "math = no fused SDPA operator, bmm and softmax instead"
)


def memory_bytes(case: Case) -> int:
    """Inputs, outputs, grads, the math backend's score matrices, and the check's reference."""
    p = case.params
    item = _STORAGE[case.dtype].itemsize
    q, kv = _elements(case)
    total = bytes_moved(case) + 4 * p["b"] * p["hq"] * p["sq"]  # + logsumexp
    if _has_backward(case):
        total += (q + 2 * kv) * item  # the fixed forward's saved inputs
    if p["backend"] == "math":
        scores = p["b"] * p["hq"] * p["sq"] * p["skv"]
        total += scores * 4 * (5 if _has_backward(case) else 2)
        total += 2 * p["b"] * p["hq"] * p["skv"] * p["d"] * item * (2 if _has_backward(case) else 1)
    g = p["hq"] // p["hkv"]
    total += 6 * 4 * min(g * p["sq"] * p["skv"], CHECK_SCORES)
    total += 4 * (4 * g * p["sq"] * p["d"] + 4 * p["skv"] * p["d"])
    return total


def math_mode(case: Case) -> str:
    """The tensor-core matmul peak of the dtype; fp32 runs with TF32 off (the fp32 peak)."""
    return case.dtype


@contextlib.contextmanager
def precision(case: Case) -> Iterator[None]:
    """TF32 off, and only the case's SDPA backends enabled; both restored afterwards.

    The backend flags are set here, around check and timing, rather than in every timed
    call: entering sdpa_kernel costs about 15 us of host time, which would be measured.
    """
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with sdpa_kernel(sdp_backends(case.params["backend"])):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def _torch_has_gqa() -> bool:
    major, minor = (int(x) for x in re.findall(r"\d+", torch.__version__)[:2])
    return (major, minor) >= (2, 5)


def unsupported_reason(case: Case, facts: DeviceFacts) -> str | None:
    """What is known without trying; everything else torch itself decides in prepare()."""
    p, backend = case.params, case.params["backend"]
    if backend != "auto" and getattr(SDPBackend, _SDP_NAMES[backend], None) is None:
        return f"this torch ({torch.__version__}) has no {backend} SDPA backend"
    if p["hq"] != p["hkv"] and not _torch_has_gqa():
        return (
            f"grouped-query attention needs torch >= 2.5 (enable_gqa); this is {torch.__version__}"
        )
    missing = capabilities_of(facts.identity).sdpa_missing
    if backend in missing:
        return missing[backend]
    return None


class _OpRecorder(TorchDispatchMode):
    """Names of the SDPA-relevant aten operators that run below autograd, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func.overloadpacket.__name__
        base = name.removesuffix("_backward")
        if (base in _FUSED_OPS or name in _MATH_OPS) and name not in self.names:
            self.names.append(name)
        return func(*args, **(kwargs or {}))


def backend_of(op_names: list[str]) -> str:
    """The backend a list of observed operator names shows; "unknown" if it shows none."""
    fused = {_FUSED_OPS[n.removesuffix("_backward")] for n in op_names if n not in _MATH_OPS}
    if len(fused) == 1:
        return fused.pop()
    if len(fused) > 1:
        return "mixed:" + "+".join(sorted(fused))
    return "math" if "bmm" in op_names else "unknown"


_TRIGGERED = re.compile(r"\s*\(Triggered internally at .*\)\s*$", re.DOTALL)
_SECTIONS = {
    "flash": "flash attention kernel not used because",
    "efficient": "memory efficient kernel not used because",
    "cudnn": "cudnn attention kernel not used because",
}


def torch_reasons(backend: str, messages: list[str]) -> str:
    """torch's own reasons why `backend` could not run, from the warnings it printed.

    On CUDA, when no enabled backend fits, torch warns "<X> kernel not used because:"
    followed by one warning per failed constraint, for every backend, then raises. Only
    the section of the requested backend is kept (the others only say they were disabled).
    """
    cleaned = [_TRIGGERED.sub("", m).strip() for m in messages]
    sections: dict[str, list[str]] = {}
    current = None
    for message in cleaned:
        low = message.lower()
        header = next((b for b, h in _SECTIONS.items() if low.startswith(h)), None)
        if header is not None:
            current = header
            sections.setdefault(header, [])
        elif current is not None:
            sections[current].append(message)
    picked = sections.get(backend) or (cleaned if not sections else [])
    return "; ".join(dict.fromkeys(m for m in picked if m))


def _no_kernel(exc: RuntimeError) -> bool:
    text = str(exc).lower()
    return "no available kernel" in text or "no viable backend" in text


def _observe(backend: str, fn: Callable[[], Any]) -> tuple[Any, list[str], list[str]]:
    """Call fn once; return its value, the SDPA operators it ran and torch's warnings.

    Raises Unsupported, with torch's reasons, when torch has no kernel for the request.
    """
    recorder = _OpRecorder()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with recorder:
                value = fn()
        except RuntimeError as exc:
            if not _no_kernel(exc):
                raise
            messages = [str(w.message) for w in caught]
            why = torch_reasons(backend, messages) or str(exc).strip().splitlines()[0]
            raise Unsupported(f"torch has no {backend} SDPA kernel for this case: {why}") from None
    notes = list(dict.fromkeys(_TRIGGERED.sub("", str(w.message)).strip() for w in caught))
    return value, recorder.names, notes[:5]


def _inputs(case: Case, device: Any) -> tuple[torch.Tensor, ...]:
    """Seeded Q, K, V and a grad output dO, each (B, H, S, D) in the case's dtype."""
    p, init = case.params, case.params["init"]
    gen = torch.Generator(device=device).manual_seed(p["seed"])
    shapes = [
        (p["b"], p["hq"], p["sq"], p["d"]),
        (p["b"], p["hkv"], p["skv"], p["d"]),
        (p["b"], p["hkv"], p["skv"], p["d"]),
        (p["b"], p["hq"], p["sq"], p["d"]),
    ]
    out = []
    for shape in shapes:
        if init == "zeros":
            base = torch.zeros(shape, device=device)
        elif init == "ones":
            base = torch.ones(shape, device=device)
        else:
            base = torch.randn(shape, generator=gen, device=device)
        out.append(base.to(_STORAGE[case.dtype]))
    return tuple(out)


def _sdpa(case: Case) -> Callable[..., torch.Tensor]:
    """The one SDPA call of this case, as a function of (q, k, v)."""
    p = case.params
    causal = _causal(case)
    if p["hq"] == p["hkv"]:
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, is_causal=causal, enable_gqa=True
    )


Results = tuple[torch.Tensor | None, tuple[torch.Tensor, ...] | None]  # (out, (dq, dk, dv))


@dataclass(frozen=True)
class _Bound:
    """The timed call, a way to get its outputs for the check, and what the probe saw."""

    run: Callable[[], object]
    results: Callable[[], Results]
    op_names: list[str]
    notes: list[str]


def _bind(
    case: Case, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dout: torch.Tensor
) -> _Bound:
    """Bind the case's pass; its first call is the probe, made under the operator recorder.

    The probe is where torch picks (or fails to find) a kernel; for `bwd` it also builds the
    one forward graph whose backward every timed call repeats.
    """
    call, backend, mode = _sdpa(case), case.params["backend"], case.params["pass"]
    if mode == "fwd":
        _, names, notes = _observe(backend, lambda: call(q, k, v))

        def run_fwd() -> torch.Tensor:
            return call(q, k, v)

        return _Bound(run_fwd, lambda: (run_fwd(), None), names, notes)
    leaves = tuple(t.detach().requires_grad_() for t in (q, k, v))
    if mode == "bwd":

        def first() -> torch.Tensor:
            out = call(*leaves)
            torch.autograd.grad(out, leaves, dout, retain_graph=True)
            return out

        out, names, notes = _observe(backend, first)

        def run_bwd() -> tuple[torch.Tensor, ...]:
            return torch.autograd.grad(out, leaves, dout, retain_graph=True)

        return _Bound(run_bwd, lambda: (out.detach(), run_bwd()), names, notes)

    def run_fwdbwd() -> tuple[torch.Tensor, ...]:
        out = call(*leaves)
        return (out.detach(), *torch.autograd.grad(out, leaves, dout))

    _, names, notes = _observe(backend, run_fwdbwd)

    def results() -> Results:
        out, *grads = run_fwdbwd()
        return out, tuple(grads)

    return _Bound(run_fwdbwd, results, names, notes)


def _details(case: Case, names: list[str], notes: list[str], device: Any) -> dict[str, Any]:
    requested, ran = case.params["backend"], backend_of(names)
    details: dict[str, Any] = {
        "sdpa_backend": ran,
        "sdpa_backend_requested": requested,
        "sdpa_ops": [f"aten::{n}" for n in names],
        "sdpa_backend_how": _HOW,
        "enable_gqa": case.params["hq"] != case.params["hkv"],
    }
    if torch.device(device).type == "cpu" and ran == "flash":
        details["sdpa_backend_note"] = "torch's CPU flash-attention kernel, not FlashAttention-2"
    if notes:
        details["torch_warnings"] = notes
    return details


def prepare(case: Case, device: Any) -> Prepared:
    """Seeded inputs on device, the bound call, and the backend that really ran.

    Must run inside precision(case), which enables only the requested backend.
    """
    q, k, v, dout = _inputs(case, device)
    bound = _bind(case, q, k, v, dout)
    details = _details(case, bound.op_names, bound.notes, device)
    requested = case.params["backend"]
    if requested != "auto" and details["sdpa_backend"] != requested:
        raise RuntimeError(
            f"asked for the {requested} SDPA backend but {details['sdpa_backend']} ran "
            f"({', '.join(bound.op_names) or 'no operator seen'})"
        )

    def check() -> Correctness:
        out, grads = bound.results()
        return compare_to_reference(
            q, k, v, dout, out, grads, causal=_causal(case), dtype=case.dtype
        )

    return Prepared(run=bound.run, check=check, details=details)
