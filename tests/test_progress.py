"""The progress line runs no thread beside the timed kernel, and still shows each change."""

import io
import threading

from rich.console import Console
from rich.progress import Progress, TextColumn

from bench.execution.progress import EventProgress


def test_a_terminal_sees_every_change_and_no_thread_is_started():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=60)
    before = threading.active_count()
    with EventProgress(TextColumn("{task.description}"), console=console) as progress:
        task = progress.add_task("idle baseline", total=2)
        progress.update(task, description="matmul 1024x1024x1024 fp32")
        progress.advance(task)
        running = threading.active_count()
    assert running == before
    assert "matmul 1024x1024x1024 fp32" in out.getvalue()
    # rich's default would have one: the thread this module exists to avoid
    with Progress(TextColumn("{task.description}"), console=console, transient=True):
        assert threading.active_count() == before + 1


def test_a_pipe_or_log_gets_no_progress_line():
    out = io.StringIO()
    with EventProgress(TextColumn("{task.description}"), console=Console(file=out)) as progress:
        task = progress.add_task("case", total=1)
        progress.advance(task)
        assert not progress.live.is_started
    assert out.getvalue() == ""
