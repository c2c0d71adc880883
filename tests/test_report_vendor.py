"""The vendor comparison section on an MI300X-shaped (synthetic) and an H200-shaped run.

Every number the section shows is recomputed here from vendor_runs' inputs by hand: rates,
fractions with their denominators, ops per joule, and both parts of the cost.
"""

import json
import re
import shutil
import subprocess

import pytest
from run_copies import DATA
from test_report import DECODED_SIZES, NO_CHROMIUM
from vendor_runs import BUSBW, FIGURES, write_run

from bench.cli import main
from bench.commands.report.build import build_report
from bench.commands.report.caveats import caveats
from bench.commands.report.chain import Costs
from bench.commands.report.vendor import compare, devices_of, resolve_prices
from bench.results.record import load_run

PRICES = {"MI300X": 2.10, "h200": 3.50}
COSTS = Costs(pue=1.3, usd_per_kwh=0.12, usd_per_gpu_hour=PRICES)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("vendor")
    return {name: write_run(name, root) for name in ("mi300x", "h200")}


@pytest.fixture(scope="module")
def runs(folders):
    return [load_run(folders["mi300x"]), load_run(folders["h200"])]


@pytest.fixture(scope="module")
def comparison(runs):
    return compare(devices_of(runs), COSTS)


@pytest.fixture(scope="module")
def text(runs):
    return build_report(runs, COSTS, plots=False).markdown()


def _entry(comparison, name, dtype):
    for _, entries in comparison.compute:
        for e in entries:
            same = e.case["dtype"] == dtype and e.device.run.path.name == name
            if same and e.case["params"]["m"] == 8192:
                return e
    raise AssertionError(f"no {name} {dtype} entry")


def test_the_section_appears_only_for_different_devices(runs, text):
    assert "## Vendor comparison" in text
    alone = build_report([runs[0]], Costs(1.3, 0.12, {"MI300X": 2.1}), plots=False).markdown()
    assert "Vendor comparison" not in alone
    # one run: the hardware-time cost joins its efficiency chain, and it says it is synthetic
    assert f"| hardware time per 10^18 FLOP | ${1e18 / 1100e12 / 3600 * 2.1:.4g} |" in alone
    assert "is synthetic (fake amdsmi (CPU CI))" in alone


def test_only_identical_cases_are_side_by_side(comparison):
    labels = [label for label, _ in comparison.rows]
    assert labels == [
        "matmul 8192x8192x8192 bf16",
        "matmul 8192x8192x8192 fp8",
        f"allreduce {1 << 30}B bf16 n=8",
    ]
    assert all(len(entries) == 2 for _, entries in comparison.rows)


@pytest.mark.parametrize("name", ["mi300x", "h200"])
@pytest.mark.parametrize("dtype", ["bf16", "fp8"])
def test_rates_fractions_and_costs_follow_from_the_inputs(comparison, name, dtype):
    achieved, peak, ceiling, opj, net = FIGURES[name][dtype]
    e = _entry(comparison, name, dtype)
    assert e.case["achieved_ops_per_s"] == achieved
    assert (e.case["ops_per_j"], e.case.get("net_ops_per_j")) == (opj, net)
    assert e.case["frac_of_peak"] == pytest.approx(achieved / peak)
    assert e.case["peak_ops_per_s"] == peak and e.case["peak_source"] == "datasheet"
    value, frac, where = e.ceiling()
    if ceiling is None:
        assert value is None and frac is None and "no stored ceiling" in where
    else:
        assert (value, where) == (ceiling, "stored")
        assert frac == pytest.approx(achieved / ceiling)
    # energy: 10^18 ops / (ops/J) joules, x PUE, in kWh (3.6e6 J), x $/kWh
    energy = 1e18 / opj * 1.3 / 3.6e6 * 0.12
    # hardware: 10^18 ops / rate seconds, in hours, x one device x $/device-hour
    price = PRICES["MI300X" if name == "mi300x" else "h200"]
    hardware = 1e18 / achieved / 3600 * price
    assert e.cost.energy_usd == pytest.approx(energy)
    assert e.cost.hardware_usd == pytest.approx(hardware)
    assert e.cost.total_usd == pytest.approx(energy + hardware)


