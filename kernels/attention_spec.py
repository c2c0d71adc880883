"""The attention kernel's declaration (kernels.attention runs it): shapes, axes, ops, bytes.

Conventions (FlashAttention's benchmarks): forward ops = 4*B*Hq*D*P, P = the (query, key)
pairs the applied mask leaves visible for one batch element and head, counted exactly.
torch's `is_causal` is top-left aligned (query i sees keys 0..i, also when Sq != Skv), so
P = sum over i < Sq of min(i + 1, Skv). Backward = 2.5 x forward (the two forward matmuls'
gradients, 4 matmuls, plus the recompute of QK^T), forward+backward = 3.5 x. Softmax is not
counted. bytes: Q, K, V and O once each, and for a pass with a backward also dO, dQ, dK and
dV once each. Torch-free: see kernels.spec.
"""

from __future__ import annotations

import re
from typing import Any

from kernels.case import Case
from kernels.spec import Axis, AxisError, KernelSpec, check_init
from kernels.spec import option as _option

NAME = "attention"
ITEM_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}  # the keys are the attention dtypes
DTYPES = tuple(ITEM_BYTES)
MASK = _option("mask", ("none", "causal"), "none", "attention masks, comma-separated: none,causal")
PASS = _option("pass", ("fwd", "bwd", "fwdbwd"), "fwd", "attention passes: fwd,bwd,fwdbwd")
BACKEND = _option(
    "backend",
    ("auto", "flash", "efficient", "cudnn", "math"),
    "auto",
    "SDPA backends: auto,flash,efficient,cudnn,math",
)
MASKS, PASSES, BACKENDS = MASK.choices, PASS.choices, BACKEND.choices

# Model presets for `MODEL:S`: (query heads, kv heads, head dim), from each model's
# published config. The batch is TOKENS_PER_STEP // S, as FlashAttention's benchmarks do,
# so every sequence length does the same number of tokens per step.
MODELS: dict[str, tuple[int, int, int]] = {
    "llama3.2-1b": (32, 8, 64),
    "llama3-8b": (32, 8, 128),
    "llama3-70b": (64, 8, 128),
    "gemma2-9b": (16, 8, 256),
}
TOKENS_PER_STEP = 16384

_INT = re.compile(r"\s*(-?\d+)\s*")
_MODEL_ITEM = re.compile(r"\s*([A-Za-z0-9.\-]+)\s*:\s*(\d+)\s*([kK]?)\s*")
_ARITY = "B,Hq,Hkv,S,D or B,Hq,Hkv,Sq,Skv,D (positive integers) or MODEL:S (e.g. llama3-8b:4096)"


def parse_shape(text: str) -> dict[str, int]:
    """{"b", "hq", "hkv", "sq", "skv", "d"} from one shape item; AxisError otherwise."""
    if ":" in text:
        return _parse_model(text)
    matches = [_INT.fullmatch(part) for part in text.split(",")]
    if len(matches) not in (5, 6) or any(m is None for m in matches):
        raise AxisError(f"shape {text!r} is not {_ARITY}")
    values = [int(m.group(1)) for m in matches if m is not None]
    if min(values) <= 0:
        raise AxisError(f"shape {text!r}: every dimension must be positive")
    if len(values) == 5:
        b, hq, hkv, s, d = values
        sq = skv = s
    else:
        b, hq, hkv, sq, skv, d = values
    if hq % hkv:
        raise AxisError(
            f"shape {text!r}: Hq={hq} is not a multiple of Hkv={hkv} "
            "(grouped-query attention shares each kv head among whole groups of query heads)"
        )
    return {"b": b, "hq": hq, "hkv": hkv, "sq": sq, "skv": skv, "d": d}


