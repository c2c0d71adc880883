"""One rank's whole device check on scripted GPUs: CPU math behind a GPU identity and a
scripted NVML, so the GPU path (NVML reads idle, under load and after) runs without a GPU."""

from __future__ import annotations

from typing import Any

import pytest
from fake_pynvml import NVML_ERROR_GPU_IS_LOST, FailAfter, FakeGpu, FakePynvml, install

from bench.devices.base import DeviceFacts, GpuIdentity
from bench.devices.cpu import CpuBackend
from bench.commands.health.device import check_device
from bench.commands.health.model import FAIL, PASS, Thresholds, exit_code
from bench.commands.health.probe import ProbeSettings
from bench.commands.health.run import Options, evaluate
from bench.execution.job import Job
from bench.measuring.timing import Policy

UUIDS = ("GPU-aaaaaaaa-0000-0000-0000-000000000001", "GPU-bbbbbbbb-0000-0000-0000-000000000002")
QUICK = Policy(mode="hot", min_time_s=0.02, timeout_s=0.2, warmup_min_s=0.01, warmup_max_s=0.05)
SETTINGS = ProbeSettings((96, 96, 96), "fp32", 2**20, 2**16, QUICK, QUICK, 0.01, burst_s=0.01)
LENIENT = Thresholds(peer_warn=0.9, peer_fail=0.95)  # this shared CPU is not a fleet of H100s


class ScriptedGpu:
    """A CPU backend that says it is an H100 with a UUID the scripted NVML knows."""

    def __init__(self, index: int) -> None:
        self._cpu = CpuBackend(1)
        self.label = f"cuda:{index}"
        self._uuid = UUIDS[index]

    def facts(self) -> DeviceFacts:
        identity = GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132)
        return DeviceFacts("cuda", self.label, identity, {"uuid": self._uuid})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cpu, name)


def test_a_gpu_lost_mid_run_fails_and_the_other_is_still_reported(monkeypatch, tmp_path):
    lost = FakeGpu(uuid=UUIDS[1], temperature_c=FailAfter(40, 1, NVML_ERROR_GPU_IS_LOST))
    install(monkeypatch, FakePynvml([FakeGpu(uuid=UUIDS[0]), lost]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    records = []
    for index in (0, 1):
        backend = ScriptedGpu(index)
        record, job_outcome, skip = check_device(Job(), backend, SETTINGS, LENIENT, expect_gpus=2)
        assert job_outcome is None and skip is None  # one rank each: no allreduce
        records.append(record)
    records[1].rank = 1  # as if they were two ranks of one job
    for row in records[1].rows:
        row.rank = 1
    options = Options(SETTINGS, LENIENT, baselines_root=tmp_path)
    outcome = evaluate(records, None, None, 2, options)
    assert outcome.summary.by_device["rank 0 cuda:0"] == PASS
    assert outcome.summary.by_device["rank 1 cuda:1"] == FAIL
    assert exit_code(outcome.rows) == 1
    rows = {(r.rank, r.name): r for r in outcome.rows}
    assert rows[(1, "gpu responds")].verdict == FAIL
    assert "lost under load" in rows[(1, "gpu responds")].value
    # GPU 0 was read under load (during the canary's burst) and judged on that reading
    assert rows[(0, "pcie link generation")].reason == "at its maximum, read under load"
    assert rows[(0, "matmul vs peers")].verdict == PASS
    assert rows[(0, "canary vs peers")].verdict == PASS  # identical bytes on both
    assert rows[(0, "driver version")].value == "550.54.15"
    assert rows[(None, "gpu count")].verdict == PASS  # 2 GPUs, as --expect-gpus said
    assert outcome.by_rank() == {"0": PASS, "1": FAIL, "job": PASS}
    assert tuple(records[0].readings["load"]["pcie_gen"]) == (5, None)


@pytest.mark.parametrize(("expect", "verdict"), [(None, FAIL), (3, FAIL), (1, PASS)])
def test_the_gpu_count_against_cuda_or_the_expected_count(monkeypatch, expect, verdict):
    install(monkeypatch, FakePynvml([FakeGpu(uuid=UUIDS[0])]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    record, _, _ = check_device(Job(), ScriptedGpu(0), SETTINGS, LENIENT, expect_gpus=expect)
    (count,) = [r for r in record.rows if r.name == "gpu count"]
    assert count.verdict == verdict  # without --expect-gpus: NVML sees 1, CUDA (none here) 0