def test_the_tables_show_each_fraction_beside_its_denominator(text):
    row = next(
        line
        for line in text.splitlines()
        if line.startswith("| matmul 8192x8192x8192 bf16 | AMD Instinct MI300X")
        and "datasheet" in line
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:9] == [
        "600 TFLOP/s",
        f"{600 / 1307.4:.1%}",
        "1.31 PFLOP/s (datasheet)",
        f"{600 / 650:.1%}",
        "650 TFLOP/s (stored)",
        "900 GFLOP/J",
        "1.2 TFLOP/J",
    ]
    cost = next(
        line
        for line in text.splitlines()
        if line.startswith("| matmul 8192x8192x8192 bf16 | NVIDIA H200") and "$" in line
    )
    energy, hardware = 1e18 / 1.2e12 * 1.3 / 3.6e6 * 0.12, 1e18 / 750e12 / 3600 * 3.5
    assert f"${energy:.4g}" in cost and f"${hardware:.4g}" in cost
    assert f"${energy + hardware:.4g}" in cost
    assert "PUE 1.3, $0.12/kWh" in text and "$3.5/h" in text


def test_busbw_side_by_side(text):
    for name, device in (("mi300x", "AMD Instinct MI300X"), ("h200", "NVIDIA H200")):
        busbw, link = BUSBW[name]
        row = next(
            line for line in text.splitlines() if line.startswith("| allreduce") and device in line
        )
        assert f"{busbw / 1e9:.3g} GB/s" in row and f"{busbw / link:.1%}" in row


def test_published_achievable_figures_are_notes_never_denominators(comparison, text):
    assert "Reference (not a denominator): Instinct MI300X bf16 708 TFLOP/s" in text
    denominators = {e.case.get("peak_ops_per_s") for _, es in comparison.rows for e in es}
    denominators |= {e.ceiling()[0] for _, es in comparison.rows for e in es}
    assert 708e12 not in denominators


def test_the_software_stack_stands_next_to_the_table(text):
    stack = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]]
        for line in text.splitlines()
        if line.startswith("| ") and line.count("|") == 4
    }
    assert stack["fp8 format"] == ["e4m3fnuz", "e4m3fn"]
    assert stack["HIP (torch build)"] == ["6.2.41133", "unknown (not a ROCm build)"]
    assert stack["BLAS library"] == ["hipBLASLt", "not recorded"]
    assert stack["collective library"] == ["RCCL", "NCCL"]
    assert stack["driver"] == ["6.8.5", "550.54.15"]
    assert stack["synthetic"] == ["yes", "not recorded"]


def test_caveats_come_from_the_data(comparison):
    lines = caveats(comparison)
    joined = "\n".join(lines)
    assert "is synthetic (fake amdsmi (CPU CI))" in joined
    assert "fp8 formats differ" in joined and "e4m3fnuz" in joined
    assert "clock below the spec clock" in joined and f"{1.2 / 2.1:.0%}" in joined
    assert "throttling seen" in joined and "power (PVIOL)" in joined
    assert "energy sensors cover different things" in joined
    assert "matmul bf16 ran at different shapes" in joined
    assert "no measured fp8 ceiling" in joined
    # nothing said that the data does not show
    assert "estimate" not in joined and "METHOD_VERSION" not in joined
    assert "CPU was busy" not in joined


def test_like_runs_give_no_format_synthetic_or_method_caveat(tmp_path, folders):
    h200 = load_run(folders["h200"])
    env = json.loads((folders["mi300x"] / "run.json").read_text())["environment"]
    env["gpu"]["fp8_format"] = "e4m3fn"
    twin = write_run("mi300x", tmp_path, synthetic=False, environment=env)
    joined = "\n".join(caveats(compare(devices_of([load_run(twin), h200]), COSTS)))
    assert "fp8 formats differ" not in joined and "synthetic" not in joined
    older = write_run("mi300x", tmp_path / "old", method_version=1)
    joined = "\n".join(caveats(compare(devices_of([load_run(older), h200]), COSTS)))
    assert "different METHOD_VERSIONs" in joined


