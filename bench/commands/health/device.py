"""One rank's part of a health check: its device read idle, loaded and after, and measured.

Every rank runs this at the same time on its own device (the way GPUs work in production:
a GPU that is fine alone may not be fine while seven neighbours heat the chassis and share
the power supply). The allreduce across ranks runs between the load and the last NVML read,
so that link errors it causes are counted. Nothing here raises for a faulty device: a GPU
that is lost or computes wrong becomes FAIL rows in its DeviceRecord.
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from types import ModuleType
from typing import Any

from bench.commands.health import amdsmi_checks, nvml_checks
from bench.commands.health.model import FAIL, JOB, NA, PASS, Check, DeviceRecord, Thresholds, na
from bench.commands.health.probe import (
    Canary,
    Measured,
    ProbeSettings,
    library_versions,
    measure_device,
)
from bench.devices.base import Backend, GpuIdentity
from bench.execution.context import CaseContext
from bench.execution.job import Job
from bench.execution.outcome import CaseOutcome, first_line
from bench.hardware.amdsmi import Amdsmi, AmdsmiCallFailed, AmdsmiUnavailable, open_amdsmi
from bench.hardware.nvml import Nvml, NvmlCallFailed, NvmlUnavailable, open_nvml


def checks_for(facts: Any) -> ModuleType:
    """The telemetry checks of this device: amdsmi's on an AMD GPU, NVML's otherwise."""
    identity = facts.identity
    amd = isinstance(identity, GpuIdentity) and identity.vendor == "amd"
    return amdsmi_checks if amd else nvml_checks


def open_amd_device(facts: Any) -> tuple[Amdsmi | None, Any, str]:
    """amdsmi and this rank's AMD GPU in it (by BDF, UUID, HIP id), or why there is none."""
    try:
        smi = open_amdsmi()
    except AmdsmiUnavailable as exc:
        return None, None, str(exc)
    extra = facts.extra
    try:
        device, how, _ = smi.match(
            int(extra.get("index", 0)), extra.get("uuid"), extra.get("pci_bus_id"), os.environ
        )
    except AmdsmiUnavailable as exc:
        return smi, None, str(exc)
    except AmdsmiCallFailed as exc:
        return smi, None, f"lost at start: {exc}"
    return smi, device, how


def open_device(facts: Any) -> tuple[Any, Any, str]:
    """NVML (or amdsmi on AMD) and this rank's GPU in it, or why there is none."""
    if not isinstance(facts.identity, GpuIdentity):
        return None, None, f"the device is a {facts.kind}: NVML checks need an NVIDIA GPU"
    if facts.identity.vendor == "amd":
        return open_amd_device(facts)
    from bench.devices.environment import match_device

    try:
        nvml = open_nvml()
    except NvmlUnavailable as exc:
        return None, None, str(exc)
    try:
        device, how = match_device(nvml, facts)
    except NvmlCallFailed as exc:
        return nvml, None, f"lost at start: {exc}"
    return nvml, device, how


class Reads:
    """The three telemetry reads of one device and whether it was lost on the way."""

    def __init__(self, device: Any, lost: str | None, checks: ModuleType = nvml_checks) -> None:
        self.device, self.lost, self.checks = device, lost, checks
        self.idle: dict[str, Any] = {}
        self.load: dict[str, Any] = {}
        self.after: dict[str, Any] = {}

    @property
    def usable(self) -> bool:
        return self.device is not None and self.lost is None

    def read_idle(self) -> None:
        if self.usable:
            self.idle, self.lost = self.checks.read_idle(self.device)

    def read_load(self) -> None:
        if self.usable:
            self.load, self.lost = self.checks.read_load(self.device)

    def read_after(self) -> None:
        if self.usable:
            self.after, self.lost = self.checks.read_after(self.device, self.idle)

    def as_dict(self) -> dict[str, Any]:
        """The raw readings, [value, reason] each, for run.json."""
        return {"idle": self.idle, "load": self.load, "after": self.after, "lost": self.lost}


