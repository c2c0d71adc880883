"""CPU identity from fake /proc and /sys trees, and the CPU peaks derived from it."""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.devices.base import CpuIdentity
from bench.devices.cpuinfo import read_cpu_identity
from bench.peaks.lookup import cpu_peak

CPUFREQ = "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"


def _x86_block(processor: int, core: int, mhz: str, flags: str) -> str:
    return (
        f"processor\t: {processor}\n"
        "vendor_id\t: GenuineIntel\n"
        "model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\n"
        f"cpu MHz\t\t: {mhz}\n"
        "physical id\t: 0\n"
        f"core id\t\t: {core}\n"
        f"flags\t\t: {flags}\n"
    )


AVX2_FLAGS = "fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2"


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _x86_tree(root: Path, flags: str = AVX2_FLAGS, max_khz: str | None = "3500000") -> Path:
    """2 physical cores with 2 SMT threads each; cpufreq optional."""
    blocks = [
        _x86_block(0, 0, "2445.404", flags),
        _x86_block(1, 1, "2600.000", flags),
        _x86_block(2, 0, "1200.000", flags),
        _x86_block(3, 1, "2000.000", flags),
    ]
    _write(root, "proc/cpuinfo", "\n".join(blocks))
    if max_khz is not None:
        _write(root, CPUFREQ, max_khz + "\n")
    return root


ARM_CPUINFO = "".join(
    f"processor\t: {i}\n"
    "BogoMIPS\t: 243.75\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid\n"
    "CPU implementer\t: 0x41\n"
    "CPU architecture: 8\n"
    "CPU variant\t: 0x1\n"
    "CPU part\t: 0xd0c\n"
    "CPU revision\t: 1\n\n"
    for i in range(4)
)


def test_x86_with_cpufreq(tmp_path: Path) -> None:
    cpu = read_cpu_identity(4, _x86_tree(tmp_path), machine="x86_64")
    assert cpu == CpuIdentity(
        model="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
        arch="x86_64",
        flags=frozenset(AVX2_FLAGS.split()),
        physical_cores=2,
        threads=4,
        max_clock_hz=3.5e9,
        clock_source="cpufreq cpuinfo_max_freq",
    )


def test_x86_without_cpufreq_uses_highest_current_mhz(tmp_path: Path) -> None:
    cpu = read_cpu_identity(2, _x86_tree(tmp_path, max_khz=None), machine="x86_64")
    assert cpu.max_clock_hz == 2.6e9
    assert cpu.clock_source == "/proc/cpuinfo cpu MHz (current, not max: no cpufreq here)"


def test_unusable_cpufreq_falls_back_to_cpu_mhz(tmp_path: Path) -> None:
    cpu = read_cpu_identity(2, _x86_tree(tmp_path, max_khz="<unknown>"), machine="x86_64")
    assert cpu.max_clock_hz == 2.6e9


def test_aarch64_features_and_cpu_part(tmp_path: Path) -> None:
    _write(tmp_path, "proc/cpuinfo", ARM_CPUINFO)
    _write(tmp_path, CPUFREQ, "3000000")
    cpu = read_cpu_identity(8, tmp_path, machine="aarch64")
    assert cpu.arch == "aarch64"
    assert cpu.model == "CPU part 0xd0c (implementer 0x41)"
    assert "asimd" in cpu.flags and "fphp" in cpu.flags
    assert cpu.physical_cores == 4  # no physical/core ids on arm: one per listed processor
    assert cpu.max_clock_hz == 3e9


def test_arm_hardware_line_is_the_model(tmp_path: Path) -> None:
    _write(tmp_path, "proc/cpuinfo", ARM_CPUINFO + "Hardware\t: BCM2835\n")
    assert read_cpu_identity(1, tmp_path, machine="aarch64").model == "BCM2835"


def test_missing_files_give_unknowns_not_errors(tmp_path: Path) -> None:
    cpu = read_cpu_identity(3, tmp_path, machine="x86_64")
    assert cpu.model is None
    assert cpu.flags == frozenset()
    assert cpu.physical_cores == os.cpu_count()
    assert cpu.threads == 3
    assert cpu.max_clock_hz is None
    assert "unreadable" in cpu.clock_source and "no 'cpu MHz'" in cpu.clock_source