def test_estimated_energy_busy_cpu_and_hand_given_peaks_are_said(tmp_path, folders):
    changes = {"energy_source": "estimate", "cpu_pressure": 0.4, "peak_source": "user"}
    odd = write_run("h200", tmp_path, case_changes=changes)
    lines = caveats(compare(devices_of([load_run(folders["mi300x"]), load_run(odd)]), COSTS))
    said = [line for line in lines if line.startswith("NVIDIA H200")]
    assert any("energy is an estimate" in line and "2 case(s)" in line for line in said)
    assert any("CPU was busy" in line and "40%" in line for line in said)
    assert any("spec peak given by hand (--peak)" in line for line in said)


def test_a_price_matches_the_sku_by_a_unique_part_of_its_name(runs):
    devices = devices_of(runs)
    prices = resolve_prices(devices, {"instinct-mi300x": 2.0, "H200 SXM 141GB": 3.0})
    assert sorted(prices.values()) == [2.0, 3.0]
    with pytest.raises(ValueError, match="the runs' SKUs are H200 SXM 141GB, Instinct MI300X"):
        resolve_prices(devices, {"B200": 5.0})
    with pytest.raises(ValueError, match="matches several SKUs"):
        resolve_prices(devices, {"i": 1.0})


def _one_line_exit_2(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_writes_the_section_and_its_plots(folders, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["report", str(folders["mi300x"]), str(folders["h200"]), "--out", str(out)]
    args += ["--usd-per-kwh", "0.12", "--usd-per-gpu-hour", "mi300x=2.1"]
    assert main(args) == 0
    text = (out / "report.md").read_text()
    assert "## Vendor comparison" in text and "no --usd-per-gpu-hour for this SKU" in text
    plots = {p.stem for p in (out / "plots").glob("vendor_*.png")}
    assert plots == {
        "vendor_rate",
        "vendor_fractions",
        "vendor_per_joule",
        "vendor_cost",
        "vendor_busbw",
    }


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(folders, tmp_path, capsys):
    out = tmp_path / "out"
    both = ["report", str(folders["mi300x"]), str(folders["h200"]), "--out", str(out)]
    _one_line_exit_2(
        capsys,
        [*both, "--usd-per-gpu-hour", "B200=5"],
        "--usd-per-gpu-hour B200: no run is of that SKU; the runs' SKUs are H200 SXM 141GB, "
        "Instinct MI300X",
    )
    _one_line_exit_2(capsys, [*both, "--usd-per-gpu-hour", "MI300X"], "is not SKU=PRICE")
    _one_line_exit_2(
        capsys,
        ["report", str(folders["mi300x"]), str(DATA / "cpu-run"), "--out", str(out)],
        "have no case in common",
    )
    newer = shutil.copytree(folders["mi300x"], tmp_path / "newer")
    meta = json.loads((newer / "run.json").read_text())
    (newer / "run.json").write_text(json.dumps({**meta, "schema_version": "3.0"}))
    before = {p: p.read_bytes() for p in newer.rglob("*") if p.is_file()}
    _one_line_exit_2(
        capsys,
        ["report", str(newer), str(folders["h200"]), "--out", str(out)],
        "schema version '3.0', this flopwatt reads 1.x and 2.x",
    )
    assert not out.exists()
    assert before == {p: p.read_bytes() for p in newer.rglob("*") if p.is_file()}


@pytest.mark.skipif(NO_CHROMIUM, reason="Debian's chromium not installed (CI installs it)")
def test_headless_chromium_renders_the_vendor_section(runs, tmp_path):
    report = build_report(runs, COSTS)
    page = tmp_path / "report.html"
    page.write_text(report.html().replace("</body>", DECODED_SIZES + "</body>"))
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
    assert "<h2>Vendor comparison</h2>" in dom and "fp8 formats differ" in dom
    decoded = dict(re.findall(r'<figure id="plot-([\w-]+)" data-decoded="([^"]*)"', dom))
    vendor = {name for name in decoded if name.startswith("vendor_")}
    assert vendor == {
        "vendor_rate",
        "vendor_fractions",
        "vendor_per_joule",
        "vendor_cost",
        "vendor_busbw",
    }
    for name in vendor:
        width, _, height = decoded[name].partition("x")
        assert width.isdigit() and int(width) > 100 and int(height) > 100, (name, decoded[name])
