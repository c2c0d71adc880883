"""CPU pressure (Linux PSI) around a measurement, and what happens where there is none."""

import time

from bench.measuring.pressure import PressureProbe, read_some_us

PSI = "some avg10=1.00 avg60=2.00 avg300=3.00 total={}\nfull avg10=0.00 total=0\n"


def test_reads_the_some_total(tmp_path):
    path = tmp_path / "cpu"
    path.write_text(PSI.format(123456))
    assert read_some_us(path) == (123456, f"Linux PSI {path} (some)")


def test_the_fraction_of_the_interval_some_task_waited(tmp_path):
    path = tmp_path / "cpu"
    path.write_text(PSI.format(1_000_000))
    probe = PressureProbe.start(path)
    time.sleep(0.05)
    path.write_text(PSI.format(1_000_000 + 25_000))  # 25 ms of stall in >= 50 ms
    fraction, source = probe.stop()
    assert 0 < fraction <= 0.5 and source.startswith("Linux PSI")


def test_no_psi_is_unknown_with_the_reason(tmp_path):
    fraction, reason = PressureProbe.start(tmp_path / "missing").stop()
    assert fraction is None and "unreadable (FileNotFoundError)" in reason
    (tmp_path / "junk").write_text("nonsense\n")
    assert read_some_us(tmp_path / "junk")[0] is None


def test_flopwatt_psi_path_names_the_file_read_instead(tmp_path, monkeypatch):
    path = tmp_path / "recorded"
    path.write_text(PSI.format(777))
    monkeypatch.setenv("FLOPWATT_PSI_PATH", str(path))
    assert read_some_us() == (777, f"Linux PSI {path} (some)")
    probe = PressureProbe.start()
    fraction, source = probe.stop()  # the file never moved: nothing waited for a CPU
    assert fraction == 0.0 and str(path) in source
