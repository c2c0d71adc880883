"""Collectives on one GPU (NCCL, a group of one). Skipped without a GPU."""

import pytest

from bench.devices import get_backend
from bench.execution.context import CaseContext
from bench.execution.job import Job
from bench.execution.ranks import SINGLE
from bench.execution.runner import run_case
from bench.measuring.timing import Policy
from bench.peaks.lookup import link_peak
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
        CaseContext(
            backend=backend,
            power=None,
            policy=SHORT,
            peak_for=None,
            link_peak=link_peak(backend.facts().identity),
        ),
    )
    r = out.result
    assert r.identity.status == "ok", r.identity.reason
    assert (
        r.collective.wrong_elements == 0
        and r.collective.bus_factor == 0
        and r.collective.busbw_bytes_per_s == 0
    )
    assert r.collective.algbw_bytes_per_s > 0 and r.timing.time_mean_s > 0
    assert r.collective.link_utilisation is None
