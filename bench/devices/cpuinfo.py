"""What the CPU is, read from /proc and /sys: the facts its derived peak needs.

The root and the clock probe are parameters so that tests can hand in a fake tree and a
scripted clock. Nothing here raises on a missing or odd file: an unknown fact is None (or
empty) and the clock says why it is unknown, because a CPU run must still work on a
container or a board that hides these files.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path

from bench.devices.base import CpuIdentity

_CPUFREQ_MAX_ALL = "sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq"

# How the core clock is measured where nothing can be read (bench.devices.clockprobe):
# () -> (Hz, how) or (None, why not). A parameter, so tests hand in a scripted one.
ClockProbe = Callable[[], tuple[float | None, str]]


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def _parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """/proc/cpuinfo -> one dict per blank-line-separated block ("processor" stanza)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def _first(blocks: list[dict[str, str]], key: str) -> str | None:
    for block in blocks:
        value = block.get(key)
        if value:
            return value
    return None


def _model(blocks: list[dict[str, str]]) -> str | None:
    """x86 'model name'; older arm kernels 'Hardware'; else the arm 'CPU part' number."""
    for key in ("model name", "Hardware"):
        value = _first(blocks, key)
        if value:
            return value
    part = _first(blocks, "CPU part")
    if part is None:
        return None
    implementer = _first(blocks, "CPU implementer")
    return f"CPU part {part}" + (f" (implementer {implementer})" if implementer else "")


def _flags(blocks: list[dict[str, str]]) -> frozenset[str]:
    text = _first(blocks, "flags") or _first(blocks, "Features") or ""
    return frozenset(text.split())


def _physical_cores(blocks: list[dict[str, str]]) -> int | None:
    """Unique (physical id, core id) pairs; without them, logical CPUs (SMT not visible)."""
    pairs = {
        (block["physical id"], block["core id"])
        for block in blocks
        if "physical id" in block and "core id" in block
    }
    if pairs:
        return len(pairs)
    processors = sum(1 for block in blocks if "processor" in block)
    return processors or os.cpu_count()


def _cpufreq_max_khz(root: Path) -> tuple[int | None, str]:
    """The highest cpuinfo_max_freq of any CPU (hybrid parts list their E-cores first), or
    (None, what was found instead)."""
    texts = [_read_text(path) for path in sorted(root.glob(_CPUFREQ_MAX_ALL))]
    texts = [t for t in texts if t is not None]
    if not texts:
        return None, "unreadable"
    values = [int(t.strip()) for t in texts if t.strip().isdigit() and int(t.strip()) > 0]
    if not values:
        return None, f"unusable ({texts[0].strip()[:20]!r})"
    return max(values), f" (max over {len(texts)} CPUs)" if len(texts) > 1 else ""


def _max_clock(
    root: Path, blocks: list[dict[str, str]], probe: ClockProbe | None
) -> tuple[float | None, str]:
    """(Hz, source): cpufreq's max if present; else the clock measured by `probe` (a run at
    turbo exceeds /proc/cpuinfo's figure, which is then not a max); else the highest
    current 'cpu MHz', which says it is not a max."""
    khz, cpufreq = _cpufreq_max_khz(root)
    if khz is not None:
        return khz * 1e3, f"cpufreq cpuinfo_max_freq{cpufreq}"
    mhz = []
    for block in blocks:
        try:
            value = float(block.get("cpu MHz", ""))
        except ValueError:
            continue
        if value > 0:
            mhz.append(value)
    current = max(mhz) * 1e6 if mhz else None
    said = f"/proc/cpuinfo says {current / 1e9:.4g} GHz" if current else "no 'cpu MHz'"
    missed = ""
    if probe is not None:
        hz, how = probe()
        if hz is not None and (current is None or hz >= current):
            return hz, f"{how}; no cpufreq max, {said}"
        if hz is not None:
            return current, f"/proc/cpuinfo cpu MHz, above the clock {how}"
        missed = f"; {how}"
    if current is not None:
        return current, f"/proc/cpuinfo cpu MHz (current, not max: no cpufreq here{missed})"
    return (
        None,
        f"no max clock: cpufreq cpuinfo_max_freq {cpufreq}, no 'cpu MHz' in /proc/cpuinfo{missed}",
    )


def read_cpu_identity(
    threads: int,
    proc_root: Path = Path("/"),
    machine: str | None = None,
    clock_probe: ClockProbe | None = None,
) -> CpuIdentity:
    """The CPU as /proc/cpuinfo and cpufreq describe it, its clock measured by clock_probe
    where cpufreq gives no max; never raises on missing files."""
    text = _read_text(proc_root / "proc/cpuinfo")
    blocks = _parse_cpuinfo(text) if text else []
    clock_hz, clock_source = _max_clock(proc_root, blocks, clock_probe)
    return CpuIdentity(
        model=_model(blocks),
        arch=machine if machine is not None else platform.machine(),
        flags=_flags(blocks),
        physical_cores=_physical_cores(blocks),
        threads=threads,
        max_clock_hz=clock_hz,
        clock_source=clock_source,
    )
