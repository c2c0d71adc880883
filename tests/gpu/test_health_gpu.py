"""Health on a real GPU: NVML answers the health reads, the canary repeats bit for bit.

Skipped without a GPU; scripts/gpu-check.sh runs it (and `flopwatt health` as its own step).
Kept to a few seconds: the full check is the script's step, not a test.
"""

from dataclasses import replace

import pytest

from bench.commands.health.device import Reads, checks_for, open_device
from bench.commands.health.model import NA, PASS, Thresholds
from bench.commands.health.probe import default_settings, measure_device
from bench.devices import get_backend
from bench.measuring.timing import Policy

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    backend = get_backend("cuda")
    yield backend
    backend.close()


def test_nvml_answers_the_health_reads_of_this_gpu(cuda):
    """NVML on NVIDIA, amdsmi on AMD (the name stays: the same reads, the vendor's library)."""
    facts = cuda.facts()
    checks = checks_for(facts)
    nvml, device, reason = open_device(facts)
    assert device is not None, reason
    try:
        reads = Reads(device, None, checks)
        reads.read_idle()
        reads.read_load()
        reads.read_after()
        rows = checks.judge(
            cuda.label, reads.idle, reads.load, reads.after, reads.lost, Thresholds()
        )
    finally:
        nvml.close()
    by_name = {row.name: row for row in rows}
    assert by_name["gpu responds"].verdict == PASS
    temperature = "temperature (idle)"
    if facts.identity.vendor == "amd":
        temperature = "temperature hotspot (idle)"
    for name in ("pcie link generation", "pcie link width", "power limit", temperature):
        assert by_name[name].verdict != NA, by_name[name]
    print("\n".join(f"{r.name}: {r.value} {r.verdict} ({r.reason})" for r in rows))


@pytest.mark.slow
def test_the_canary_repeats_bit_for_bit_and_the_link_is_read_under_load(cuda):
    quick = Policy(mode="hot", min_time_s=0.1, timeout_s=0.5, warmup_min_s=0.1, warmup_max_s=0.3)
    settings = replace(
        default_settings("cuda"),
        matmul_shape=(4096, 4096, 4096),
        copy_bytes=256 * 2**20,
        matmul_policy=quick,
        copy_policy=quick,
    )
    loaded = []
    measured = measure_device(cuda, settings, read_load=lambda: loaded.append(1))
    rows = {row.name: row for row in measured.rows}
    assert rows["matmul known answer"].verdict == PASS, rows["matmul known answer"]
    assert rows["canary repeat"].verdict == PASS, rows["canary repeat"]
    assert loaded == [1]
    matmul, copy = (o.result for o in measured.outcomes)
    assert matmul.identity.dtype == "bf16" and matmul.rates.frac_of_peak is not None, (
        matmul.rates.peak_detail
    )
    assert matmul.rates.frac_of_peak > 0.3  # 4096^3 in a 0.5 s hot window: a loose floor
    assert copy.identity.status == "ok" and copy.collective.algbw_bytes_per_s > 1e11
