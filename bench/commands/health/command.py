"""`flopwatt health`: one rank per device, and rank 0's run folder, table and exit code.

bench.cli parses the arguments. Module level imports only the standard library.

Devices: `--device all` (the default) is every CUDA device torch sees, or the CPU where
there is none; `cuda:0,cuda:2` names some. With several devices and no launcher, the check
starts one rank per device through torch's elastic launcher (as `--nproc N` does), so that
every GPU works at the same time; the launching process then reads the run folder and
exits with its verdict. Under torchrun or srun each rank takes the device of its local rank.

Exit codes: 0 when nothing FAILed (PASS, WARN, N/A), 1 when a check FAILed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.commands.health.model import EXIT_FAIL, exit_code
from bench.errors import UsageError, check_writable


def resolve_devices(spec: str) -> list[str]:
    """The devices a --device value names, checked; UsageError otherwise."""
    from bench.devices import parse_device

    text = spec.strip().lower()
    if text in ("all", "auto", "cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 and text == "cuda":
            raise UsageError("--device cuda: no CUDA device is visible; use --device cpu or all")
        return [f"cuda:{i}" for i in range(count)] or ["cpu"]
    devices = [item.strip() for item in text.split(",")]
    kinds = {parse_device(d)[0] for d in devices}
    if "auto" in kinds or ("cpu" in kinds and len(devices) > 1):
        raise UsageError(f"--device {spec!r}: all, cpu, or a list of cuda:N")
    if len(set(devices)) != len(devices):
        raise UsageError(f"--device {spec!r} names a device twice")
    return devices


def device_for(devices: list[str], local_rank: int) -> str:
    if devices == ["cpu"]:
        return "cpu"
    if local_rank >= len(devices):
        raise UsageError(f"local rank {local_rank} has no device: --device gives {len(devices)}")
    return devices[local_rank]


def _options(args: argparse.Namespace, kind: str) -> Any:
    from bench.commands.health.model import Thresholds
    from bench.commands.health.noise import spread_floor
    from bench.commands.health.run import Options

    try:
        thresholds = Thresholds(
            args.peer_warn,
            args.peer_fail,
            args.baseline_min,
            args.temp_warn_c,
            spread_floor=spread_floor(kind),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Options(
        settings=_settings(args, kind),
        thresholds=thresholds,
        baseline=args.baseline,
        baselines_root=args.baselines,
        flip_rank=args.canary_flip_rank,
        expect_gpus=args.expect_gpus,
        limit_s=args.collective_timeout_s,
    )


def _settings(args: argparse.Namespace, kind: str) -> Any:
    """The probe's default settings for this kind of device, sized as the flags ask."""
    from bench.commands.health.probe import default_settings, sized

    shape, copy = None, None
    from kernels.spec import AxisError

    if args.shape is not None:
        from kernels.matmul_spec import parse_shape

        try:
            dims = parse_shape(args.shape)
        except AxisError as exc:
            raise UsageError(f"--shape: {exc}") from None
        shape = (dims["m"], dims["n"], dims["k"])
    if args.copy_bytes is not None:
        from kernels.allreduce_spec import parse_size

        try:
            copy = parse_size(args.copy_bytes)
        except AxisError as exc:
            raise UsageError(f"--copy-bytes: {exc}") from None
        if copy < 4:
            raise UsageError(f"--copy-bytes {args.copy_bytes!r}: at least 4 (one fp32 element)")
    try:
        return sized(default_settings(kind), shape, copy, args.repeats, args.timeout_s)
    except ValueError as exc:
        raise UsageError(f"health: {exc}") from None


def _check_input(args: argparse.Namespace) -> None:
    if args.baseline != "auto":
        path = Path(args.baseline)
        if not (path / "run.json").is_file() or not (path / "cases.jsonl").is_file():
            raise UsageError(f"--baseline {path}: not a run folder (needs run.json, cases.jsonl)")
    if not args.peer_warn <= args.peer_fail:
        raise UsageError("--peer-warn must not be above --peer-fail")
    _settings(args, "cpu")  # the sizing flags, checked before a device or rank starts


def run_command(args: argparse.Namespace) -> int:
    from bench.execution.ranks import context_from_env

    _check_input(args)
    devices = resolve_devices(args.device)
    try:
        ctx = context_from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not ctx.distributed:
        nproc = args.nproc or (len(devices) if len(devices) > 1 else None)
        if nproc is not None and nproc > 1:
            if devices != ["cpu"] and nproc > len(devices):
                raise UsageError(f"--nproc {nproc}: --device gives only {len(devices)} devices")
            return _spawn(args, nproc)
    return _check(args, ctx, device_for(devices, ctx.local_rank))


