"""Pure data parallelism from `flopwatt run --kernel scaling`: E(N) = T_c / (T_c + T_DP(N)).

T_c is the measured step on one rank; the allreduce of the step's gradient is fitted
on the measured 2..n ranks as t(n) = 2(n-1)·alpha + 2(n-1)/n·S/B (a ring inside the node),
then projected with the collective model, the fabric's defaults taking over between nodes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench.projection import collectives as coll
from bench.projection.calibration import CalibrationError


def fit_ring(
    rows: list[dict[str, Any]], size: float, default_alpha: float
) -> tuple[float, float, str]:
    """(alpha per step, busbw, how) from the measured comm times at n >= 2."""
    pts = [(r["n"], r["comm_time_s"]) for r in rows if r["n"] >= 2 and r.get("comm_time_s")]
    if not pts:
        raise CalibrationError(
            "the scaling case has no step on 2 or more ranks; run it with --nproc 2 or more"
        )
    if len({n for n, _ in pts}) == 1:
        n, t = pts[0]
        bw_time = max(t - 2 * (n - 1) * default_alpha, 1e-12)
        return default_alpha, 2 * (n - 1) / n * size / bw_time, "busbw fitted, alpha assumed"
    # least squares without intercept on x1 = 2(n-1), x2 = 2(n-1)/n·S
    a11 = a12 = a22 = b1 = b2 = 0.0
    for n, t in pts:
        x1, x2 = 2 * (n - 1), 2 * (n - 1) / n * size
        a11, a12, a22 = a11 + x1 * x1, a12 + x1 * x2, a22 + x2 * x2
        b1, b2 = b1 + x1 * t, b2 + x2 * t
    det = a11 * a22 - a12 * a12
    alpha = max(0.0, (b1 * a22 - b2 * a12) / det)
    beta = (a11 * b2 - a12 * b1) / det
    if beta <= 0:
        beta = sum(t for _, t in pts) / sum(2 * (n - 1) / n * size for n, _ in pts)
        alpha = 0.0
    return alpha, 1 / beta, "alpha and busbw fitted"


def project_dp(case: dict[str, Any], ns: list[int], fabric: coll.Fabric) -> dict[str, Any]:
    """Measured and projected E(N) of one weak-scaling case; the projection hides none of
    the allreduce behind the matmul."""
    rows = case.get("scaling") or []
    if not rows:
        raise CalibrationError(f"case {case.get('case_id')} has no per-N scaling rows")
    size = float(case["params"]["grad_bytes"])
    t_c = rows[0]["step_time_s"]  # one rank: the step without a bus (its allreduce is a no-op)
    alpha, busbw, how = fit_ring(rows, size, fabric.intra_alpha_s)
    fab = replace(fabric, intra_busbw=busbw, intra_alpha_s=alpha, base_latency_s=0.0)
    projected = []
    for n in sorted(set(ns)):
        choice = coll.allreduce(size, n, fabric.gpus_per_node, fab)
        projected.append(
            {
                "n": n,
                "efficiency": t_c / (t_c + choice.time_s),
                "allreduce_s": choice.time_s,
                "algorithm": choice.algorithm,
                "extrapolated": n > rows[-1]["n"],
            }
        )
    measured = [{"n": r["n"], "efficiency": r.get("efficiency")} for r in rows]
    if case["params"].get("overlap") == "overlap":
        how += "; measured with overlap, projected without it (pessimistic)"
    return {
        "case_id": case.get("case_id"),
        "compute_time_s": t_c,
        "grad_bytes": size,
        "fit": {"alpha_s_per_step": alpha, "busbw": busbw, "how": how},
        "measured": measured,
        "projected": projected,
    }