def test_arm_without_cpufreq_has_no_clock(tmp_path: Path) -> None:
    _write(tmp_path, "proc/cpuinfo", ARM_CPUINFO)  # BogoMIPS is not a clock
    cpu = read_cpu_identity(4, tmp_path, machine="aarch64")
    assert cpu.max_clock_hz is None
    peak = cpu_peak(cpu, "fp32")
    assert peak.ops_per_s is None and peak.source is None
    assert cpu.clock_source in peak.detail


def test_odd_files_do_not_raise(tmp_path: Path) -> None:
    (tmp_path / "proc/cpuinfo").mkdir(parents=True)  # a directory where a file should be
    _write(tmp_path, CPUFREQ, "-5\n")
    cpu = read_cpu_identity(1, tmp_path, machine="riscv64")
    assert cpu.max_clock_hz is None and cpu.model is None
    assert "unusable" in cpu.clock_source


def test_machine_defaults_to_this_host(tmp_path: Path) -> None:
    assert read_cpu_identity(1, tmp_path).arch == platform.machine()


@settings(max_examples=100, deadline=None)
@given(
    cpuinfo=st.one_of(st.text(max_size=400).map(str.encode), st.binary(max_size=400)),
    cpufreq=st.binary(max_size=20),
)
def test_never_raises_on_arbitrary_contents(cpuinfo: bytes, cpufreq: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "proc").mkdir()
        (root / "proc/cpuinfo").write_bytes(cpuinfo)
        (root / CPUFREQ).parent.mkdir(parents=True)
        (root / CPUFREQ).write_bytes(cpufreq)
        cpu = read_cpu_identity(2, root, machine="x86_64")
    assert cpu.max_clock_hz is None or cpu.max_clock_hz > 0
    assert cpu.clock_source


# ------------------------------------------------------------------------------------------------
# cpu_peak on the identities


def test_avx2_fp32_peak_is_exact(tmp_path: Path) -> None:
    cpu = read_cpu_identity(4, _x86_tree(tmp_path), machine="x86_64")
    peak = cpu_peak(cpu, "fp32")
    assert peak.ops_per_s == 2 * 3.5e9 * 32  # 4 threads on 2 physical cores: 2 cores used
    assert peak.source == "derived"
    assert peak.spec_clock_hz == 3.5e9
    assert peak.detail == (
        "derived: 2 cores x 3.5 GHz (cpufreq cpuinfo_max_freq) x 32 FLOP/cycle "
        "(AVX2 FMA fp32, 2 FMA pipes assumed)"
    )
    assert cpu_peak(cpu, "fp64").ops_per_s == 2 * 3.5e9 * 16


def test_fewer_threads_than_cores_use_fewer_cores(tmp_path: Path) -> None:
    cpu = read_cpu_identity(1, _x86_tree(tmp_path), machine="x86_64")
    assert cpu_peak(cpu, "fp32").ops_per_s == 1 * 3.5e9 * 32


@pytest.mark.parametrize("mode", ["bf16", "fp16", "int8", "tf32", "fp8"])
def test_avx2_has_no_native_low_precision(tmp_path: Path, mode: str) -> None:
    cpu = read_cpu_identity(4, _x86_tree(tmp_path), machine="x86_64")
    peak = cpu_peak(cpu, mode)
    assert peak.ops_per_s is None and peak.source is None
    assert peak.detail == f"no native {mode} unit on this CPU (AVX2); peak undefined"


def test_avx_vnni_gives_int8_on_avx2(tmp_path: Path) -> None:
    cpu = read_cpu_identity(2, _x86_tree(tmp_path, AVX2_FLAGS + " avx_vnni"), machine="x86_64")
    assert cpu_peak(cpu, "int8").ops_per_s == 2 * 3.5e9 * 128


SPR_FLAGS = AVX2_FLAGS + (
    " avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16"
    " amx_bf16 amx_tile amx_int8"
)


