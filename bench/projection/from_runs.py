"""Calibration from loaded run folders: which cases feed which constant.

matmul cases give the compute table and the peak, attention cases the attention table (the
matmul table stands in, labelled, when none was measured), allreduce cases the intra-node
collective fits, the best matmul case's board power the GPU's watts.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.projection.calibration import (
    Calibration,
    CalibrationError,
    Fit,
    Input,
    fit,
    fit_inter_node,
    table,
)
from bench.results.frame import case_dicts
from bench.results.record import Run

PREFERRED_DTYPES = ("bf16", "fp16", "fp8", "tf32", "fp32")
MEASURE_MATMUL = (
    "flopwatt run --kernel matmul --dtype bf16 --shape 1024x1024x1024,4096x4096x4096 "
    "(several shapes: the efficiency table is interpolated between them)"
)


def _ok(cases: list[dict[str, Any]], kernel: str) -> list[dict[str, Any]]:
    return [
        c
        for c in cases
        if c.get("kernel") == kernel and c.get("status") == "ok" and c.get("achieved_ops_per_s")
    ]


def _nodes(run: Run) -> int:
    hosts = {r.get("host") for r in run.meta.get("ranks") or [] if isinstance(r, dict)}
    return max(1, len(hosts - {None}))


def calibrate(runs: list[Run], dtype: str | None = None, peak: float | None = None) -> Calibration:
    """The model's constants from runs; CalibrationError says what is missing."""
    cases = [(run, c) for run in runs for c in case_dicts(run)]
    matmuls = [c for _, c in cases if c in _ok([c], "matmul")]
    if not matmuls:
        raise CalibrationError(
            f"no finished matmul case in {', '.join(str(r.path) for r in runs)}; "
            f"measure: {MEASURE_MATMUL}"
        )
    dtypes = {c["dtype"] for c in matmuls}
    if dtype is None:
        dtype = next((d for d in PREFERRED_DTYPES if d in dtypes), sorted(dtypes)[0])
    if dtype not in dtypes:
        raise CalibrationError(f"no matmul case in {dtype}; measured: {', '.join(sorted(dtypes))}")
    chosen = [c for c in matmuls if c["dtype"] == dtype]
    inputs: list[Input] = []
    if peak is None:
        peaks = [c.get("peak_ops_per_s") for c in chosen if c.get("peak_ops_per_s")]
        if not peaks:
            raise CalibrationError(f"the {dtype} matmul cases have no peak; give --peak OPS_PER_S")
        peak = max(peaks)
        source = next(c.get("peak_source") for c in chosen if c.get("peak_ops_per_s") == peak)
        inputs.append(
            Input(
                "peak_ops_per_s",
                peak,
                "measured" if source == "derived" else "assumed",
                f"{dtype} peak, {source}: MFU's denominator",
            )
        )
    else:
        inputs.append(Input("peak_ops_per_s", peak, "user", f"{dtype} peak from --peak"))
    ceilings = [
        c.get("measured_peak_ops_per_s") for c in chosen if c.get("measured_peak_ops_per_s")
    ]
    ceiling = max(ceilings) if ceilings else None
    mm = table([(c["ops"], c["achieved_ops_per_s"]) for c in chosen], peak, ceiling)
    inputs.append(
        Input(
            "matmul_efficiency",
            [list(p) for p in mm.points],
            "measured",
            f"{len(chosen)} {dtype} matmul cases; top {mm.top:.3f} of peak ("
            + ("stored ceiling" if ceiling else "best measured case")
            + ")",
        )
    )
    attn_cases = [c for c in _ok([c for _, c in cases], "attention") if c["dtype"] == dtype]
    if attn_cases:
        at = table([(c["ops"], c["achieved_ops_per_s"]) for c in attn_cases], peak, None)
        inputs.append(
            Input(
                "attention_efficiency",
                [list(p) for p in at.points],
                "measured",
                f"{len(attn_cases)} {dtype} attention cases",
            )
        )
    else:
        at = mm
        inputs.append(
            Input(
                "attention_efficiency",
                None,
                "assumed",
                "no attention case measured: the matmul table stands in "
                "(flopwatt run --kernel attention)",
            )
        )
    best = max(chosen, key=lambda c: c["achieved_ops_per_s"])
    power = best.get("avg_power_w")
    how = best.get("energy_source")
    label = "measured" if power and how != "estimate" else "assumed"
    detail = (
        f"{how} during {best.get('params', {}).get('shape_label')}"
        if power
        else "no energy measured for the best matmul case: no power, energy or cost"
    )
    inputs.append(Input("gpu_power_w", power, label, detail))
    cal = Calibration(dtype, peak, mm, at, gpu_power_w=power, inputs=inputs)
    cal.fits = _collective_fits(runs, cal)
    cal.max_world_size = max([1, *(c.get("world_size") or 1 for _, c in cases)])
    cal.max_nodes = max(_nodes(run) for run in runs)
    return cal


def _collective_fits(runs: list[Run], cal: Calibration) -> list[Fit]:
    groups: dict[tuple[str, int, int], list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        nodes = _nodes(run)
        for c in case_dicts(run):
            if c.get("kernel") != "allreduce" or c.get("status") != "ok" or not c.get("bytes"):
                continue
            n, t = c.get("world_size") or 1, c.get("time_median_s")
            collective = c["params"].get("collective", "allreduce")
            if n > 1 and t and collective in ("allreduce", "allgather", "reduce_scatter"):
                groups[(collective, n, nodes)].append((float(c["bytes"]), float(t)))
    fits = []
    for (collective, n, nodes), points in sorted(groups.items()):
        sizes, times = zip(*sorted(points), strict=True)
        try:
            f = (
                fit_inter_node(collective, n, sizes, times, nodes)
                if nodes > 1
                else fit(collective, n, sizes, times)
            )
        except CalibrationError as exc:
            cal.inputs.append(Input(f"{collective}_n{n}_fit", None, "assumed", str(exc)))
            continue
        fits.append(f)
    return fits
