"""Run one step of scripts/gpu-check.sh: under `timeout`, retried once if it failed for a
transient reason, with one verdict line whatever happened.

Every line the step prints goes to the terminal and is appended (and flushed) to the log as it
arrives, so a step killed by its time limit loses nothing it had printed. The verdict goes to
the log, to the terminal and, as one JSON line, to the verdicts file that
scripts/gpu_check_summary.py reads:

    verdict: matmul PASS (rc 0, 23.4 s)
    verdict: tests RETRIED-PASS (rc 0, 41.0 s; first try TIMEOUT rc 124, 70.0 s)
    verdict: health SKIPPED (rc 124, 0.0 s; the check's deadline has passed)

Transient means: the time limit struck (rc 124, or 137 when SIGKILL had to follow), the step
died of a signal (rc > 128), or it printed a CUDA/NVML/NCCL initialisation or availability
error; never when it printed a genuine failure (an AssertionError, a wrong result, an
implausible figure). A retry runs only when its whole limit fits before the check's deadline;
a first try gets what is left before the deadline, at most its limit (none left: SKIPPED).

    python scripts/gpu_check_step.py --name NAME --limit S --log LOG --verdicts JSONL
        [--deadline EPOCH_S] -- COMMAND [ARG...]        # exit: the step's final return code
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

KILL_AFTER_S = 5  # SIGTERM first (a ceiling search keeps its best so far), SIGKILL 5 s later
TIMEOUT_CODES = (124, 137)
TRANSIENT_TEXT = (
    "CUDA error: initialization error",
    "cudaErrorInitializationError",
    "CUDA driver initialization failed",
    "busy or unavailable",
    "cudaErrorDevicesUnavailable",
    "CUDA error: unknown error",
    "NVML_ERROR",
    "NVMLError",
    "Driver Not Loaded",
    "NCCL error",
    "ncclSystemError",
    "ncclUnhandledCudaError",
    "CUDA out of memory",  # a killed predecessor's memory may not have been freed yet
)
GENUINE_TEXT = ("AssertionError", "IMPLAUSIBLE", "wrong result")


@dataclass(frozen=True)
class Attempt:
    """One try of a step: its return code, how long it ran, and what kind of ending it was."""

    rc: int
    seconds: float
    outcome: str  # PASS | FAIL | TIMEOUT | DIED | SKIPPED

    @property
    def transient(self) -> bool:
        return self.outcome in ("TIMEOUT", "DIED")


def outcome_of(rc: int) -> str:
    """PASS, FAIL, TIMEOUT (the limit struck) or DIED (a signal ended it)."""
    if rc == 0:
        return "PASS"
    if rc in TIMEOUT_CODES:
        return "TIMEOUT"
    if rc > 128 or rc < 0:
        return "DIED"
    return "FAIL"


def is_transient(attempt: Attempt, output: str) -> bool:
    """Worth one more try: a timeout or death, or a failure that printed a CUDA/NVML/NCCL
    availability error and no genuine failure."""
    if attempt.transient:
        return True
    if attempt.outcome != "FAIL":
        return False
    if any(text in output for text in GENUINE_TEXT):
        return False
    return any(text in output for text in TRANSIENT_TEXT)


def verdict_name(attempts: list[Attempt]) -> str:
    """The step's verdict: the last try's outcome, RETRIED-PASS when a retry passed."""
    last = attempts[-1].outcome
    if len(attempts) > 1 and last == "PASS":
        return "RETRIED-PASS"
    return last


def verdict_line(name: str, attempts: list[Attempt], note: str = "") -> str:
    last = attempts[-1]
    text = f"verdict: {name} {verdict_name(attempts)} (rc {last.rc}, {last.seconds:.1f} s"
    if len(attempts) > 1:
        first = attempts[0]
        text += f"; first try {first.outcome} rc {first.rc}, {first.seconds:.1f} s"
    return text + (f"; {note}" if note else "") + ")"


def _copy_lines(stream: TextIO, log: TextIO, lines: list[str]) -> None:
    """Every line to stdout and the log as it arrives (flushed: a kill loses nothing)."""
    for line in stream:
        lines.append(line)
        sys.stdout.write(line)
        sys.stdout.flush()
        log.write(line)
        log.flush()


def _end_group(pgid: int, grace_s: float) -> None:
    """Wait up to grace_s for the step's process group to empty, then SIGKILL what is left.

    `timeout` signals the group, but returns as soon as its own child (bash) dies; a process
    that defers SIGTERM (a run finishing its case) would otherwise outlive the step, hold
    the GPU into the next one, and keep the output pipe open."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            return
        time.sleep(0.1)


