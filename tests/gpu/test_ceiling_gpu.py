"""Measured ceilings on a real GPU, kept to a few seconds. Skipped without one;
scripts/gpu-check.sh runs it before its own (longer) ceiling step."""

from dataclasses import replace

import pytest
import torch

from bench.commands.ceiling.measure import MatmulProbe, measure_memory, unsupported_dtype
from bench.commands.ceiling.presets import get_preset
from bench.commands.ceiling.search import search
from bench.devices import get_backend
from bench.peaks.lookup import resolve_peak
from kernels import matmul

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    backend = get_backend("cuda")
    yield backend
    backend.close()


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_refresh_rewrites_the_output_in_place_on_the_gpu(cuda, dtype):
    case = matmul.make_case({"m": 1024, "n": 1024, "k": 1024}, dtype, cuda.label)
    if matmul.unsupported_reason(case, cuda.facts()):
        pytest.skip(matmul.unsupported_reason(case, cuda.facts()))
    prepared = matmul.prepare(case, cuda.torch_device())
    out = prepared.run()
    product = out.clone()
    prepared.refresh()
    assert not torch.equal(out, product)
    prepared.run()
    assert torch.equal(out, product)


@pytest.mark.slow
def test_a_short_bf16_search_lands_below_the_spec_peak(cuda):
    if unsupported_dtype(cuda, "bf16", (4096, 4096, 4096)):
        pytest.skip("no bf16 on this GPU")
    preset = get_preset("cuda", "quick")
    space = replace(preset.space, seeds=((4096, 4096, 4096), (8192, 8192, 8192)), sweeps=0)
    probe = MatmulProbe(cuda, "bf16", preset.point)
    result = search(probe, space, 2.0)
    best = result.best
    assert best is not None and result.points, result.skipped
    peak = resolve_peak(cuda.facts().identity, "bf16").ops_per_s
    if peak:
        assert 0.5 * peak <= best.median_ops_per_s <= peak
    assert best.max_ops_per_s >= best.median_ops_per_s >= best.mean_ops_per_s * 0.9
    assert probe.check(best.shape)["ok"]


@pytest.mark.slow
def test_memory_bandwidth_is_a_plausible_fraction_of_the_spec(cuda):
    preset = get_preset("cuda", "quick")
    quick = replace(preset, memory=replace(preset.memory, timeout_s=1.0, warmup_max_s=0.3))
    memory = measure_memory(cuda, quick)
    copy, read = memory.kernels["copy"], memory.kernels["read"]
    assert copy.buffer_bytes >= 8 * (memory.cache_bytes or 0)
    if memory.spec_bytes_per_s:
        assert 0.5 < copy.frac_of_spec <= 1.0 and 0.5 < read.frac_of_spec <= 1.0
    assert memory.roof_bytes_per_s == max(copy.bytes_per_s, read.bytes_per_s)
