"""Every report plot rendered with real matplotlib and read back from its Figure and Axes:
axis labels, what the tick formatters print, limits on whole decades, points on log axes,
one colour per device across plots, tick labels that do not overlap at the report's width."""

import itertools
import math

import pytest
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from run_copies import DATA
from vendor_runs import write_run

from bench.commands.report import plots, vendor_plots
from bench.commands.report.axes import decades, device_colours
from bench.commands.report.build import memory_roof
from bench.commands.report.chain import Costs
from bench.commands.report.vendor import compare, devices_of
from bench.results.frame import case_dicts, run_label
from bench.results.record import load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    return [load_run(write_run("mi300x", root)), load_run(write_run("h200", root))]


@pytest.fixture(scope="module")
def data(runs):
    return [(run, case_dicts(run)) for run in runs]


@pytest.fixture(scope="module")
def colours(runs):
    return device_colours(run_label(r) for r in runs)


@pytest.fixture(scope="module")
def comparison(runs):
    return compare(devices_of(runs), Costs(1.3, 0.12, {"mi300x": 2.1, "h200": 3.5}))


def _is_decade(value):
    return math.isclose(math.log10(value), round(math.log10(value)), abs_tol=1e-9)


def _shown(fig, axis):
    """The tick labels drawn inside the axis' limits, after a draw."""
    fig.canvas.draw()
    lo, hi = sorted(axis.get_view_interval())
    ticks = zip(axis.get_majorticklocs(), axis.get_majorticklabels(), strict=True)
    return [t for loc, t in ticks if lo <= loc <= hi and t.get_text()]


def _tick_texts(fig, axis):
    return [t.get_text() for t in _shown(fig, axis)]


def _no_overlap(fig, axis):
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in _shown(fig, axis)]
    for a, b in itertools.pairwise(boxes):
        assert not a.overlaps(b), (a, b)
    width = fig.get_size_inches()[0] * fig.dpi
    assert all(b.x1 <= width + 1 for b in boxes)


def test_decades_round_out_to_whole_powers_of_ten():
    assert decades(140e9, 221e9) == (1e11, 1e12)
    assert decades(1e12, 1e12) == (1e12, 1e13)
    assert decades(0.3, 4000) == (0.1, 1e4)
    with pytest.raises(ValueError):
        decades(0, 1)


def test_peak_plot_draws_points_on_whole_decades_in_si_units(data, colours):
    fig, note = plots.peak_figure(data, colours)
    ax = fig.axes[0]
    assert note == "" and ax.get_xscale() == "log" and not ax.patches  # points, no bars
    lo, hi = ax.get_xlim()
    assert _is_decade(lo) and _is_decade(hi) and lo <= 600e12 and hi >= 2614.9e12
    assert ax.xaxis.get_major_formatter()(1e15) == "1 PFLOP/s"
    texts = _tick_texts(fig, ax.xaxis)
    assert texts == ["100 TFLOP/s", "1 PFLOP/s", "10 PFLOP/s"]
    assert ax.get_xlabel() == "achieved rate (median per call)"
    _no_overlap(fig, ax.xaxis)


