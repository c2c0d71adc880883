"""The progress line of long commands, redrawn when it changes and never from a thread.

rich's Progress redraws from a thread ten times a second by default, and that thread runs
beside the kernel being timed. On a CPU it competes with the timed threads: on the 2-core VM,
during a 4 s case of a 1024^3 fp32 matmul on 2 threads, it woke 40 times, used 10-20 ms of
CPU, and the OMP worker was preempted 240-250 times instead of 190-200; over 13 such cases
of 1-4 s the CPU pressure (PSI) read 0.009-0.031, against 0.004-0.005 without the thread and
0.002-0.007 in a bare torch Timer process. On a GPU it takes the GIL from the thread that
launches the kernels, which can open a gap between a start event and its kernel. So the line
is redrawn on events (a phase or a case starts, a case ends), and is off when the console is
not a terminal, where rich draws nothing anyway.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn, TaskID


class EventProgress(Progress):
    """A transient rich Progress with no refresh thread: every change redraws it."""

    def __init__(self, *columns: str | ProgressColumn, console: Console) -> None:
        super().__init__(
            *columns,
            console=console,
            transient=True,
            auto_refresh=False,
            disable=not console.is_terminal,
        )

    def update(self, task_id: TaskID, *, refresh: bool = True, **fields: Any) -> None:
        super().update(task_id, refresh=refresh, **fields)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self.refresh()
