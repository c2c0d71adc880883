from bench.results.record import CaseResult
from bench.results.render import percent, rate_unit, seconds, si, summary_rows


def test_si_scaling_and_unknowns():
    assert si(795.3e12, "FLOP/s") == "795 TFLOP/s"
    assert si(1.5e9, "OP/s") == "1.5 GOP/s"
    assert si(None, "FLOP/s") == "—"
    assert seconds(1.5e-3) == "1.5 ms" and seconds(2.0) == "2 s" and seconds(3e-7) == "300 ns"
    assert percent(0.803) == "80.3%" and percent(None) == "—"
    assert rate_unit("int8") == "OP/s" and rate_unit("bf16") == "FLOP/s"


def result(**kw):
    base = dict(
        case_id="c",
        kernel="matmul",
        params={"shape_label": "8x8x8"},
        dtype="bf16",
        device="cpu",
        world_size=1,
        status="ok",
        time_median_s=1e-3,
        achieved_ops_per_s=1e9,
        rel_noise=0.01,
    )
    return CaseResult.from_leaves({**base, **kw})


def test_rows_show_denominators_and_share_identical_notes():
    why = "no native bf16 on this CPU"
    rows, notes = summary_rows(
        [
            result(peak_detail=why),
            result(peak_detail=why),
            result(status="skipped", reason="out of memory"),
            result(peak_ops_per_s=2e9, peak_source="derived", frac_of_peak=0.5),
        ]
    )
    assert notes == [f"peak unknown: {why}", "out of memory"]
    assert rows[0][-1] == rows[1][-1] == "[1]"
    assert rows[2][3] == "skipped" and rows[2][-1] == "[2]"
    assert rows[3][5:8] == ["2 GFLOP/s", "derived", "50.0%"]
