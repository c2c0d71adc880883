"""The project handler: load runs, calibrate, check every N, then print and write.

Everything that can be wrong with the input is found before the output folder is touched,
so a bad flag writes nothing (one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.errors import UsageError

DEFAULT_GPUS = "1024,2048,4096,8192,16384"
DEFAULT_HOST_W = 350.0  # CPU, NIC and switch share per GPU: an assumption, printed as such


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: give comma-separated integers, e.g. 1024,2048"
        ) from None
    if not values or min(values) <= 0:
        raise UsageError(f"{flag} {text!r}: every GPU count must be positive")
    return values


def _load(paths: list[Path]) -> list[Any]:
    from bench.results.record import load_run

    runs = []
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                runs.append(load_run(path))
            except (ValueError, OSError) as exc:
                raise UsageError(f"run {path}: {exc}") from None
    return runs


def _model(args: argparse.Namespace) -> Any:
    from bench.projection.models import Model, preset

    dims = ("layers", "hidden", "heads", "seq", "vocab")
    given = {k: getattr(args, k) for k in dims if getattr(args, k) is not None}
    try:
        if args.model:
            return preset(args.model)
        if len(given) < len(dims):
            missing = ", ".join(f"--{k}" for k in dims if k not in given)
            raise UsageError(f"give --model PRESET or the model's dimensions (missing {missing})")
        return Model(
            "custom", **given, ffn=args.ffn or 0, kv_heads=args.kv_heads or 0, gated=args.gated
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _parallel(args: argparse.Namespace) -> Any:
    from bench.projection.iteration import Parallel

    return Parallel(
        tp=args.tp,
        pp=args.pp,
        global_batch=args.global_batch,
        microbatch=args.microbatch,
        vp=args.vp,
        recompute=args.recompute,
        grad_bytes=args.grad_bytes,
        dp_overlap=0.5 if args.dp_overlap is None else args.dp_overlap,
        goodput=args.goodput,
    )


def _user_fabric(args: argparse.Namespace) -> dict[str, Any]:
    gbps = lambda v: None if v is None else v * 1e9  # noqa: E731
    return {
        "gpus_per_node": args.gpus_per_node,
        "nic_bytes_per_s": None if args.nic_gbps is None else args.nic_gbps * 1e9 / 8,
        "eta_net": args.eta,
        "net_alpha_s": None if args.net_latency_us is None else args.net_latency_us * 1e-6,
        "pod_size": args.pod_size,
        "oversubscription": args.oversubscription,
        "nvls_busbw": gbps(args.nvls_gbps),
        "intra_busbw": gbps(args.intra_gbps),
    }


def run_command(args: argparse.Namespace) -> int:
    from bench.projection.calibration import CalibrationError

    ns = _ints(args.gpus, "--gpus")
    runs = _load(args.runs)
    try:
        build = _dp_document if args.mode == "dp" else _model_document
        doc = build(args, runs, ns)
    except CalibrationError as exc:
        raise UsageError(str(exc)) from None
    out: Path = args.out or (args.runs[0] / "projection")
    _write(out, doc, args.no_plots)
    return 0


def _inputs_doc(inputs: list[Any]) -> list[dict[str, Any]]:
    return [asdict(i) for i in inputs]


def _model_document(args: argparse.Namespace, runs: list[Any], ns: list[int]) -> dict[str, Any]:
    from bench.commands.project.text import print_projection
    from bench.projection import setup
    from bench.projection.calibration import Input
    from bench.projection.exports import calculon_system, simai_busbw_yaml
    from bench.projection.from_runs import calibrate
    from bench.projection.iteration import ConfigError
    from bench.projection.project import Power, project

    model = _model(args)
    par = _parallel(args)
    cal = calibrate(runs, args.dtype, args.peak)
    mem = None if args.mem_gbps is None else args.mem_gbps * 1e9
    comp = setup.compute(cal, mem)
    fab, fab_inputs = setup.fabric(cal.fits, _user_fabric(args))
    power = Power(cal.gpu_power_w, args.host_w_per_gpu, args.pue, args.usd_per_kwh)
    try:
        result = project(ns, model, par, comp, fab, cal.max_world_size, power)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    host_source = "user" if args.host_w_per_gpu != DEFAULT_HOST_W else "assumed"
    assumptions = [
        Input(
            "host_w_per_gpu",
            args.host_w_per_gpu,
            host_source,
            "CPU, NIC and switch share per GPU; NVML sees only the board",
        ),
        Input(
            "dp_overlap",
            par.dp_overlap,
            "assumed" if args.dp_overlap is None else "user",
            "share of the DP allreduce hidden behind the drain's backward",
        ),
        Input(
            "goodput",
            par.goodput,
            "user" if args.goodput != 1.0 else "assumed",
            "1.0: failures and restarts not modelled",
        ),
        Input(
            "grad_bytes",
            par.grad_bytes,
            "user" if args.grad_bytes != 2 else "assumed",
            "bytes per gradient element all-reduced",
        ),
        Input(
            "mem_bytes_per_s",
            mem,
            "user" if mem else "assumed",
            "HBM rate for elementwise ops"
            if mem
            else "elementwise ops not modelled (give --mem-gbps)",
        ),
        Input(
            "pue",
            args.pue,
            "user" if args.pue else "assumed",
            "" if args.pue else "1.0: power at the IT load",
        ),
    ]
    inputs = cal.inputs + fab_inputs + assumptions
    doc = {
        "kind": "flopwatt projection",
        "mode": "model",
        "model": asdict(model) | {"params": model.params},
        "parallel": asdict(par),
        "gpus": sorted(set(ns)),
        "dtype": cal.dtype,
        "peak_ops_per_s": cal.peak_ops_per_s,
        "measured_max_world_size": cal.max_world_size,
        "measured_max_nodes": cal.max_nodes,
        "extrapolated": any(r["extrapolated"] for r in result["rows"]),
        "inputs": _inputs_doc(inputs),
        "collective_fits": [asdict(f) for f in cal.fits],
        **result,
        "exports": {
            "calculon_system.json": calculon_system(cal, fab, mem),
            "busbw.yaml": simai_busbw_yaml(fab),
        },
        "runs": [str(p) for p in args.runs],
    }
    print_projection(doc)
    return doc


def _dp_document(args: argparse.Namespace, runs: list[Any], ns: list[int]) -> dict[str, Any]:
    from bench.commands.project.text import print_dp
    from bench.projection import setup
    from bench.projection.calibration import CalibrationError
    from bench.projection.scaling_dp import project_dp
    from bench.results.frame import case_dicts

    cases = [
        c
        for run in runs
        for c in case_dicts(run)
        if c.get("kernel") == "scaling"
        and c.get("status") == "ok"
        and c["params"].get("scaling", "weak") == "weak"  # fixed work per rank: T_c holds
    ]
    if not cases:
        raise CalibrationError(
            "--mode dp needs a weak-scaling case: flopwatt run --kernel scaling --nproc 2 "
            "--scaling weak --step 1024x1024x1024/64Mi"
        )
    fab, inputs = setup.fabric([], _user_fabric(args))
    curves = [project_dp(c, ns, fab) for c in cases]
    doc = {
        "kind": "flopwatt projection",
        "mode": "dp",
        "gpus": sorted(set(ns)),
        "inputs": _inputs_doc(inputs),
        "curves": curves,
        "extrapolated": any(p["extrapolated"] for c in curves for p in c["projected"]),
        "runs": [str(p) for p in args.runs],
    }
    print_dp(doc)
    return doc


def _write(out: Path, doc: dict[str, Any], no_plots: bool) -> None:
    from bench.commands.project.plot import plot_png

    exports = doc.pop("exports", {})
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "projection.json").write_text(
            json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n"
        )
        for name, content in exports.items():
            text = content if isinstance(content, str) else json.dumps(content, indent=2) + "\n"
            (out / name).write_text(text)
        if not no_plots:
            (out / "projection.png").write_bytes(plot_png(doc))
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write ({exc.strerror})") from None
    print(f"projection -> {out / 'projection.json'}")