@pytest.mark.parametrize(
    ("mode", "per_cycle", "unit"),
    [
        ("fp32", 64, "AVX-512 FMA fp32, 2 FMA pipes assumed"),
        ("fp64", 32, "AVX-512 FMA fp64, 2 FMA pipes assumed"),
        ("bf16", 1024, "AMX-BF16 tiles"),
        ("fp16", 128, "AVX512-FP16 FMA, 2 FMA pipes assumed"),
        ("int8", 2048, "AMX-INT8 tiles"),
    ],
)
def test_avx512_with_amx(tmp_path: Path, mode: str, per_cycle: int, unit: str) -> None:
    cpu = read_cpu_identity(2, _x86_tree(tmp_path, SPR_FLAGS), machine="x86_64")
    peak = cpu_peak(cpu, mode)
    assert peak.ops_per_s == 2 * 3.5e9 * per_cycle
    assert unit in peak.detail


def test_avx512_without_amx_uses_vector_units(tmp_path: Path) -> None:
    flags = AVX2_FLAGS + " avx512f avx512_vnni avx512_bf16"
    cpu = read_cpu_identity(2, _x86_tree(tmp_path, flags), machine="x86_64")
    assert cpu_peak(cpu, "bf16").ops_per_s == 2 * 3.5e9 * 128
    assert cpu_peak(cpu, "int8").ops_per_s == 2 * 3.5e9 * 256
    assert cpu_peak(cpu, "fp16").ops_per_s is None
    assert cpu_peak(cpu, "tf32").ops_per_s is None


def test_neon_peak(tmp_path: Path) -> None:
    _write(tmp_path, "proc/cpuinfo", ARM_CPUINFO)
    _write(tmp_path, CPUFREQ, "3000000")
    cpu = read_cpu_identity(8, tmp_path, machine="aarch64")
    assert cpu_peak(cpu, "fp32").ops_per_s == 4 * 3e9 * 16
    assert cpu_peak(cpu, "fp64").ops_per_s == 4 * 3e9 * 8
    assert "NEON" in cpu_peak(cpu, "bf16").detail
    assert cpu_peak(cpu, "bf16").ops_per_s is None


def test_flags_of_another_isa_are_ignored() -> None:
    # x86 flag names on an arm CPU (or the reverse) must not produce a peak
    arm = CpuIdentity("x", "aarch64", frozenset({"avx2", "fma"}), 4, 4, 3e9, "test")
    x86 = CpuIdentity("x", "x86_64", frozenset({"asimd"}), 4, 4, 3e9, "test")
    assert cpu_peak(arm, "fp32").ops_per_s is None
    assert cpu_peak(x86, "fp32").ops_per_s is None


def test_unknown_physical_cores_assume_one_per_thread() -> None:
    cpu = CpuIdentity("x", "x86_64", frozenset({"avx2", "fma"}), None, 3, 2e9, "test")
    peak = cpu_peak(cpu, "fp32")
    assert peak.ops_per_s == 3 * 2e9 * 32
    assert "physical core count unknown" in peak.detail


def test_unknown_clock_is_none_with_its_reason() -> None:
    cpu = CpuIdentity("x", "x86_64", frozenset({"avx2", "fma"}), 4, 4, None, "cpufreq hidden")
    assert cpu_peak(cpu, "fp32").ops_per_s is None
    assert "cpufreq hidden" in cpu_peak(cpu, "fp32").detail


def test_cpu_peak_rejects_unknown_mode() -> None:
    cpu = CpuIdentity("x", "x86_64", frozenset({"avx2", "fma"}), 4, 4, 2e9, "test")
    with pytest.raises(ValueError, match="unknown math mode"):
        cpu_peak(cpu, "float32")


# Where no max frequency is readable the clock is measured (bench.devices.clockprobe); the
# probe is the hardware seam, scripted here.


def _probe(hz: float | None, how: str = "measured: a scripted add chain"):
    calls = []

    def probe() -> tuple[float | None, str]:
        calls.append(1)
        return hz, how

    return probe, calls