def test_roofline_spans_a_decade_below_the_ridge_to_above_the_peak(data, colours, runs):
    roofs = {run_label(r): memory_roof(r.meta) for r in runs}
    fig, note = plots.roofline_figure(data, roofs, colours)
    assert note == ""
    for ax, bw, peak in zip(fig.axes, (5300e9, 4800e9), (2614.9e12, 1978.9e12), strict=True):
        (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
        assert all(_is_decade(v) for v in (x_lo, x_hi, y_lo, y_hi))
        ridge = peak / bw
        assert x_lo <= ridge / 10 and x_hi >= ridge * 10 and y_hi > peak
        assert ax.xaxis.get_major_formatter()(100) == "100 op/B"
        assert ax.yaxis.get_major_formatter()(1e15) == "1 PFLOP/s"
        labels = [line.get_label() for line in ax.get_lines()]
        assert any(label.startswith("memory roof") and "datasheet" in label for label in labels)
        _no_overlap(fig, ax.xaxis)


def test_a_cpu_roofline_uses_the_measured_bandwidth_labelled_measured():
    cpu = load_run(DATA / "cpu-run")
    meta = {**cpu.meta, "ceiling": {"source": "stored", "memory_roof_bytes_per_s": 10.8e9}}
    bw, source = memory_roof(meta)
    assert bw == 10.8e9 and source.startswith("measured")
    assert memory_roof(cpu.meta)[0] is None  # no ceiling, no datasheet: no roof
    data = [(cpu, case_dicts(cpu))]
    fig, note = plots.roofline_figure(data, {run_label(cpu): (bw, source)}, {})
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "memory roof 10.8 GB/s (measured)" in labels and note == ""


def test_per_watt_bars_start_at_zero_in_si_units(data, colours):
    fig, _ = plots.per_watt_figure(data, colours)
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    assert ax.xaxis.get_major_formatter()(1.5e12) == "1.5 TFLOP/J"
    _no_overlap(fig, ax.xaxis)


def test_busbw_and_scaling_and_trace_of_the_gpu_fixture(colours):
    gpu = load_run(DATA / "gpu-run")
    data = [(gpu, case_dicts(gpu))]
    fig, _ = plots.busbw_figure(data, colours)
    ax = fig.axes[0]
    assert ax.yaxis.get_major_formatter()(300e9) == "300 GB/s"
    assert ax.xaxis.get_major_formatter()(1 << 30, 0) == "1 GiB"
    assert ax.get_ylim()[0] == 0 and ax.get_ylabel() == "bus bandwidth"
    _no_overlap(fig, ax.xaxis)
    fig, _ = plots.scaling_figure(data, colours)
    ax = fig.axes[0]
    assert ax.yaxis.get_major_formatter()(0.9, 0) == "90%" and ax.get_ylim()[0] == 0
    fig, _ = plots.trace_figure(data, colours)
    assert [a.get_ylabel() for a in fig.axes][:1] == ["power"]
    assert fig.axes[0].yaxis.get_major_formatter()(640) == "640 W"


def test_each_device_has_one_colour_on_every_plot(data, colours, comparison, runs):
    mi300x = colours[run_label(runs[0])]
    assert mi300x != colours[run_label(runs[1])]
    peak_fig, _ = plots.peak_figure(data, colours)
    achieved = [
        line.get_color() for line in peak_fig.axes[0].get_lines() if line.get_marker() == "o"
    ]
    assert achieved[:3] == [mi300x] * 3  # the MI300X's three compute cases come first
    watt_fig, _ = plots.per_watt_figure(data, colours)
    faces = {tuple(p.get_facecolor()) for p in watt_fig.axes[0].patches if isinstance(p, Rectangle)}
    from matplotlib.colors import to_rgba

    assert to_rgba(mi300x) in faces
    rate_fig, _ = vendor_plots.rate_figure(comparison, colours)
    drawn = {line.get_color() for line in rate_fig.axes[0].get_lines()}
    assert drawn == set(colours.values())
    legend = rate_fig.legends[0]
    handles = [h for h in legend.legend_handles if isinstance(h, PathCollection)]
    assert tuple(handles[0].get_facecolor()[0]) == to_rgba(mi300x)


def test_vendor_plots_axes(comparison, colours):
    fig, _ = vendor_plots.fractions_figure(comparison, colours)
    spec, ceiling = fig.axes[:2]
    assert spec.get_xlim()[0] == 0 and spec.get_xlim()[1] >= 1.05
    assert spec.xaxis.get_major_formatter()(0.5, 0) == "50%"
    assert spec.get_xlabel() == "% of spec peak" and "measured ceiling" in ceiling.get_xlabel()
    fig, _ = vendor_plots.energy_figure(comparison, colours)
    lo, hi = fig.axes[0].get_xlim()
    assert _is_decade(lo) and _is_decade(hi) and fig.axes[0].get_xscale() == "log"
    fig, _ = vendor_plots.cost_figure(comparison, colours)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == 0 and ax.xaxis.get_major_formatter()(0.2, 0) == "$0.2"
    assert "USD per 10^18 operations" in ax.get_xlabel()
    _no_overlap(fig, ax.xaxis)


def test_no_cost_input_no_cost_plot(runs, colours):
    bare = compare(devices_of(runs), Costs())
    fig, note = vendor_plots.cost_figure(bare, colours)
    assert fig is None and "--usd-per-gpu-hour" in note


def test_dtypes_that_share_a_peak_share_one_labelled_roof(colours):
    gpu = load_run(DATA / "gpu-run")
    fig, _ = plots.roofline_figure([(gpu, case_dicts(gpu))], {run_label(gpu): (3.35e12, "x")}, {})
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "bf16, fp16 peak 989 TFLOP/s" in texts
    assert len(texts) == len(set(texts)) == 4  # bf16+fp16, fp8, tf32, fp32
