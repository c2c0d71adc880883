"""kernels.scaling without launching: subgroup sizes, step strings, the efficiency formulas."""

import pytest

from bench.measuring import metrics
from kernels import scaling
from kernels.spec import AxisError


@pytest.mark.parametrize(
    ("world", "counts"),
    [(1, [1]), (2, [1, 2]), (4, [1, 2, 4]), (6, [1, 2, 4, 6]), (8, [1, 2, 4, 8])],
)
def test_rank_counts(world, counts):
    assert scaling.rank_counts(world) == counts


def test_step_strings():
    assert scaling.parse_shape("8192x8192x8192/2Gi") == {
        "m": 8192,
        "n": 8192,
        "k": 8192,
        "grad_bytes": 2 * 2**30,
    }
    for bad in ("8192x8192/2Gi", "8x8x8", "0x8x8/1Mi", "8x8x8/1T"):
        with pytest.raises(AxisError, match=f"^step {bad!r}|^size"):
            scaling.parse_shape(bad)


def case(mode):
    return scaling.make_case(
        scaling.parse_shape("100x10x10/1Mi"),
        "fp32",
        "cpu",
        options={"scaling": mode, "overlap": "seq"},
    )


def rows(mode, times):
    return [scaling._row(case(mode), n, [(t, t / 2, t / 4)] * n) for n, t in times]


def test_weak_scaling_is_throughput_over_n_times_one_rank():
    rs = rows("weak", [(1, 1.0), (2, 1.25), (4, 2.0)])
    scaling._add_efficiency(case("weak"), rs)
    assert [r["efficiency"] for r in rs] == [1.0, 0.8, 0.5]  # T(1)/T(N) with fixed work
    assert rs[2]["throughput_ops_per_s"] == 4 * scaling.ops(case("weak")) / 2.0


def test_strong_scaling_is_t1_over_n_tn():
    rs = rows("strong", [(1, 1.0), (2, 0.625), (4, 0.5)])
    scaling._add_efficiency(case("strong"), rs)
    assert [r["efficiency"] for r in rs] == [1.0, 0.8, 0.5]
    assert rs[1]["comm_share"] == pytest.approx(0.25)
    assert rs[1]["busbw_bytes_per_s"] == metrics.busbw(2**20, 0.625 / 4, "allreduce", 2)


def test_slowest_and_fastest_rank_are_named():
    row = scaling._row(case("weak"), 3, [(1.0, 0.5, 0.1), (1.3, 0.5, 0.1), (0.9, 0.5, 0.1)])
    assert (row["slowest_rank"], row["fastest_rank"]) == (1, 2)
    assert row["step_time_s"] == 1.3 and row["rank_spread"] == pytest.approx(0.4 / 1.3)


def test_scaling_efficiency_formulas_propagate_unknowns():
    assert metrics.weak_scaling_efficiency(None, 1.0, 2) is None
    assert metrics.strong_scaling_efficiency(1.0, 0.0, 2) is None