def _spawn(args: argparse.Namespace, nproc: int) -> int:
    """One rank per device under torch's elastic launcher; the verdict from the run folder."""
    import os

    from bench.execution.launch import spawn_local
    from bench.execution.session import new_run_id

    if "RANK" in os.environ:
        raise UsageError("--nproc inside a torchrun/srun job: the launcher already made the ranks")
    check_writable(args.out, "--out")
    run_id = new_run_id()
    code = spawn_local(nproc, [*sys.argv[1:], "--run-id", run_id])
    meta_path = args.out / run_id / "run.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        print(
            f"flopwatt: error: the ranks wrote no run folder (launcher exit {code})",
            file=sys.stderr,
        )
        return max(code, EXIT_FAIL)
    verdict = (meta.get("health") or {}).get("verdict")
    if meta.get("status") != "complete" or verdict is None:
        return max(code, EXIT_FAIL)
    return EXIT_FAIL if verdict == "FAIL" else 0


def _meta(args: argparse.Namespace, backend: Any, job: Any, options: Any) -> dict[str, Any]:
    import socket
    from dataclasses import asdict
    from datetime import datetime, timezone

    from bench.devices.environment import capture_environment
    from bench.execution.session import PROJECT_ROOT, _identity_dict, new_run_id

    facts = backend.facts()
    return {
        "run_id": args.run_id or new_run_id(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["flopwatt", *sys.argv[1:]]),
        "suite": "health",
        "device": backend.label,
        "device_facts": {"identity": _identity_dict(facts.identity), **facts.extra},
        "environment": capture_environment(facts, project_root=PROJECT_ROOT),
        "world_size": job.world_size,
        "launcher": job.ctx.source,
        "host": socket.gethostname(),
        "health_settings": asdict(options.settings),
    }


def _check(args: argparse.Namespace, ctx: Any, device: str) -> int:
    from bench.commands.health.run import check_job, write
    from bench.devices import get_backend
    from bench.execution.job import Job
    from bench.execution.ranks import RankFailure
    from bench.results.record import RunWriter

    try:
        backend = get_backend(device, args.threads)
    except RuntimeError as exc:  # a GPU that cannot even be opened: that is a health FAIL
        print(f"flopwatt: error: cannot open {device}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    try:
        options = _options(args, backend.kind)
        job = Job.open(ctx, backend.kind, args.collective_timeout_s, needs_group=False)
        writer = None
        try:
            started = time.perf_counter()
            if job.is_root:
                check_writable(args.out, "--out")
                meta = _meta(args, backend, job, options)
                writer = RunWriter(args.out / meta["run_id"], meta)
            try:
                outcome = check_job(job, backend, options)
            except (KeyboardInterrupt, RankFailure) as exc:
                if writer is not None:
                    writer.finish(
                        "interrupted" if isinstance(exc, KeyboardInterrupt) else "rank_failure",
                        duration_s=time.perf_counter() - started,
                    )
                raise
            if outcome is None or writer is None:
                return 0
            write(writer, outcome)
            took = time.perf_counter() - started
            writer.finish("complete", duration_s=took)
            _record(args, writer.run_dir)
            _print(args.format, outcome, str(writer.run_dir), took)
            code = exit_code(outcome.rows)
            return 0 if args.run_id else code  # launched: the launching process decides
        finally:
            job.close()
    finally:
        backend.close()


def _record(args: argparse.Namespace, run_dir: Path) -> None:
    """`--history DIR`: rank 0 adds the complete health run to the history."""
    from bench.commands.history.store_commands import recorder

    record = recorder(getattr(args, "history", None))
    if record is not None:
        record(run_dir)


def _print(fmt: str, outcome: Any, run_dir: str, took_s: float) -> None:
    from dataclasses import asdict

    from bench.commands.health import render

    rows = [row.as_dict() for row in outcome.rows]
    summary = asdict(outcome.summary)
    line = f"{render.summary_line(summary)} in {took_s:.1f} s -> {run_dir}"
    if fmt == "json":
        sys.stdout.write(render.as_json(rows, summary, run_dir))
        print(line, file=sys.stderr)
        return
    if fmt == "md":
        sys.stdout.write(render.markdown(rows, summary, "flopwatt health"))
        print(line)
        return
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(render.table(rows, "flopwatt health"))
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(line)