def gpu_count_row(nvml: Nvml | Amdsmi | None, reason: str, expect: int | None) -> Check:
    """How many GPUs the driver sees on this node, against --expect-gpus or CUDA's count."""
    name = "gpu count"
    if nvml is None:
        return na(JOB, name, reason)
    if isinstance(nvml, Amdsmi):
        return _amd_count_row(nvml, expect)
    count, why = nvml.device_count_reading()
    if count is None:
        return na(JOB, name, str(why))
    if expect is not None:
        verdict = PASS if count == expect else FAIL
        why = "as expected" if count == expect else "a GPU is missing or extra: off the bus?"
        return Check(JOB, name, count, f"{expect} (--expect-gpus)", verdict, why)
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        why = "CUDA_VISIBLE_DEVICES hides GPUs from CUDA: give --expect-gpus N to check"
        return Check(JOB, name, count, "--expect-gpus N", NA, why)
    import torch

    cuda = torch.cuda.device_count()
    if count != cuda:
        why = f"NVML sees {count} GPUs and CUDA {cuda}: one is listed but unusable"
        return Check(JOB, name, count, f"{cuda} (CUDA's count)", FAIL, why)
    return Check(JOB, name, count, f"{cuda} (CUDA's count)", PASS, "NVML and CUDA agree")


def _amd_count_row(smi: Amdsmi, expect: int | None) -> Check:
    """gpu_count_row for amdsmi, which like NVML sees every GPU whatever the *_VISIBLE_DEVICES."""
    name = "gpu count"
    try:
        count = len(smi.devices())
    except AmdsmiUnavailable as exc:
        return na(JOB, name, str(exc))
    if expect is not None:
        verdict = PASS if count == expect else FAIL
        why = "as expected" if count == expect else "a GPU is missing or extra: off the bus?"
        return Check(JOB, name, count, f"{expect} (--expect-gpus)", verdict, why)
    hidden = [
        v
        for v in ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES")
        if os.environ.get(v) is not None
    ]
    if hidden:
        why = f"{hidden[0]} hides GPUs from HIP: give --expect-gpus N to check"
        return Check(JOB, name, count, "--expect-gpus N", NA, why)
    import torch

    hip = torch.cuda.device_count()
    if count != hip:
        why = f"amdsmi sees {count} GPUs and HIP {hip}: one is listed but unusable"
        return Check(JOB, name, count, f"{hip} (HIP's count)", FAIL, why)
    return Check(JOB, name, count, f"{hip} (HIP's count)", PASS, "amdsmi and HIP agree")


def _allreduce(
    job: Job, backend: Backend, settings: ProbeSettings, problem: str | None, limit_s: float
) -> tuple[CaseOutcome | None, str | None]:
    """The allreduce across every rank, unless some rank's device is already known bad (a
    lost GPU would hang NCCL): the ranks agree first, through the store."""
    if job.world_size == 1:
        return None, None
    answers = job.collect("health/allreduce-ready", problem, limit_s)
    decision = None
    for rank, answer in enumerate(answers):
        if answer is not None:
            decision = f"rank {rank}: {answer}"
            break
    decision = job.share("health/allreduce-go", decision, limit_s)
    if decision is not None:
        return None, f"skipped, {decision}"
    from bench.execution.collective_runner import run_collective_case
    from bench.measuring.collective_timing import CollectivePolicy
    from bench.peaks.lookup import link_peak
    from kernels import allreduce

    case = allreduce.make_case(
        {"bytes": settings.allreduce_bytes},
        "fp32",
        backend.label,
        options={"collective": "allreduce", "place": "in"},
    )
    case = replace(case, world_size=job.world_size)
    policy = CollectivePolicy(target_s=settings.collective_target_s, event_calls=10)
    link = link_peak(backend.facts().identity)
    return run_collective_case(
        case,
        "allreduce",
        allreduce,
        CaseContext(backend=backend, link_peak=link, collective_policy=policy),
    ), None