def run_once(command: list[str], limit_s: float, log: TextIO) -> tuple[Attempt, str]:
    """The command under `timeout` in its own process group, its output copied line by line
    to stdout and the log; nothing of it survives the attempt."""
    started = time.monotonic()
    limited = ["timeout", f"--kill-after={KILL_AFTER_S}", f"{limit_s:g}", *command]
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            limited,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # the group is timeout's pid: ours to clean up
        )
    except OSError as exc:
        line = f"cannot start {command[0]}: {exc}\n"
        log.write(line)
        sys.stdout.write(line)
        return Attempt(127, 0.0, "FAIL"), line
    assert proc.stdout is not None
    reader = threading.Thread(target=_copy_lines, args=(proc.stdout, log, lines), daemon=True)
    reader.start()
    rc = proc.wait()
    _end_group(proc.pid, KILL_AFTER_S if rc in TIMEOUT_CODES else 0.5)
    reader.join(timeout=2.0)  # EOF once the group is gone
    rc = 128 - rc if rc < 0 else rc  # killed by signal N: 128 + N, as a shell reports it
    seconds = time.monotonic() - started
    return Attempt(rc, seconds, outcome_of(rc)), "".join(lines)


def run_step(
    name: str,
    command: list[str],
    limit_s: float,
    log: TextIO,
    deadline: float | None = None,
    clock=time.time,
) -> tuple[list[Attempt], str]:
    """Try the step, once more if the failure was transient and a retry fits the deadline."""
    if deadline is not None:
        left = deadline - clock()
        if left < 1.0:
            return [Attempt(124, 0.0, "SKIPPED")], "the check's deadline has passed"
        limit_s = min(limit_s, left)
    attempt, output = run_once(command, limit_s, log)
    attempts, note = [attempt], ""
    if attempt.outcome != "PASS" and is_transient(attempt, output):
        if deadline is not None and clock() + limit_s > deadline:
            note = f"{attempt.outcome.lower()} not retried: a retry would pass the check's deadline"
        else:
            retry = f"-- {name}: {attempt.outcome} (rc {attempt.rc}); retrying once\n"
            sys.stdout.write(retry)
            log.write(retry)
            log.flush()
            attempts.append(run_once(command, limit_s, log)[0])
    return attempts, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--limit", type=float, required=True, help="seconds per try")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--verdicts", type=Path, required=True, help="JSON lines, appended")
    parser.add_argument("--deadline", type=float, help="epoch seconds no retry may pass")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after --")
    with args.log.open("a", encoding="utf-8") as log:
        attempts, note = run_step(args.name, command, args.limit, log, args.deadline)
        line = verdict_line(args.name, attempts, note)
        print(line, flush=True)
        log.write(line + "\n")
    record = {
        "step": args.name,
        "verdict": verdict_name(attempts),
        "rc": attempts[-1].rc,
        "seconds": round(sum(a.seconds for a in attempts), 2),
        "limit_s": args.limit,
        "attempts": [asdict(a) for a in attempts],
        "note": note or None,
    }
    with args.verdicts.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    return attempts[-1].rc


if __name__ == "__main__":
    sys.exit(main())