def _parse_model(text: str) -> dict[str, int]:
    match = _MODEL_ITEM.fullmatch(text)
    if match is None:
        raise AxisError(f"shape {text!r} is not {_ARITY}")
    model, digits, kilo = match.groups()
    if model.lower() not in MODELS:
        raise AxisError(f"shape {text!r}: unknown model {model!r}; presets: {', '.join(MODELS)}")
    s = int(digits) * (1024 if kilo else 1)
    if s <= 0:
        raise AxisError(f"shape {text!r}: the sequence length must be positive")
    hq, hkv, d = MODELS[model.lower()]
    return {"b": max(1, TOKENS_PER_STEP // s), "hq": hq, "hkv": hkv, "sq": s, "skv": s, "d": d}


def make_case(
    shape: dict[str, int],
    dtype: str,
    device: str,
    init: str = "randn",
    seed: int = 0,
    options: dict[str, str] | None = None,
) -> Case:
    """A Case; `options` picks mask, pass and backend (defaults: none, fwd, auto)."""
    chosen = SPEC.choose(dtype, options)
    check_init(init)
    dims = {key: shape[key] for key in ("b", "hq", "hkv", "sq", "skv", "d")}
    params = {
        **dims,
        **chosen,
        "shape_label": f"{_dims_label(dims)} {chosen['mask']} {chosen['pass']} {chosen['backend']}",
        "layout": "BHSD",
        "init": init,
        "seed": seed,
    }
    return Case(kernel=NAME, params=params, dtype=dtype, device=device)


def _dims_label(p: dict[str, Any]) -> str:
    """B x Hq x Hkv x S x D, with Sq x Skv when they differ (the order of --attn)."""
    seqs = [p["sq"]] if p["sq"] == p["skv"] else [p["sq"], p["skv"]]
    return "x".join(str(x) for x in (p["b"], p["hq"], p["hkv"], *seqs, p["d"]))


def visible_pairs(sq: int, skv: int, causal: bool) -> int:
    """(query, key) pairs the mask leaves visible; torch's is_causal is top-left aligned."""
    if not causal:
        return sq * skv
    if sq <= skv:
        return sq * (sq + 1) // 2
    return skv * (skv + 1) // 2 + (sq - skv) * skv


_PASS_FACTOR_HALVES = {"fwd": 2, "bwd": 5, "fwdbwd": 7}  # 1x, 2.5x, 3.5x the forward


def forward_ops(case: Case) -> int:
    p = case.params
    return 4 * p["b"] * p["hq"] * p["d"] * visible_pairs(p["sq"], p["skv"], causal(case))


def ops(case: Case) -> int:
    return forward_ops(case) * _PASS_FACTOR_HALVES[case.params["pass"]] // 2


def ops_convention(case: Case) -> str:
    factor = {"fwd": "fwd", "bwd": "bwd = 2.5 x fwd", "fwdbwd": "fwd+bwd = 3.5 x fwd"}
    return (
        f"FlashAttention convention: {factor[case.params['pass']]}; bwd = 2.5 x fwd incl. "
        "recompute of QK^T; fwd = 4*B*Hq*D*P, P = visible (query, key) pairs per batch "
        "element and head (causal: key j <= query i, top-left aligned); softmax not counted"
    )


def causal(case: Case) -> bool:
    return case.params["mask"] == "causal"


def has_backward(case: Case) -> bool:
    return case.params["pass"] != "fwd"


def elements(case: Case) -> tuple[int, int]:
    """Elements of Q (= O) and of K (= V)."""
    p = case.params
    return p["b"] * p["hq"] * p["sq"] * p["d"], p["b"] * p["hkv"] * p["skv"] * p["d"]


def bytes_moved(case: Case) -> int:
    q, kv = elements(case)
    once = (2 * q + 2 * kv) * ITEM_BYTES[case.dtype]
    return 2 * once if has_backward(case) else once


SPEC = KernelSpec(
    name=NAME,
    module="kernels.attention",
    description=(
        "torch SDPA fwd/bwd/fwdbwd per backend, causal or not, GQA; ops = 4*B*Hq*D*P (fwd)"
    ),
    dtypes=DTYPES,
    shape=Axis(
        "shape",
        "--attn",
        "attention shapes replacing the suite's: B,Hq,Hkv,S,D, B,Hq,Hkv,Sq,Skv,D or "
        "MODEL:S (llama3-8b:4096); ';' between shapes, or repeat the flag",
        "B,Hq,Hkv,S,D",
        parse=parse_shape,
        repeatable=True,
    ),
    options=(MASK, PASS, BACKEND),
    ops=ops,
    bytes_moved=bytes_moved,
    ops_convention=ops_convention,
    make_case=make_case,
)
