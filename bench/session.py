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
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.devices.base import Backend
from bench.env import capture_environment
from bench.peaks import resolve_peak
from bench.plan import RunPlan
from bench.power import PowerChoice
from bench.power.idle import measure_idle
from bench.record import RunWriter
from bench.render import power_line, summary_table
from bench.runner import run_case
from bench.timing import EnergyPolicy
from kernels import get_kernel

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXIT_INTERRUPTED = 130


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


def execute(
    plan: RunPlan,
    backend: Backend,
    power_setup: PowerSetup,
    out_parent: Path,
    console: Any,
    err: Any,
) -> int:
    """Run the plan on backend; return the process exit code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cases = plan.cases(backend.kind, backend.label)
    policy = plan.policy(backend.kind)
    facts = backend.facts()
    power = power_setup.choice.source
    energy = power_setup.energy if power.available else None
    run_id = new_run_id()
    meta = {
        "run_id": run_id,
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
        "energy_policy": asdict(power_setup.energy) if energy is not None else None,
        "environment": capture_environment(facts, project_root=PROJECT_ROOT),
        "n_planned": len(cases),
    }
    writer = RunWriter(out_parent / run_id, meta)

    def peak_for(mode: str):
        return resolve_peak(facts.identity, mode, plan.peak_overrides)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    status, code = "complete", 0
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("idle baseline", total=len(cases))
            idle = measure_idle(power, power_setup.idle_s)
            writer.update_meta(idle=idle.as_dict())
            for index, case in enumerate(cases):
                label = f"{case.kernel} {case.label()} {case.dtype}"
                progress.update(task, description=label)
                case_id = safe_name(f"{index:04d}-{case.kernel}-{case.dtype}-{case.label()}")
                outcome = run_case(
                    case,
                    case_id,
                    get_kernel(case.kernel),
                    backend,
                    power,
                    policy,
                    peak_for,
                    energy=energy,
                    idle_power_w=idle.power_w,
                )
                writer.append(outcome.result, outcome.sample_columns(), outcome.trace_columns())
                progress.advance(task)
    except KeyboardInterrupt:
        status, code = "interrupted", EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
        writer.finish(
            status,
            finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            duration_s=time.perf_counter() - started,
        )
    title = f"flopwatt {plan.suite} on {backend.label} ({_device_name(facts.identity)})"
    console.print(summary_table(writer.results, title))
    console.print(power_line(power, writer.meta.get("idle")))
    done = len(writer.results)
    if status == "interrupted":
        err.print(f"interrupted: {done} of {len(cases)} cases saved in {writer.run_dir}")
    else:
        console.print(f"{done} cases -> {writer.run_dir}")
    return code


def _identity_dict(identity: Any) -> dict[str, Any]:
    data = asdict(identity)
    if "flags" in data:
        data["flags"] = sorted(data["flags"])
    return data


def _device_name(identity: Any) -> str:
    return getattr(identity, "name", None) or getattr(identity, "model", None) or "unknown"
