"""One `flopwatt run`: cases through the runner into a run folder, with progress and Ctrl-C.

Every case is written the moment it finishes. Ctrl-C (or SIGTERM) stops after marking the
run `interrupted` in run.json; kill -9 leaves run.json saying `running`, and cases.jsonl
still holds every finished case.
"""

from __future__ import annotations

import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.devices.base import Backend
from bench.devices.environment import capture_environment
from bench.execution.context import CaseContext
from bench.execution.job import EXIT_RANK_FAILURE, Job
from bench.execution.plan import RunPlan
from bench.execution.ranks import RankFailure
from bench.execution.runner import run_case
from bench.measuring.timing import EnergyPolicy
from bench.peaks.lookup import link_peak, resolve_peak
from bench.power import PowerChoice
from bench.power.idle import measure_idle
from bench.results.render import ceiling_line, power_line, summary_table
from bench.results.render_collectives import nccl_tests_table, scaling_table
from kernels import get_kernel

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXIT_INTERRUPTED = 130
LOST_RANK_GRACE_S = 1.0  # after a collective error, how long to look for a peer that died


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time, host, and a short random suffix."""
    now = now or datetime.now(timezone.utc)
    host = socket.gethostname().split(".")[0] or "host"
    return f"{now:%Y%m%d-%H%M%S}-{host}-{uuid.uuid4().hex[:6]}"


def safe_name(text: str) -> str:
    """A case id that is also a portable file name (raw samples live in <case_id>.parquet)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass(frozen=True)
class PowerSetup:
    """The power source the CLI opened, and how the energy phase and idle baseline run."""

    choice: PowerChoice
    energy: EnergyPolicy
    idle_s: float = 2.0


@dataclass(frozen=True)
class RunExtras:
    """What the run command adds around the case loop. The session calls these without
    knowing the commands behind them (health, ceiling), which sit a layer above it.

    preflight(job, backend, writer, baselines) -> marks: a health check before the first
    case (suites with health_first); its marks say which results came from a failed device.
    ceilings(measure, backend, cases, baselines, meta, save_meta, on_progress, warn) -> an
    object whose lookup(math_mode) gives the measured ceiling of that math mode.
    """

    preflight: Callable[..., Any]
    ceilings: Callable[..., Any]
    # recorded(run_dir): called on rank 0 once a complete run folder is written and closed
    # (`--history DIR` adds it to the history); it must not raise
    recorded: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class RunSetup:
    """Everything a run needs besides its plan: device, power, where results go, consoles."""

    backend: Backend
    power: PowerSetup
    out_parent: Path
    console: Any
    err: Any
    extras: RunExtras
    job: Job | None = None
    baselines: Path | None = None


