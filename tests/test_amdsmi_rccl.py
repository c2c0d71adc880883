"""Allreduce over RCCL, judged on CPU: the published 8x MI300X anchor, the NUMA-balancing
and arch-spoofing warnings of a ROCm run."""

import pandas as pd

from bench.commands.plausibility import allreduce_problems
from bench.execution.session import run_warnings


def cases(busbw, nbytes=2**30, world=8):
    return pd.DataFrame(
        [
            {
                "identity.params.collective": "allreduce",
                "identity.status": "ok",
                "identity.world_size": world,
                "identity.dtype": "bf16",
                "identity.params.shape_label": "1Gi allreduce out",
                "identity.params.bytes_requested": nbytes,
                "collective.busbw_bytes_per_s": busbw,
            }
        ]
    )


def test_mi300x_allreduce_is_judged_against_the_published_busbw():
    assert allreduce_problems(cases(315e9), "Instinct MI300X") == []
    (low,) = allreduce_problems(cases(200e9), "Instinct MI300X")
    assert "200 GB/s" in low and "310-319" in low and "RCCL 2.22.3" in low
    assert allreduce_problems(cases(400e9), "Instinct MI300X")  # above: a formula error
    assert allreduce_problems(cases(200e9, nbytes=2**20), "Instinct MI300X") == []  # < 1 GiB
    assert allreduce_problems(cases(200e9, world=4), "Instinct MI300X") == []  # no anchor
    assert allreduce_problems(cases(200e9), "H100 SXM5 80GB") == []


def rocm_env(numa, spoof=None):
    return {
        "software": {"torch_hip": "6.4.43482", "nccl": "2.22.3", "collective_library": "RCCL"},
        "host": {"numa_balancing": numa},
        "env_vars": {"HSA_OVERRIDE_GFX_VERSION": spoof},
    }


def test_numa_balancing_warns_on_multi_gpu_rocm_runs_only():
    (note,) = run_warnings(rocm_env(True), world_size=8)
    assert "numa_balancing" in note and "RCCL" in note
    assert run_warnings(rocm_env(True), world_size=1) == []
    assert run_warnings(rocm_env(False), world_size=8) == []
    cuda = {"software": {"torch_hip": None}, "host": {"numa_balancing": True}}
    assert run_warnings(cuda, world_size=8) == []


def test_a_spoofed_gfx_version_is_flagged():
    (note,) = run_warnings(rocm_env(False, "9.4.2"), world_size=1)
    assert "HSA_OVERRIDE_GFX_VERSION=9.4.2" in note
