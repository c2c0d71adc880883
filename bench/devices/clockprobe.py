"""The core clock, measured where no max frequency can be read: a timed chain of dependent adds.

Without cpufreq (a VM, a container) nothing says how fast a core really runs: /proc/cpuinfo's
"cpu MHz" is then the fixed rate the hypervisor reports, turbo runs 10-20% above it, and a
peak derived from it is exceeded (a 1-thread fp32 matmul on a 2.6 GHz VM reached 116% of it).
Performance counters are usually hidden there too.

What every x86-64 core has done in exactly one cycle since the P6 is a register-register add
that depends on the previous one. A loop of ADDS such adds takes ADDS cycles per pass (the loop
counter and branch run beside the chain), so cycles / seconds is the clock: no compiler, no
counters, no privilege. The chain is a few dozen bytes of machine code mapped executable and
called through ctypes, in a child process so that a refusal to map code (a hardened kernel) or
any crash costs only the measurement. `add reg, reg` is used rather than an add of an
immediate, which recent cores can fold away at rename.

It runs on one thread after a short spin that lets the core reach its turbo clock, and the
fastest of several short trials counts (a trial the hypervisor or another process interrupts
only reads slower). That is the highest clock one core reaches running scalar code; wide vector
code and more active cores run at it or below, so a peak derived from it is an upper bound.

    python bench/devices/clockprobe.py     # prints {"hz": ..., "trials_hz": [...]} as JSON
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ADDS = 200  # dependent adds per pass: 200 cycles, beside which the loop's own work vanishes
PASSES = 25_000  # 5 M cycles a trial: about 2 ms at 2-3 GHz
TRIALS = 9
SPIN_S = 0.05  # busy time before the trials, for the clock to ramp up
_X86_64 = frozenset({"x86_64", "amd64"})


def chain_code(passes: int, adds: int = ADDS) -> bytes:
    """x86-64 machine code: rcx = passes; rax = 0; rdx = 1; loop { add rax, rdx (x adds);
    dec rcx; jnz loop }; ret. Takes no arguments, so it is the same under every ABI."""
    head = b"\x48\xb9" + passes.to_bytes(8, "little")  # mov rcx, imm64
    head += b"\x31\xc0" + b"\xba\x01\x00\x00\x00"  # xor eax, eax; mov edx, 1
    body = b"\x48\x01\xd0" * adds + b"\x48\xff\xc9"  # add rax, rdx (x adds); dec rcx
    back = -(len(body) + 6)  # from the end of the 6-byte jnz back to the loop's start
    return head + body + b"\x0f\x85" + back.to_bytes(4, "little", signed=True) + b"\xc3"


def _measure_here() -> dict[str, object]:
    """Run the chain in this process (the child): trial clocks in Hz, fastest first."""
    import ctypes
    import mmap

    code = chain_code(PASSES)
    prot = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
    buf = mmap.mmap(-1, len(code), prot=prot)
    buf.write(code)
    chain = ctypes.CFUNCTYPE(ctypes.c_uint64)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))
    if chain() != PASSES * ADDS:
        raise RuntimeError("the add chain computed a wrong sum")
    end = time.perf_counter() + SPIN_S
    while time.perf_counter() < end:
        chain()
    trials = []
    for _ in range(TRIALS):
        start = time.perf_counter_ns()
        chain()
        trials.append(PASSES * ADDS / ((time.perf_counter_ns() - start) / 1e9))
    trials.sort(reverse=True)
    return {"hz": trials[0], "trials_hz": trials}


@functools.cache
def measure_core_clock(timeout_s: float = 10.0) -> tuple[float | None, str]:
    """(Hz, how it was measured) of one core running scalar code, or (None, why not).
    Once per process: the clock a core reaches does not change within a run."""
    machine = platform.machine().lower()
    if machine not in _X86_64 or sys.platform != "linux":
        return None, f"no clock probe for {machine} on {sys.platform} (x86-64 Linux only)"
    try:
        done = subprocess.run(
            [sys.executable, "-I", str(Path(__file__))],  # this file alone: stdlib only
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        result = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return None, f"clock probe failed: {type(exc).__name__}"
    if not result or not result.get("hz"):
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return None, f"clock probe failed: {why[:120]}"
    trials = result["trials_hz"]
    how = (
        f"measured: fastest of {len(trials)} timed chains of {ADDS} dependent adds "
        f"(1 cycle each) on one core, {trials[-1] / 1e9:.3g}-{trials[0] / 1e9:.3g} GHz"
    )
    return float(result["hz"]), how


if __name__ == "__main__":
    try:
        print(json.dumps(_measure_here()))
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
