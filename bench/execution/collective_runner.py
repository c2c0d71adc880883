"""run_collective_case(): a collective through check and lockstep timing on every rank.

Every rank calls this for every collective case. Decisions that would let one rank skip while
another waits in a collective (a skip reason, a failed allocation) are agreed first: if any
rank cannot run the case, none does, and the result says which rank and why.
"""

from __future__ import annotations

from typing import Any

from bench.devices.base import Backend
from bench.execution.context import CaseContext
from bench.execution.outcome import CaseOutcome, base_result, classify, first_line, fits
from bench.execution.ranks import RankFailure
from bench.measuring import metrics
from bench.measuring.collective_timing import (
    CollectivePolicy,
    CollectiveTimings,
    measure_collective,
)
from bench.peaks.lookup import LinkPeak
from bench.results.record import CaseDraft
from kernels.base import Kernel, Prepared
from kernels.case import Case

NO_ENERGY = "energy of collectives is not measured yet: it needs every rank's sensor summed"


def _agree(problem: tuple[str, str] | None) -> tuple[str, str] | None:
    """The first rank's (status, reason) problem, the same on every rank; None if none."""
    import torch.distributed as dist

    everyone: list[Any] = [None] * dist.get_world_size()
    try:
        dist.all_gather_object(everyone, problem)
    except RuntimeError as exc:  # a peer died: the job cannot go on, and must say so
        raise RankFailure(f"lost a rank before a collective case: {first_line(exc)}") from exc
    for rank, item in enumerate(everyone):
        if item is not None:
            status, reason = item
            return status, reason if dist.get_world_size() == 1 else f"rank {rank}: {reason}"
    return None


def _prepare(case: Case, kernel: Kernel, backend: Backend) -> tuple[Prepared | None, Any]:
    skip = kernel.unsupported_reason(case, backend.facts()) or fits(case, kernel, backend)
    if skip is not None:
        return None, ("skipped", skip)
    try:
        return kernel.prepare(case, backend.torch_device()), None
    except (RuntimeError, MemoryError, ValueError) as exc:
        return None, classify(exc)


def _fill(result: CaseDraft, t: CollectiveTimings, case: Case, link: LinkPeak | None) -> None:
    world = case.world_size
    result.time_mean_s = t.time_s  # the pipelined mean, max across ranks (named below)
    result.time_median_s = t.p50_s  # of the per-iteration times, each the max across ranks
    result.time_by_rank_s = list(t.time_by_rank_s)
    result.rank_reduction = t.rank_reduction
    result.time_p50_s, result.time_p99_s = t.p50_s, t.p99_s
    result.time_min_s, result.time_max_s = min(t.per_iteration_s), max(t.per_iteration_s)
    result.n_samples = len(t.per_iteration_s)
    result.timing_mode = "collective-pipelined"
    result.timing_mode_reason = (
        f"{t.calls} calls between one barrier and one sync "
        "(nccl-tests): algbw and busbw use this mean (time_mean_s); "
        "per-iteration marks give the median, p50 and p99"
    )
    result.stop_reason = "fixed-count"
    collective = case.params["collective"]
    result.bus_factor = metrics.bus_factor(collective, world)
    result.algbw_bytes_per_s = metrics.algbw(result.bytes, t.time_s)
    result.busbw_bytes_per_s = metrics.busbw(result.bytes, t.time_s, collective, world)
    if link is not None:
        result.link_peak_bytes_per_s = link.bytes_per_s
        result.link_peak_source, result.link_peak_detail = link.source, link.detail
        result.link_utilisation = metrics.fraction(result.busbw_bytes_per_s, link.bytes_per_s)
        if world == 1:
            result.link_utilisation = None
            result.warnings.append("world size 1: busbw factor is 0, no link is used")


def _fill_scaling(result: CaseDraft, rows: list[dict[str, Any]], case: Case) -> None:
    """The scaling rows, and the figures at the job's full world size as the headline."""
    last = rows[-1]
    result.scaling = rows
    result.scaling_efficiency = last["efficiency"]
    result.time_median_s = last["step_time_s"]
    result.time_by_rank_s = list(last["step_time_by_rank_s"])
    result.rank_reduction = "max"
    # matmul ops per rank per second during the step, at the full world size
    result.achieved_ops_per_s = metrics.fraction(last["throughput_ops_per_s"], last["n"])
    result.busbw_bytes_per_s = last["busbw_bytes_per_s"]
    result.bus_factor = metrics.bus_factor("allreduce", last["n"])
    result.timing_mode = "scaling-steps"
    result.timing_mode_reason = "fixed step counts on subgroups of 1, 2, 4, ... ranks"
    result.stop_reason = "fixed-count"


def run_collective_case(case: Case, case_id: str, kernel: Kernel, ctx: CaseContext) -> CaseOutcome:
    """Check and time one collective on every rank; never raises for a case-level problem."""
    backend, clock, link, policy = ctx.backend, ctx.clock, ctx.link_peak, ctx.collective_policy
    started = clock()
    result = base_result(case, case_id, kernel)
    result.energy_reason = NO_ENERGY
    prepared, problem = _prepare(case, kernel, backend)
    agreed = _agree(problem)
    timings = None
    if agreed is not None:
        result.status, result.reason = agreed
    else:
        assert prepared is not None
        try:
            verdict = prepared.check()
            result.correctness = verdict.as_dict()
            result.kernel_details = {k: v for k, v in prepared.details.items() if k[0] != "_"}
            result.wrong_elements = int(verdict.error)
            if verdict.ok and hasattr(kernel, "measure_steps"):
                _fill_scaling(result, kernel.measure_steps(case, prepared, backend), case)
            elif verdict.ok:
                timings = measure_collective(
                    prepared.run, backend, policy or CollectivePolicy(), clock
                )
            else:
                result.status = "failed"
                result.reason = f"#wrong = {int(verdict.error)} elements summed over ranks"
        except RuntimeError as exc:  # a collective that timed out or lost a peer
            result.status, result.reason = "failed", first_line(exc)
    samples = None
    if timings is not None:
        _fill(result, timings, case, link)
        samples = {
            "iteration": list(range(len(timings.per_iteration_s))),
            "time_s": list(timings.per_iteration_s),
        }
    result.duration_s = clock() - started
    return CaseOutcome(result.freeze(), None, None, samples)
