"""Run independent build steps in parallel, report each one, and stop them all on Ctrl-C or a failure.

Every step runs in a worker thread. The calling thread waits in short slices so that
Ctrl-C (or SIGTERM, which the command line turns into the same interrupt) reaches it at
once; it then sets the shared cancel event, which running steps check between chunks of
work, and waits for them to end before it raises. A failing step cancels the others the
same way, so the first error is the one reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from moby_asm.errors import Cancelled
from moby_asm.reporter import Reporter

T = TypeVar("T")
WAIT_SLICE = 0.2


class StepRunner:
    """Runs batches of named steps on at most `jobs` threads, sharing one cancel event."""

    def __init__(self, jobs: int, reporter: Reporter, cancel: threading.Event):
        self.jobs = max(1, jobs)
        self.reporter = reporter
        self.cancel = cancel

    def run(self, steps: Sequence[tuple[str, Callable[[], T]]]) -> list[T]:
        """Run every (name, function) pair and return the results in order; raise the first error."""
        if not steps:
            return []
        pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(steps)), thread_name_prefix="step")
        futures = [pool.submit(self._timed, name, function) for name, function in steps]
        try:
            self._wait(futures)
        except BaseException:
            self.cancel.set()
            for future in futures:
                future.cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [future.result() for future in futures]

    def _wait(self, futures: list[Future]) -> None:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=WAIT_SLICE, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    raise future.exception()

    def _timed(self, name: str, function: Callable[[], Any]) -> Any:
        if self.cancel.is_set():
            raise Cancelled(f"{name} was not started")
        self.reporter.started(name)
        began = time.monotonic()
        outcome = "failed"
        try:
            result = function()
            outcome = getattr(result, "how", None) or "done"
            return result
        except Cancelled:
            outcome = "stopped"
            raise
        finally:
            self.reporter.finished(name, outcome, time.monotonic() - began)


class CancellingReporter:
    """Passes reports on, and raises Cancelled from the reporting thread once the build is stopped.

    Long work (pulls, the native builder) reports often, so checking here stops it within
    a chunk of work without every part of it knowing about cancellation.
    """

    def __init__(self, reporter: Reporter, cancel: threading.Event):
        self.reporter = reporter
        self.cancel = cancel

    def _check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("the build was stopped")

    def step(self, message: str) -> None:
        self._check()
        self.reporter.step(message)

    def warning(self, message: str) -> None:
        self.reporter.warning(message)

    def progress(self, task: str, done: int, total: int) -> None:
        self._check()
        self.reporter.progress(task, done, total)

    def started(self, step: str) -> None:
        self.reporter.started(step)

    def finished(self, step: str, outcome: str, seconds: float) -> None:
        self.reporter.finished(step, outcome, seconds)
