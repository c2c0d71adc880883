"""CPU pressure around a measurement: was anything else competing for the CPUs?

Linux's pressure-stall information (/proc/pressure/cpu, kernel 4.20+) counts the microseconds
in which at least one runnable task waited for a CPU ("some"). Over a case's timing, that
total divided by the wall time is the fraction of the measurement during which the machine
was oversubscribed. On a shared 2-core VM, cases measured alone read 0.01-0.02 and cases
that shared the machine with another job 0.4-1.0, while their samples can look as tight as
clean ones and be 2-3x slower. compare uses it to refuse a verdict on such cases.

The whole machine is counted, including this process's own threads if it runs more threads
than CPUs; where PSI is missing (another OS, an old kernel, psi=0) the pressure is None with
the reason.

FLOPWATT_PSI_PATH names another file in the same format to read instead: a diagnostic knob
(replay a recorded pressure, or a file that never moves to take the machine's other load out
of a test's verdict). The source recorded with every reading names the file it came from.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

PSI_CPU = Path("/proc/pressure/cpu")
PSI_ENV = "FLOPWATT_PSI_PATH"


def psi_path() -> Path:
    """The file pressure is read from: $FLOPWATT_PSI_PATH if set, else /proc/pressure/cpu."""
    override = os.environ.get(PSI_ENV)
    return Path(override) if override else PSI_CPU


def read_some_us(path: Path | None = None) -> tuple[int | None, str]:
    """Cumulative "some" stall microseconds, or (None, why it cannot be read)."""
    path = psi_path() if path is None else path
    try:
        first = path.read_text(encoding="ascii").splitlines()[0]
        fields = dict(item.split("=", 1) for item in first.split()[1:])
        return int(fields["total"]), f"Linux PSI {path} (some)"
    except (OSError, IndexError, KeyError, ValueError) as exc:
        return None, f"no CPU pressure: {path} unreadable ({type(exc).__name__})"


@dataclass(frozen=True)
class PressureProbe:
    """Started before an interval, read after it."""

    start_us: int | None
    started_s: float
    source: str
    path: Path = field(default_factory=psi_path)

    @classmethod
    def start(cls, path: Path | None = None) -> PressureProbe:
        path = psi_path() if path is None else path
        total, source = read_some_us(path)
        return cls(total, time.monotonic(), source, path)

    def stop(self) -> tuple[float | None, str]:
        """(fraction of the interval some task waited for a CPU, source), or (None, why)."""
        elapsed = time.monotonic() - self.started_s
        if self.start_us is None:
            return None, self.source
        end, source = read_some_us(self.path)
        if end is None or elapsed <= 0:
            return None, source
        return max(0.0, (end - self.start_us) / 1e6 / elapsed), self.source