def test_without_cpufreq_the_measured_clock_replaces_the_fixed_figure(tmp_path: Path) -> None:
    probe, calls = _probe(3.7e9)
    root = _x86_tree(tmp_path, max_khz=None)
    cpu = read_cpu_identity(4, root, machine="x86_64", clock_probe=probe)
    assert calls == [1] and cpu.max_clock_hz == 3.7e9
    assert cpu.clock_source.startswith("measured: a scripted add chain")
    assert "no cpufreq max, /proc/cpuinfo says 2.6 GHz" in cpu.clock_source
    peak = cpu_peak(cpu, "fp32")
    # the measured clock, not /proc/cpuinfo's 2.6 GHz, makes the peak
    assert peak.ops_per_s == 2 * 3.7e9 * 32 and peak.spec_clock_hz == 3.7e9
    assert "measured: a scripted add chain" in peak.detail


def test_a_measured_clock_below_the_cpuinfo_figure_does_not_lower_the_peak(tmp_path: Path):
    probe, _ = _probe(1.9e9, "measured: 1.9 GHz (busy)")
    cpu = read_cpu_identity(4, _x86_tree(tmp_path, max_khz=None), "x86_64", probe)
    assert cpu.max_clock_hz == 2.6e9 and "above the clock measured: 1.9 GHz" in cpu.clock_source


def test_a_failed_probe_keeps_the_cpuinfo_figure_and_says_both(tmp_path: Path) -> None:
    probe, _ = _probe(None, "clock probe failed: PermissionError")
    cpu = read_cpu_identity(4, _x86_tree(tmp_path, max_khz=None), "x86_64", probe)
    assert cpu.max_clock_hz == 2.6e9
    assert cpu.clock_source == (
        "/proc/cpuinfo cpu MHz (current, not max: no cpufreq here; "
        "clock probe failed: PermissionError)"
    )


def test_cpufreq_max_is_read_not_measured_and_is_the_highest_cpu(tmp_path: Path) -> None:
    probe, calls = _probe(9e9)
    root = _x86_tree(tmp_path, max_khz="2000000")  # cpu0: an efficiency core
    _write(root, "sys/devices/system/cpu/cpu3/cpufreq/cpuinfo_max_freq", "5100000\n")
    cpu = read_cpu_identity(4, root, machine="x86_64", clock_probe=probe)
    assert calls == [] and cpu.max_clock_hz == 5.1e9
    assert cpu.clock_source == "cpufreq cpuinfo_max_freq (max over 2 CPUs)"


def test_the_running_clock_is_none_where_cpu_mhz_is_a_fixed_figure(tmp_path: Path) -> None:
    from bench.devices.cpu import running_clock_hz

    root = _x86_tree(tmp_path, max_khz=None)
    hz, why = running_clock_hz(root)
    assert hz is None and "fixed figure" in why
    _write(root, "proc/cpuinfo", _x86_block(0, 0, "3100.5", AVX2_FLAGS + " aperfmperf"))
    assert running_clock_hz(root) == (3.1005e9, "/proc/cpuinfo cpu MHz (highest core)")
    root = _x86_tree(tmp_path / "freq")  # with cpufreq, cpu MHz follows the clock
    assert running_clock_hz(root)[0] == 2.6e9


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64") or platform.system() != "Linux",
    reason="the add-chain probe is x86-64 Linux machine code",
)
def test_the_add_chain_measures_a_plausible_clock_here() -> None:
    from bench.devices.clockprobe import ADDS, measure_core_clock

    hz, how = measure_core_clock()
    assert hz is not None, how
    assert 0.8e9 < hz < 6.5e9  # any x86-64 core of the last 20 years
    assert f"{ADDS} dependent adds" in how


def test_the_add_chain_code_jumps_back_to_its_own_loop() -> None:
    from bench.devices.clockprobe import chain_code

    code = chain_code(7, adds=2)
    loop = 10 + 2 + 5  # mov rcx, imm64; xor eax, eax; mov edx, 1
    assert code[2:10] == (7).to_bytes(8, "little")
    jnz = code.index(b"\x0f\x85", loop)
    back = int.from_bytes(code[jnz + 2 : jnz + 6], "little", signed=True)
    assert jnz + 6 + back == loop and code[-1:] == b"\xc3"