def _unfit(reads: Reads, measured: Measured) -> str | None:
    """Why this device must sit the allreduce out (a lost GPU would hang NCCL), or None."""
    if reads.lost:
        return f"GPU {reads.lost}"
    if not measured.outcomes:
        return measured.rows[0].reason
    results = (o.result.identity for o in measured.outcomes)
    failed = next((r for r in results if r.status == "failed"), None)
    return None if failed is None else f"{failed.kernel} failed: {failed.reason}"


def check_device(
    job: Job,
    backend: Backend,
    settings: ProbeSettings,
    thresholds: Thresholds,
    *,
    flip_bit: bool = False,
    expect_gpus: int | None = None,
    limit_s: float = 120.0,
) -> tuple[DeviceRecord, CaseOutcome | None, str | None]:
    """This rank's DeviceRecord, and the job's allreduce (or why it did not run)."""
    from bench.execution.session import _identity_dict
    from bench.results.blessed.paths import sku_key

    facts = backend.facts()
    label = backend.label
    nvml, device, reason = open_device(facts)
    checks = checks_for(facts)
    reads = Reads(device, reason if reason.startswith("lost") else None, checks)
    try:
        reads.read_idle()
        try:
            measured = measure_device(
                backend, settings, reads.read_load if reads.usable else None, flip_bit
            )
        except (RuntimeError, MemoryError) as exc:  # the device broke outside a case
            why = f"the device failed: {first_line(exc)}"
            row = Check(label, "device runs work", None, "matmul and copy run", FAIL, why)
            measured = Measured(rows=[row], canary=Canary(reason=why))
        job_outcome, skip = _allreduce(job, backend, settings, _unfit(reads, measured), limit_s)
        reads.read_after()
        if reads.device is None and reads.lost is None:
            rows = checks.unavailable(label, reason)
        else:
            rows = checks.judge(label, reads.idle, reads.load, reads.after, reads.lost, thresholds)
        rows += measured.rows
        if job.ctx.local_rank == 0:
            count = gpu_count_row(nvml, reason, expect_gpus)
            count.reason = f"{socket.gethostname()}: {count.reason}"
            rows.append(count)
        if isinstance(nvml, Amdsmi):
            versions = library_versions(facts, reads.idle.get("driver", (None, None))[0])
            versions["cuda_driver"] = None
        else:
            versions = library_versions(facts, nvml.driver_version() if nvml else None)
            versions["cuda_driver"] = nvml.cuda_driver_version() if nvml else None
        versions["vbios"] = reads.idle.get("vbios", (None, None))[0]
        if nvml is None or reads.device is None:
            versions["nvml_reason"] = reason
    finally:
        if nvml is not None:
            nvml.close()
    for row in rows:
        if row.device != JOB:  # the GPU count is the node's; its reason names the host
            row.rank = job.ctx.rank
    record = DeviceRecord(
        rank=job.ctx.rank,
        host=socket.gethostname(),
        device=label,
        sku=sku_key(facts.identity),
        versions=versions,
        rows=rows,
        cases=[o.result.leaves() for o in measured.outcomes],
        samples=[o.sample_columns() for o in measured.outcomes],
        canary=measured.canary.as_dict(),
        facts={"identity": _identity_dict(facts.identity), **facts.extra},
        readings=reads.as_dict(),
    )
    return record, job_outcome, skip


def failed_record(rank: int, device: str, reason: str) -> DeviceRecord:
    """What rank 0 records for a rank that sent no report: it died or hung."""
    row = Check(device, "rank reported", None, "a report within the timeout", FAIL, reason)
    row.rank = rank
    return DeviceRecord(rank=rank, host="?", device=device, sku="unknown", versions={}, rows=[row])