def execute(plan: RunPlan, setup: RunSetup) -> int:
    """Run the plan on setup's backend; return the process exit code.

    In a multi-rank job every rank calls this; only rank 0 writes and prints (the CLI gives
    the others quiet consoles).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from bench.execution.progress import EventProgress

    backend, power_setup, console, err = setup.backend, setup.power, setup.console, setup.err
    baselines, extras = setup.baselines, setup.extras
    job = setup.job or Job()
    cases = [replace(c, world_size=job.world_size) for c in plan.cases(backend.kind, backend.label)]
    job.check_same_plan({"plan": asdict(plan), "power": power_setup.choice.requested})
    policy = plan.policy(backend.kind)
    facts = backend.facts()
    power = power_setup.choice.source
    energy = power_setup.energy if power.available else None
    meta = _run_meta(plan, backend, policy, power_setup, job, len(cases))
    writer = job.writer(setup.out_parent / meta["run_id"], meta)
    if job.ctx.is_root:
        for note in meta.get("warnings", []):
            err.print(f"flopwatt: warning: {note}", markup=False)
    link = link_peak(facts.identity)

    def peak_for(mode: str):
        return resolve_peak(facts.identity, mode, plan.peak_overrides)

    marks = None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    status, code = "failed", 1  # until the loop ends normally: a crash is not "complete"
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    where = "the start of the run"  # the last meeting point passed, to name a hung rank
    try:
        with EventProgress(*columns, console=err) as progress:
            task = progress.add_task("idle baseline", total=len(cases))
            suite = plan.suite_for(backend.kind)
            if suite.health_first:
                progress.update(task, description="health check")
                marks = extras.preflight(job, backend, writer, baselines)
            ceilings = extras.ceilings(
                suite.measures_ceilings,
                backend,
                cases,
                baselines,
                meta,
                lambda data: writer.update_meta(ceiling=data),
                lambda text: progress.update(task, description=text),
                err.print,
            )
            progress.update(task, description="idle baseline")
            idle = measure_idle(power, power_setup.idle_s)
            writer.update_meta(idle=idle.as_dict(), idle_by_rank=job.gather(idle.as_dict()))
            for index, case in enumerate(cases):
                label = f"{case.kernel} {case.label()} {case.dtype}"
                progress.update(task, description=label)
                case_id = safe_name(f"{index:04d}-{case.kernel}-{case.dtype}-{case.label()}")
                where = f"case {case_id}"
                job.meet(where)
                kernel = get_kernel(case.kernel)
                outcome = run_case(
                    case,
                    case_id,
                    kernel,
                    CaseContext(
                        backend=backend,
                        power=power,
                        policy=policy,
                        peak_for=peak_for,
                        energy=energy,
                        idle_power_w=idle.power_w,
                        link_peak=link,
                        measured_peak_for=ceilings.lookup,
                    ),
                )
                collective = getattr(kernel, "COLLECTIVE", False)
                if collective and outcome.result.identity.status == "failed":
                    _raise_if_ranks_lost(job)  # a dead peer is no failed case: not written
                if marks is not None:
                    outcome = replace(outcome, result=marks.mark(outcome.result, collective))
                job.deliver(outcome, collective, writer)
                progress.advance(task)
        status, code = "complete", 0
    except KeyboardInterrupt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already: finish the wrap-up
        # The elastic launcher SIGTERMs every rank as soon as one dies: say which one died.
        lost = job.lost_ranks()
        if lost is None:
            status, code = "interrupted", EXIT_INTERRUPTED
        else:
            status, code = "rank_failure", EXIT_RANK_FAILURE
            err.print(f"flopwatt: error: {lost}; rank {job.ctx.rank} stops", markup=False)
    except RankFailure as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the launcher's SIGTERM is on its way
        status, code = "rank_failure", EXIT_RANK_FAILURE
        lost = job.lost_ranks(wait_s=LOST_RANK_GRACE_S)
        if lost is None and not exc.names_ranks:
            lost = job.late_ranks(f"{where}, after a failed collective,")
        err.print(f"flopwatt: error: {lost or exc}; rank {job.ctx.rank} stops", markup=False)
    finally:
        # A rank of a failed job keeps ignoring SIGTERM until it exits: the launcher sends one
        # to every rank still alive, and it must not turn exit 3 into death by signal.
        if not (status == "rank_failure" and job.ctx.distributed):
            signal.signal(signal.SIGTERM, previous)
        writer.finish(
            status,
            finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            duration_s=time.perf_counter() - started,
        )
    title = f"flopwatt {plan.suite} on {backend.label} ({_device_name(facts.identity)})"
    _print_results(console, writer, power, title)
    if marks is not None and job.is_root:
        console.print(marks.line)
        if marks.failed and code == 0:
            code = 1  # the run is complete, but a GPU failed its health check
    if status == "complete" and job.is_root and extras.recorded is not None:
        extras.recorded(writer.run_dir)
    done = len(writer.results)
    if status != "complete" and job.is_root:
        err.print(
            f"{status}: {done} results of {len(cases)} cases saved in {writer.run_dir}",
            markup=False,
        )
    else:
        console.print(f"{done} results -> {writer.run_dir}")
    return code


def _raise_if_ranks_lost(job: Job) -> None:
    lost = job.lost_ranks(wait_s=LOST_RANK_GRACE_S)
    if lost is not None:
        raise lost


def _run_meta(
    plan: RunPlan, backend: Backend, policy: Any, power_setup: PowerSetup, job: Job, n_planned: int
) -> dict[str, Any]:
    """run.json as the run starts: command, device, policy, power source, environment."""
    facts, power = backend.facts(), power_setup.choice.source
    meta = {
        "run_id": new_run_id(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["flopwatt", *sys.argv[1:]]),
        "suite": plan.suite,
        "device": backend.label,
        "device_facts": {"identity": _identity_dict(facts.identity), **facts.extra},
        "policy": asdict(policy),
        "peak_overrides": plan.peak_overrides,
        "power_source": {
            **power.describe(),
            "requested": power_setup.choice.requested,
            "skipped": power_setup.choice.skipped,
        },
        "energy_policy": asdict(power_setup.energy) if power.available else None,
        "environment": capture_environment(facts, project_root=PROJECT_ROOT),
        "n_planned": n_planned,
        "world_size": job.world_size,
        "launcher": job.ctx.source,
    }
    meta.update(synthetic_marks(meta))
    notes = run_warnings(meta["environment"], job.world_size)
    if notes:
        meta["warnings"] = notes
    if job.ctx.distributed:
        mine = {"device_facts": meta["device_facts"], "host": socket.gethostname()}
        meta["ranks"] = job.gather(mine)
    return meta


def run_warnings(environment: dict[str, Any], world_size: int) -> list[str]:
    """Conditions of the machine that make the figures of this run worse or not comparable."""
    notes = []
    rocm = bool((environment.get("software") or {}).get("torch_hip"))
    numa = (environment.get("host") or {}).get("numa_balancing")
    if rocm and world_size > 1 and numa:
        notes.append(
            "NUMA balancing is on (/proc/sys/kernel/numa_balancing = 1): AMD advises it off "
            "for RCCL (sysctl kernel.numa_balancing=0); collective figures may be low and noisy"
        )
    spoof = (environment.get("env_vars") or {}).get("HSA_OVERRIDE_GFX_VERSION")
    if spoof:
        notes.append(
            f"HSA_OVERRIDE_GFX_VERSION={spoof} makes ROCm treat the GPU as another arch: "
            "kernels and peaks may not match the hardware"
        )
    return notes


def synthetic_marks(meta: dict[str, Any]) -> dict[str, Any]:
    """{"synthetic": True, "synthetic_reason": ...} when a test fake answered for the hardware
    (the power source or the environment's amdsmi section says so), else nothing: numbers
    from a fake must never pass for measurements."""
    amdsmi = (meta.get("environment") or {}).get("amdsmi") or {}
    reasons = [meta["power_source"].get("synthetic_reason"), amdsmi.get("synthetic_reason")]
    known = list(dict.fromkeys(r for r in reasons if r))
    return {"synthetic": True, "synthetic_reason": "; ".join(known)} if known else {}


def _print_results(console: Any, writer: Any, power: Any, title: str) -> None:
    """The summary table and, where the run has them, the collective and scaling tables."""
    console.print(summary_table(writer.results, title))
    console.print(power_line(power, writer.meta.get("idle")))
    console.print(ceiling_line(writer.meta.get("ceiling")))
    if writer.meta.get("synthetic"):
        reason = writer.meta.get("synthetic_reason")
        console.print(f"SYNTHETIC, not a measurement: {reason}", markup=False)
    collectives = [r for r in writer.results if "collective" in r.identity.params]
    if collectives:
        console.print(nccl_tests_table(collectives))
    studies = [r for r in writer.results if r.collective.scaling]
    if studies:
        console.print(scaling_table(studies))


def _identity_dict(identity: Any) -> dict[str, Any]:
    data = asdict(identity)
    if "flags" in data:
        data["flags"] = sorted(data["flags"])
    return data


def _device_name(identity: Any) -> str:
    return getattr(identity, "name", None) or getattr(identity, "model", None) or "unknown"
