"""`flopwatt run --power amdsmi` end to end on this CPU through the fake amdsmi.

There is no ROCm device here, so the only honest run folder the AMD power path can produce is
a synthetic one: the kernels run on the CPU, the energy comes from the fake's scripted
MI300X, and run.json says `synthetic: true` with the reason. With the real module (a fake
without the FLOPWATT_SYNTHETIC mark stands in for it) or without amdsmi, `--power amdsmi`
on a CPU is bad input: one line, exit 2, nothing written.
"""

import sys

from fake_amdsmi import Accumulator, FakeAmdGpu, FakeAmdsmi, install

from bench.cli import main
from bench.results.record import load_run

FAST = ["--device", "cpu", "--timeout-s", "1", "--min-time-s", "0.05", "--warmup-s", "0.05"]
RUN = [*FAST, "--shape", "32x32x32", "--dtype", "fp32", "--idle-s", "0"]
ENERGY = ["--energy-window-s", "0.2", "--energy-ramp-s", "0"]


class RealLikeAmdsmi(FakeAmdsmi):
    """The fake without its synthetic mark: behaves as the real module would on this host."""

    FLOPWATT_SYNTHETIC = None


def test_run_through_the_fake_writes_a_synthetic_folder(tmp_path, monkeypatch, capsys):
    gpu = FakeAmdGpu(energy_accumulator=Accumulator(300.0), current_socket_power=300)
    install(monkeypatch, FakeAmdsmi([gpu]))
    code = main(["run", *RUN, *ENERGY, "--power", "amdsmi", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "SYNTHETIC, not a measurement" in out
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = load_run(folder)
    assert run.meta["synthetic"] is True
    assert "fake" in run.meta["synthetic_reason"] and "cpu" in run.meta["synthetic_reason"]
    assert run.meta["power_source"]["name"] == "amdsmi"
    case = run.cases.iloc[0]
    assert case["identity.status"] == "ok"
    assert case["energy.energy_source"] == "amdsmi_energy_counter"
    window = case["energy.window_s"]
    assert abs(case["energy.energy_j"] / window - 300.0) < 30.0  # the fake's 300 W
    assert abs(case["energy.energy_counter_vs_integral"] - 1.0) < 0.1


def test_amdsmi_on_a_cpu_with_the_real_module_is_bad_input(tmp_path, monkeypatch, capsys):
    install(monkeypatch, RealLikeAmdsmi([FakeAmdGpu()]))
    code = main(["run", *RUN, "--power", "amdsmi", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("flopwatt: error: --power amdsmi:") and "ROCm device" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_amdsmi_without_the_module_is_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    code = main(["run", *RUN, "--power", "amdsmi", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "cannot import amdsmi" in err and "pip install amdsmi" in err
