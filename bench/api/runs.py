"""bench.run() and bench.load_runs(): `flopwatt run` and its run folders, from a notebook.

run() goes through the same session as the CLI (bench.execution.session.execute), so its run folder
is the one `flopwatt run` writes and `flopwatt report` and `compare` read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.api import inputs
from bench.execution.job import Job

DEFAULT_OUT = Path("results/runs")


class _ApiJob(Job):
    """The one-process job of `flopwatt run`, remembering where its run folder went."""

    run_dir: Path | None = None
    command: str = "bench.run()"

    def writer(self, run_dir: Any, meta: dict[str, Any]) -> Any:
        self.run_dir = Path(run_dir)
        meta["command"] = self.command  # sys.argv is the notebook's, not the run's
        return super().writer(run_dir, meta)


def run(
    plan: Any,
    *,
    device: Any = None,
    out: str | Path = DEFAULT_OUT,
    power: Any = "auto",
    baselines: str | Path | None = None,
    idle_s: float = 2.0,
    show: bool = False,
) -> Any:
    """Run a bench.RunPlan as `flopwatt run` would and return the loaded run.

    The result is a bench.results.record.Run: `.path` (the run folder under `out`), `.meta`
    (run.json; `.meta["status"]` is "complete", or "interrupted" after Ctrl-C, with every
    finished case kept) and `.cases` (one pandas row per case, dotted columns named after
    cases.jsonl's parts and fields, e.g. "timing.time_median_s").
    device and power as for bench.measure; baselines is where stored ceilings are read
    (default results/baselines); idle_s the idle baseline (0 skips it); show prints the
    progress and the summary table as the CLI does.

    >>> import bench
    >>> plan = bench.RunPlan(axes={"matmul": {"shape": ("256x256x256",)}}, dtypes=("fp32",))
    >>> r = bench.run(plan, device="cpu", out="/tmp/runs")
    >>> r.cases[["identity.kernel", "identity.dtype", "rates.frac_of_peak"]]  # doctest: +SKIP

    One process only (multi-rank runs: `flopwatt run --nproc N`), from the main thread,
    which handles Ctrl-C and SIGTERM as the CLI does.
    """
    from rich.console import Console

    from bench.commands.run import run_extras
    from bench.errors import UsageError, check_writable
    from bench.execution.plan import RunPlan
    from bench.execution.session import PowerSetup, RunSetup, execute
    from bench.measuring.timing import default_energy_policy
    from bench.results.record import load_run

    if not isinstance(plan, RunPlan):
        raise ValueError(f"run() needs a bench.RunPlan, got {type(plan).__name__}")
    if plan.world_size != 1:
        raise ValueError("run() runs one process; start multi-rank runs with flopwatt run --nproc")
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run() must be called from the main thread (it handles Ctrl-C)")
    if idle_s < 0:
        raise ValueError(f"idle_s= must not be negative, got {idle_s!r}")
    inputs.check_power(power)
    try:
        plan.validate()
        check_writable(Path(out), "out=")
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    backend = inputs.open_backend(device)
    try:
        choice, owned = inputs.open_power(power, backend.facts())
        job = _open_job(plan, backend)
        job.command = f"bench.run({plan!r})"
        try:
            setup = PowerSetup(choice, default_energy_policy(backend.kind), idle_s)
            console = Console(stderr=False) if show else Console(quiet=True)
            err = Console(stderr=True) if show else Console(quiet=True)
            run_setup = RunSetup(
                backend, setup, Path(out), console, err, run_extras(), job, _path(baselines)
            )
            execute(plan, run_setup)
        finally:
            job.close()
            if owned:
                choice.source.close()
    finally:
        backend.close()
    if job.run_dir is None:
        raise RuntimeError("run() ended before its run folder was made")
    return load_run(job.run_dir)


def _open_job(plan: Any, backend: Any) -> _ApiJob:
    """One rank, with a process group of one when a collective case needs it (as the CLI)."""
    from bench.execution.ranks import SINGLE
    from kernels import get_spec

    cases = plan.cases(backend.kind, backend.label)
    needs_group = any(get_spec(c.kernel).collective for c in cases)
    job = _ApiJob.open(SINGLE, backend.kind, 300.0, needs_group)
    assert isinstance(job, _ApiJob)
    return job


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None


def load_runs(paths: Any) -> Any:
    """The cases of several run folders as one pandas DataFrame, with a `run_id` column.

    paths: a run folder (str or Path), a bench.run() result, or an iterable of them. Columns
    are dotted, part then field of cases.jsonl ("rates.frac_of_peak"), the same for runs of
    schema 1.x and 2.x; a field one run lacks is missing (NaN) in its rows. ValueError names
    the first path that is not a readable run folder.

    >>> import bench
    >>> df = bench.load_runs(["results/runs/A", "results/runs/B"])  # doctest: +SKIP
    >>> by = ["run_id", "identity.kernel", "identity.dtype"]
    >>> df.groupby(by)["rates.frac_of_peak"].median()  # doctest: +SKIP
    """
    import pandas as pd

    from bench.results.record import load_run

    items = [paths] if isinstance(paths, str | os.PathLike) or hasattr(paths, "cases") else paths
    if not isinstance(items, Iterable):
        raise ValueError(f"load_runs() needs run folders, got {type(paths).__name__}")
    frames = []
    for item in items:
        loaded = item if hasattr(item, "cases") else load_run(item)
        frame = loaded.cases.copy()
        frame.insert(0, "run_id", loaded.meta.get("run_id") or loaded.path.name)
        frames.append(frame)
    if not frames:
        raise ValueError("load_runs() needs at least one run folder")
    return pd.concat(frames, ignore_index=True, sort=False)
