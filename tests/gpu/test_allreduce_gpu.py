"""Collectives on one GPU (NCCL, a group of one). Skipped without a GPU."""

import pytest

from bench.devices import get_backend
from bench.execution.ranks import SINGLE
from bench.execution.job import Job
from bench.peaks.lookup import link_peak
from bench.execution.runner import run_case
from bench.measuring.timing import Policy
from kernels import allreduce

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
SHORT = Policy(warmup_min_s=0.2, warmup_max_s=1.0, min_time_s=0.2, timeout_s=1.0)


@pytest.fixture(scope="module")
def cuda_job():
    backend = get_backend("cuda")
    job = Job.open(SINGLE, "cuda", 60.0, needs_group=True)
    yield backend, job
    job.close()
    backend.close()


@pytest.mark.parametrize("collective", ["allreduce", "allgather", "reduce_scatter"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_world_of_one_reports_degenerate_figures(cuda_job, collective, dtype):
    backend, _ = cuda_job
    case = allreduce.make_case(
        {"bytes": 64 * 2**20},
        dtype,
        backend.label,
        options={"collective": collective, "place": "out"},
    )
    out = run_case(
        case,
        "gpu-ar",
        allreduce,
        backend,
        None,
        SHORT,
        None,
        link_peak=link_peak(backend.facts().identity),
    )
    r = out.result
    assert r.status == "ok", r.reason
    assert r.wrong_elements == 0 and r.bus_factor == 0 and r.busbw_bytes_per_s == 0
    assert r.algbw_bytes_per_s > 0 and r.time_mean_s > 0
    assert r.link_utilisation is None
