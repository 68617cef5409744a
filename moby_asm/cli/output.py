"""Console output shared by the commands: rich for people, JSON for programs.

Rich honours NO_COLOR and plain pipes on its own; it is imported on first use so that
`moby-asm --help` stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any


@cache
def console():
    return _make_console(stderr=False)


@cache
def error_console():
    return _make_console(stderr=True)


def _make_console(stderr: bool):
    from rich.console import Console

    # Rich drops colours for NO_COLOR but keeps bold and italics; plain output is expected.
    plain = bool(os.environ.get("NO_COLOR"))
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False,
                   color_system=None if plain else "auto")


def print_json(data: Any) -> None:
    """Write `data` as indented JSON with sorted keys, so output is stable."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def table(*columns: str, title: str | None = None):
    from rich.table import Table

    result = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        result.add_column(column)
    return result


_CONTROL = dict.fromkeys(list(range(0, 9)) + list(range(11, 32)) + [127], "\ufffd")


def escape(text: str) -> str:
    """Make text from files safe to print: no rich markup, no terminal control characters."""
    from rich.markup import escape as rich_escape

    return rich_escape(text.translate(_CONTROL))


class ConsoleReporter:
    """Shows library progress on standard error: steps and transfers only on a terminal, warnings always.

    Running steps of a build show as spinners and transfers as bars; a finished step
    leaves one line with its outcome and duration.
    """

    def __init__(self) -> None:
        self._bars = None
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()

    def _bar(self, key: str, description: str, total: int | None):
        if self._bars is None:
            from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TransferSpeedColumn

            self._bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), DownloadColumn(),
                                  TransferSpeedColumn(), console=error_console(), transient=True)
            self._bars.start()
        if key not in self._tasks:
            self._tasks[key] = self._bars.add_task(escape(description), total=total)
        return self._tasks[key]

    def progress(self, task: str, done: int, total: int) -> None:
        if not error_console().is_terminal:
            return
        with self._lock:
            self._bars.update(self._bar(task, task, total or None), completed=done)

    def started(self, step: str) -> None:
        if error_console().is_terminal:
            with self._lock:
                self._bar(f"step:{step}", step, None)

    def finished(self, step: str, outcome: str, seconds: float) -> None:
        if not error_console().is_terminal:
            return
        with self._lock:
            task = self._tasks.pop(f"step:{step}", None)
            if task is not None:
                self._bars.remove_task(task)
            mark = "[green]done[/green]" if outcome != "failed" else "[red]failed[/red]"
            error_console().print(f"{mark} {escape(step)} [dim]({outcome}, {seconds:.1f} s)[/dim]")

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()

    def step(self, message: str) -> None:
        if error_console().is_terminal:
            error_console().print(f"[dim]{escape(message)}[/dim]")

    def warning(self, message: str) -> None:
        error_console().print(f"[yellow]warning:[/yellow] {escape(message)}")


@contextmanager
def interruptible(message: str) -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C in the block, and end both with Cancelled(`message`), exit code 130.

    The work in the block cleans up as it unwinds from the KeyboardInterrupt.
    """
    from moby_asm.errors import Cancelled

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        raise Cancelled(message) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
