"""`flopwatt run`: from the parsed flags to the session's case loop, and what the command
adds around that loop.

The plan, the device, the power source and the process group are set up here (bench.cli
only parses). The session (bench.execution) measures cases; the health check a nightly suite
runs first and the ceilings every case is divided by belong to commands of their own. This
module hands them to the session, so that the run machinery never imports a command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from bench.errors import UsageError, check_writable
from bench.execution.session import RunExtras


def run_extras(search: Any = None, recorded: Callable[[Path], None] | None = None) -> RunExtras:
    """The health preflight and the ceilings, as `flopwatt run` uses them; `search`
    (an InRunSearch) limits the ceiling search of suites that measure their own; `recorded`
    is told the finished run folder (`--history DIR`)."""
    from bench.commands.ceiling.session import ceilings_for_run
    from bench.commands.health.run import preflight

    ceilings = partial(ceilings_for_run, search=search)
    return RunExtras(preflight=preflight, ceilings=ceilings, recorded=recorded)


def in_run_search(
    budget_s: float | None, max_dim: int | None, warmup_s: float | None, no_memory: bool = False
) -> Any:
    """`run --ceiling-budget-s/-max-dim/-warmup-s/-no-memory` as an InRunSearch; None when
    none was given."""
    from bench.commands.ceiling.session import InRunSearch

    if budget_s is None and max_dim is None and warmup_s is None and not no_memory:
        return None
    return InRunSearch(budget_s, max_dim, warmup_s, memory=not no_memory)


def _peak_overrides(items: Sequence[str]) -> dict[str, float]:
    from bench.peaks.lookup import parse_peak_override

    overrides: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            try:
                mode, value = parse_peak_override(part)
            except ValueError as exc:
                raise UsageError(f"--peak {part!r}: {exc}") from None
            overrides[mode] = value
    return overrides


def run_command(args: argparse.Namespace, axes: dict[str, dict[str, tuple[str, ...]]]) -> int:
    """`flopwatt run`: the plan from the flags (`axes`: the kernel axis flags, by kernel),
    the device, power source and process group, then the session's case loop."""
    from rich.console import Console

    from bench.commands.history.store_commands import recorder
    from bench.devices import get_backend, parse_device
    from bench.execution.plan import PolicyOverrides, RunPlan, split_list
    from bench.execution.session import RunSetup, execute

    parse_device(args.device)
    if args.nproc is not None:
        return _spawn_ranks(args.nproc)
    ctx = _dist_context()
    plan = RunPlan(
        suite=args.suite,
        kernels=split_list(args.kernel),
        dtypes=split_list(args.dtype),
        axes=axes,
        init=args.init,
        seed=args.seed,
        overrides=PolicyOverrides(
            mode=args.timing,
            timeout_s=args.timeout_s,
            max_noise=args.max_noise,
            min_samples=args.min_samples,
            min_time_s=args.min_time_s,
            warmup_s=args.warmup_s,
        ),
        peak_overrides=_peak_overrides(args.peak),
        world_size=ctx.world_size,
    )
    plan.validate()
    if ctx.is_root:
        check_writable(args.out, "--out")
    backend = get_backend(_rank_device(args.device, ctx), args.threads)
    if args.timing == "graph" and not backend.supports_graphs:
        raise UsageError(f"--timing graph needs a CUDA device; {backend.label} has no graphs")
    search = in_run_search(
        args.ceiling_budget_s, args.ceiling_max_dim, args.ceiling_warmup_s, args.ceiling_no_memory
    )
    if search is not None:
        if not plan.suite_for(backend.kind).measures_ceilings:
            raise UsageError(
                f"--ceiling-* limits the ceiling search of a suite that measures its ceilings "
                f"(--suite full); suite {plan.suite!r} reads stored ones"
            )
        try:
            search.preset(backend.kind)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        power_setup = _power_setup(args, backend)
        job = _open_job(ctx, plan, backend, args.collective_timeout_s)
        try:
            # Logs and pipes get a wide table instead of rich's 80 columns; other ranks: quiet.
            out = Console() if sys.stdout.isatty() else Console(width=180)
            if not ctx.is_root:
                out = Console(quiet=True)
            err = Console(stderr=True)
            setup = RunSetup(
                backend,
                power_setup,
                args.out,
                out,
                err,
                run_extras(search, recorder(args.history)),
                job,
                args.baselines,
            )
            return execute(plan, setup)
        finally:
            job.close()
            power_setup.choice.source.close()
    finally:
        backend.close()


def _spawn_ranks(nproc: int) -> int:
    """`--nproc N`: the same command as N local ranks under torch's elastic launcher."""
    import os

    from bench.execution.launch import spawn_local

    if "RANK" in os.environ:
        raise UsageError("--nproc inside a torchrun/srun job: the launcher already made the ranks")
    return spawn_local(nproc, sys.argv[1:])


def _dist_context() -> Any:
    from bench.execution.ranks import context_from_env

    try:
        return context_from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _rank_device(device: str, ctx: Any) -> str:
    """Each rank binds its own GPU by LOCAL_RANK unless the user named one."""
    if not ctx.distributed or device not in ("auto", "cuda"):
        return device
    import torch

    return f"cuda:{ctx.local_rank}" if torch.cuda.is_available() else "cpu"


def _open_job(ctx: Any, plan: Any, backend: Any, timeout_s: float) -> Any:
    """The job's process group: several ranks, or one rank that runs collectives."""
    from bench.execution.job import Job
    from kernels import get_spec

    cases = plan.cases(backend.kind, backend.label)
    needs_group = any(get_spec(c.kernel).collective for c in cases)
    try:
        return Job.open(ctx, backend.kind, timeout_s, needs_group)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot start the process group: {exc}") from None


def _power_setup(args: argparse.Namespace, backend: Any) -> Any:
    """Open the power source once; a named source that cannot work is bad input."""
    from bench.execution.session import PowerSetup
    from bench.measuring.timing import default_energy_policy
    from bench.power import open_power_source
    from bench.power.base import PowerUnavailable

    try:
        choice = open_power_source(args.power, backend.facts(), tdp_w=args.tdp_w)
    except PowerUnavailable as exc:
        raise UsageError(f"--power {args.power}: {exc}") from None
    energy = default_energy_policy(backend.kind)
    if args.energy_window_s is not None:
        energy = replace(energy, window_s=args.energy_window_s)
    if args.energy_ramp_s is not None:
        energy = replace(energy, ramp_s=args.energy_ramp_s)
    return PowerSetup(choice=choice, energy=energy, idle_s=args.idle_s)
