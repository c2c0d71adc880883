"""Properties of the collective and iteration models, and of calibration, on CPU."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.projection import collectives as coll
from bench.projection.calibration import CalibrationError, fit, fit_inter_node, table
from bench.projection.iteration import Compute, ConfigError, Parallel, layout, step
from bench.projection.models import PRESETS, Model, preset
from bench.projection.project import project

SIZES = st.floats(min_value=1e3, max_value=1e10)
NODES = st.integers(min_value=2, max_value=2048)


def dp_time(alpha: float, eta: float, size: float, nodes: int) -> float:
    fab = coll.Fabric(net_alpha_s=alpha, eta_net=eta)
    return coll.allreduce(size, nodes, 1, fab).time_s


@settings(max_examples=60, deadline=None)
@given(SIZES, NODES, st.floats(1e-6, 1e-4), st.floats(1.01, 3.0))
def test_dp_time_is_monotone_in_latency(size, nodes, alpha, factor):
    assert dp_time(alpha * factor, 0.9, size, nodes) >= dp_time(alpha, 0.9, size, nodes)


@settings(max_examples=60, deadline=None)
@given(SIZES, NODES, st.floats(0.3, 0.99), st.floats(0.5, 0.99))
def test_dp_time_is_monotone_in_inverse_bandwidth(size, nodes, eta, factor):
    assert dp_time(14e-6, eta * factor, size, nodes) >= dp_time(14e-6, eta, size, nodes)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 500), st.integers(1, 8))
def test_ring_latency_is_linear_in_nodes(nodes, ppn):
    fab = coll.Fabric()
    lat = [coll.ring(1e6, k * ppn, ppn, fab).latency_s for k in (nodes, nodes + 1, nodes + 2)]
    assert lat[2] - lat[1] == pytest.approx(lat[1] - lat[0], rel=1e-9)
    assert lat[1] > lat[0]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10), st.integers(1, 8))
def test_tree_latency_is_logarithmic_in_nodes(log_nodes, ppn):
    fab = coll.Fabric()
    lat = [
        coll.tree(1e6, (2**k) * ppn, ppn, fab).latency_s
        for k in (log_nodes, log_nodes + 1, log_nodes + 2)
    ]
    assert lat[2] - lat[1] == pytest.approx(lat[1] - lat[0], rel=1e-9)  # constant per doubling
    assert lat[1] - lat[0] == pytest.approx(2 * fab.net_alpha_s, rel=1e-9)


def test_algorithm_follows_size_and_group_as_nccl_does():
    fab = coll.Fabric()
    assert coll.allreduce(1e6, 1024, 8, fab).algorithm == "tree"  # small, many nodes
    assert coll.allreduce(16 * 2**30, 32, 8, fab).algorithm == "ring"  # huge, few nodes
    assert coll.allreduce(1e6, 8, 8, fab).algorithm in ("ring", "tree")  # one node
    nvls = coll.Fabric(nvls_busbw=480e9)
    assert coll.allreduce(2**30, 8, 8, nvls).algorithm == "nvls"


def test_two_node_calibration_is_refused_and_three_is_fitted():
    sizes, times = [2**20, 2**24, 2**28], [1e-4, 1e-3, 1e-2]
    with pytest.raises(CalibrationError, match="2 node"):
        fit_inter_node("allreduce", 16, sizes, times, nodes=2)
    assert fit_inter_node("allreduce", 24, sizes, times, nodes=3).nodes == 3


def test_least_squares_recovers_alpha_and_bandwidth_with_residuals():
    alpha, bw, n = 20e-6, 100e9, 8
    sizes = [2**k for k in range(10, 31, 4)]
    times = [alpha + 2 * (n - 1) / n * s / bw for s in sizes]
    f = fit("allreduce", n, sizes, times)
    assert f.alpha_s == pytest.approx(alpha, rel=1e-6)
    assert f.busbw == pytest.approx(bw, rel=1e-6)
    assert f.max_residual < 1e-9
    with pytest.raises(CalibrationError, match="one message size"):
        fit("allreduce", n, [2**20, 2**20], [1e-3, 1e-3])


def test_efficiency_table_interpolates_and_tops_at_the_ceiling():
    t = table([(1e6, 10e9), (1e9, 50e9)], peak=100e9, ceiling=80e9)
    assert t(1e6) == pytest.approx(0.1)
    assert 0.1 < t(3e7) < 0.5
    assert t(1e12) == pytest.approx(0.8)  # beyond the largest measured shape: the ceiling
    assert t(1e3) == pytest.approx(0.1)


def test_model_flops_match_megatron_for_a_gpt():
    m = PRESETS["gpt3-175b"]
    h, layers, s, v = m.hidden, m.layers, m.seq, m.vocab
    megatron_mfu = 72 * s * layers * h * h * (1 + s / (6 * h)) + 6 * s * h * v  # per sequence
    assert m.model_flops_per_token() * s == pytest.approx(megatron_mfu, rel=1e-9)
    assert m.hardware_flops_per_token("full") > m.model_flops_per_token()
    assert 170e9 < m.params < 180e9


def test_bubble_is_p_minus_one_over_v_m():
    m = PRESETS["gpt3-175b"]
    comp = Compute(1e15, lambda f: 0.5, lambda f: 0.5)
    for vp in (1, 2, 4):
        s = step(1536, m, Parallel(8, 12, 1536, vp=vp), comp, coll.Fabric())
        per_mb = (s.terms["compute"] + s.terms["tp"]) / s.microbatches
        assert s.terms["bubble"] == pytest.approx(11 / vp * per_mb)


def test_layout_errors_name_n():
    m = PRESETS["gpt3-175b"]
    with pytest.raises(ConfigError, match="N=100 is not divisible"):
        layout(100, m, Parallel(8, 8, 1024))
    with pytest.raises(ConfigError, match="N=16384: 4 microbatches"):
        layout(16384, m, Parallel(8, 8, 1024))


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ValueError, match="llama3-405b"):
        preset("gpt5")
    with pytest.raises(ValueError, match="positive"):
        Model("x", 0, 1024, 8, 2048, 1000)


def test_efficiency_never_rises_when_compute_efficiency_is_flat():
    comp = Compute(1e15, lambda f: 0.5, lambda f: 0.5)
    ns = [1024 * 2**k for k in range(5)]
    out = project(ns, PRESETS["gpt3-175b"], Parallel(8, 8, 4096), comp, coll.Fabric())
    for band in ("optimistic", "nominal", "pessimistic"):
        e = [r["efficiency"] for r in out["rows"] if r["band"] == band]
        assert all(b <= a + 1e-12 for a, b in pairwise(e))
    nominal = {r["n_gpus"]: r for r in out["rows"] if r["band"] == "nominal"}
    pess = {r["n_gpus"]: r for r in out["rows"] if r["band"] == "pessimistic"}
    assert all(pess[n]["mfu"] <= nominal[n]["mfu"] for n in ns)
    assert all(math.isfinite(r["step_s"]) for r in out["rows"])
    assert out["knee"]["nominal"] in ns
