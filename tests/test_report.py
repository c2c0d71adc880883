"""Report writers on the fixture runs: chain, tables, plots, self-contained HTML, pivot."""

import base64
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from run_copies import DATA, schema_2_copy

from bench.commands.report.build import build_report
from bench.commands.report.chain import Costs, efficiency_chain
from bench.commands.report.pytest_benchmark import to_pytest_benchmark
from bench.results.frame import case_dicts, device_pivot
from bench.results.record import load_run

GPU = DATA / "gpu-run"
CPU = DATA / "cpu-run"
EARLY = DATA / "cpu-run-early-1.0"
PLOTS = {"peak", "roofline", "per_watt", "trace", "busbw", "scaling"}


@pytest.fixture(scope="module")
def gpu_report():
    return build_report([load_run(GPU)], Costs(pue=1.3, usd_per_kwh=0.12))


class Page(HTMLParser):
    """Every tag and attribute of a page, to check what it would load."""

    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.images = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action"):
                self.urls.append(value)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def parsed(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def test_html_is_self_contained_and_every_plot_is_a_real_png(gpu_report):
    page = parsed(gpu_report.html())
    assert not {"script", "link", "iframe", "object"} & set(page.tags)
    assert page.urls and all(u.startswith("data:image/png;base64,") for u in page.urls)
    assert len(page.images) == len(PLOTS)
    for src in page.images:
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert {p.name for p in gpu_report.plots} == PLOTS


def test_gpu_chain_goes_from_peak_to_cost_with_denominators_and_sources():
    links, note = efficiency_chain(case_dicts(load_run(GPU)), Costs(pue=1.3, usd_per_kwh=0.12))
    steps = [link.step for link in links]
    assert steps[:2] == ["spec peak", "achieved"]
    assert "achieved vs clock-adjusted peak" in steps and "achieved vs measured ceiling" in steps
    assert {"ops per joule", "link utilisation", "scaling efficiency"} <= set(steps)
    cost = links[-1]
    assert cost.step == "cost per 10^18 FLOP" and cost.value.startswith("$")
    assert "estimate from your inputs: PUE 1.3" in cost.source and "$0.12/kWh" in cost.source
    achieved = links[1]
    assert "of spec peak" in achieved.ratio and "dense fp8 peak" in achieved.denominator
    assert "fp8" in note
    # By hand from the fixture's fp8 8192^3 case: 4831 calls of 2 x 8192^3 = 1.0995e12 FLOP
    # in 3200 J over 5 s, so 640 W and 4831 x 1.0995e12 / 3200 = 1.660e12 FLOP/J. At PUE 1.3,
    # 10^18 FLOP take 1.3e18 / 1.660e12 = 783 kJ = 0.2175 kWh at the wall; at $0.12 per kWh,
    # $0.02611.
    per_joule = links[steps.index("ops per joule")]
    assert per_joule.value == "1.66 TFLOP/s/W = 1.66 TFLOP/J"
    assert per_joule.denominator == "640 W average over 5 s"
    wall = links[-2]
    assert wall.value == "783 kJ = 0.2175 kWh"
    assert cost.value == "$0.02611"


def test_without_costs_the_chain_says_what_to_give():
    links, _ = efficiency_chain(case_dicts(load_run(GPU)), Costs())
    assert links[-1].value == "not estimated" and "--pue" in links[-1].source


def test_old_schema_run_reports_without_the_fields_it_never_had():
    report = build_report([load_run(EARLY)], plots=False)
    text = report.markdown()
    assert "matmul 128x128x128 fp32" in text and "ops per joule | not measured" in text


def test_several_runs_are_pivoted_side_by_side_by_device():
    runs = [load_run(GPU), load_run(CPU)]
    text = build_report(runs, plots=False).markdown()
    assert "## Devices side by side" in text
    header = next(line for line in text.splitlines() if line.startswith("| case | NVIDIA"))
    assert "NVIDIA H100 80GB HBM3" in header and "AMD EPYC" in header
    pivot = device_pivot(runs)
    assert list(pivot.columns) == [
        "NVIDIA H100 80GB HBM3 (20261120-010203-h100-fixture)",
        "AMD EPYC (20261126-082420-vm-4f92da)",
    ]
    row = pivot.loc["matmul 64x64x64 fp32"]  # measured on the CPU only
    assert row.isna().iloc[0] and row.iloc[1] == 39346191369.606


def test_a_report_of_1x_and_2x_runs_reads_as_one_of_the_same_runs_in_1x(tmp_path):
    mixed = [load_run(GPU), load_run(schema_2_copy(CPU, tmp_path / "cpu")), load_run(EARLY)]
    assert [r.meta["schema_version"] for r in mixed] == ["1.1", "2.0", "1.0"]
    old = [load_run(GPU), load_run(CPU), load_run(EARLY)]
    text = build_report(mixed, plots=False).markdown()
    assert text == build_report(old, plots=False).markdown()
    assert "## Devices side by side" in text and "matmul 64x64x64 fp32" in text


def test_pytest_benchmark_export_has_stats_extra_info_and_the_gpu():
    doc = to_pytest_benchmark(load_run(GPU))
    assert doc["machine_info"]["device_identity"]["name"] == "NVIDIA H100 80GB HBM3"
    bench = doc["benchmarks"][0]
    assert bench["stats"]["rounds"] == len(bench["stats"]["data"]) == 200
    assert bench["stats"]["min"] <= bench["stats"]["median"] <= bench["stats"]["max"]
    assert {"frac_of_peak", "ops_per_j", "avg_power_w", "sm_clock_hz_median"} <= set(
        bench["extra_info"]
    )


# Runs in every CI run: `.ci/run` installs Debian's chromium. A developer machine without it
# skips, but CI (CI=true) fails, so the check cannot silently stop running.
NO_CHROMIUM = shutil.which("chromium") is None and not os.environ.get("CI")

# Appended to a copy of the page: once everything has loaded, each figure records the decoded
# size of its image, so the dumped DOM shows whether Chromium could decode and lay it out.
DECODED_SIZES = """<script>
window.addEventListener("load", () => {
  for (const fig of document.querySelectorAll("figure")) {
    const img = fig.querySelector("img");
    fig.dataset.decoded = img && img.complete ? `${img.naturalWidth}x${img.naturalHeight}` : "none";
  }
});
</script>"""


@pytest.mark.skipif(NO_CHROMIUM, reason="Debian's chromium not installed (CI installs it)")
def test_headless_chromium_renders_every_plot(gpu_report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(gpu_report.html().replace("</body>", DECODED_SIZES + "</body>"))
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    decoded = dict(re.findall(r'<figure id="plot-([\w-]+)" data-decoded="([^"]*)"', dom))
    assert set(decoded) == PLOTS, f"figures Chromium laid out: {sorted(decoded)}"
    for name, size in decoded.items():
        width, _, height = size.partition("x")
        assert width.isdigit() and int(width) > 100 and int(height) > 100, (name, size)
