"""The attention check: a kernel's output and gradients against fp32 math SDPA.

The reference runs torch's math backend in fp32 on a slice of the case (one batch element
and one kv head with its whole group of query heads, at the first and at the last index),
in blocks of query rows so that its score matrices stay small even at 16k tokens: rows of
attention are independent, and dK, dV are sums over query rows. Causal blocks get the
explicit top-left mask (key j visible to query i iff j <= i), which is what torch's
is_causal applies (tests/test_attention.py checks that equivalence).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from kernels.base import Correctness

# fp32 score elements per reference block (64 MiB per score-sized temporary).
CHECK_SCORES = 1 << 24

# Largest normwise relative error of out, dQ, dK and dV against the fp32 reference: about
# four times the worst seen from torch's fused CPU kernel (bf16 7e-3, fp16 9e-4, fp32 7e-7,
# gradients worst; fused kernels also round the softmax probabilities to the input dtype
# before P @ V). fp32 stays tight enough that a kernel silently computing in TF32 (about
# 3e-4) fails it.
TOLERANCE = {"fp32": 1e-4, "bf16": 3e-2, "fp16": 4e-3}


def _rel_error(value: torch.Tensor, ref: torch.Tensor) -> float:
    diff = float(torch.linalg.vector_norm(value.detach().to(torch.float64) - ref.double()))
    scale = float(torch.linalg.vector_norm(ref.double()))
    return diff / scale if scale > 0 else diff


def causal_rows_mask(r0: int, r1: int, skv: int, device: torch.device) -> torch.Tensor:
    """Rows r0..r1-1 of torch's is_causal mask (True = visible): key j <= query i."""
    rows = torch.arange(r0, r1, device=device)[:, None]
    return torch.arange(skv, device=device)[None, :] <= rows


def reference_slice(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dout: torch.Tensor | None,
    causal: bool,
    batch: int,
    kv_head: int,
    block_scores: int = CHECK_SCORES,
) -> dict[str, torch.Tensor]:
    """fp32 math-SDPA out (and dq, dk, dv with dout) for one batch element and kv group,
    in blocks of query rows of at most block_scores score elements (at least one row)."""
    g, sq, skv = q.shape[1] // k.shape[1], q.shape[2], k.shape[2]
    heads = slice(kv_head * g, (kv_head + 1) * g)
    ks = k[batch, kv_head].detach().float().requires_grad_(dout is not None)
    vs = v[batch, kv_head].detach().float().requires_grad_(dout is not None)
    rows = max(1, block_scores // (g * skv))
    outs, dqs = [], []
    dk, dv = torch.zeros_like(ks), torch.zeros_like(vs)
    with sdpa_kernel(SDPBackend.MATH):
        for r0 in range(0, sq, rows):
            r1 = min(sq, r0 + rows)
            qc = q[batch, heads, r0:r1].detach().float().requires_grad_(dout is not None)
            mask = causal_rows_mask(r0, r1, skv, q.device) if causal else None
            # K and V broadcast to the g query heads as views: the reference never relies
            # on enable_gqa, the feature under test.
            out = F.scaled_dot_product_attention(
                qc, ks.expand(g, skv, -1), vs.expand(g, skv, -1), attn_mask=mask
            )
            outs.append(out.detach())
            if dout is not None:
                grad = dout[batch, heads, r0:r1].float()
                gq, gk, gv = torch.autograd.grad(out, (qc, ks, vs), grad)
                dqs.append(gq)
                dk += gk
                dv += gv
    result = {"out": torch.cat(outs, dim=1)}
    if dout is not None:
        result.update(dq=torch.cat(dqs, dim=1), dk=dk, dv=dv)
    return result


def checked_slices(batch: int, kv_heads: int) -> list[tuple[int, int]]:
    """The first and the last (batch element, kv head): an indexing bug shows in one."""
    return list(dict.fromkeys([(0, 0), (batch - 1, kv_heads - 1)]))


def compare_to_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dout: torch.Tensor,
    out: torch.Tensor | None,
    grads: tuple[torch.Tensor, ...] | None,
    causal: bool,
    dtype: str,
    block_scores: int = CHECK_SCORES,
) -> Correctness:
    """Worst normwise relative error of what the kernel produced, over the checked slices."""
    g = q.shape[1] // k.shape[1]
    errors: dict[str, float] = {}
    for batch, kv in checked_slices(q.shape[0], k.shape[1]):
        grad = dout if grads is not None else None
        ref = reference_slice(q, k, v, grad, causal, batch, kv, block_scores)
        heads = slice(kv * g, (kv + 1) * g)
        got: dict[str, torch.Tensor] = {}
        if out is not None:
            got["out"] = out[batch, heads]
        if grads is not None:
            dq, dk, dv = grads
            got.update(dq=dq[batch, heads], dk=dk[batch, kv], dv=dv[batch, kv])
        for name, value in got.items():
            errors[name] = max(errors.get(name, 0.0), _rel_error(value, ref[name]))
    worst = max(errors, key=errors.__getitem__)
    tol = TOLERANCE[dtype]
    slices = ", ".join(f"b{b}/kv{h}" for b, h in checked_slices(q.shape[0], k.shape[1]))
    metric = (
        f"max normwise relative error of {', '.join(errors)} vs fp32 math SDPA on {slices} "
        f"({g} query heads each); worst: {worst}"
    )
    return Correctness(ok=errors[worst] <= tol, metric=metric, error=errors[worst], tolerance=tol)
