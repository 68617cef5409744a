"""Progress and warnings from the library, shown by whoever calls it.

The library never prints. Long or noteworthy work reports through a `Reporter`; the
command line renders it with rich, and other callers may pass `SilentReporter`.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def step(self, message: str) -> None:
        """Announce a step of the current work, such as "resolving 12 requirements"."""

    def warning(self, message: str) -> None:
        """Report something the user should know that does not stop the work."""

    def progress(self, task: str, done: int, total: int) -> None:
        """Report `done` of `total` bytes of a transfer named `task`, such as a blob being pulled."""

    def started(self, step: str) -> None:
        """Report that a step of a plan, such as "pull linuxkit/init:v1.2.0", began."""

    def finished(self, step: str, outcome: str, seconds: float) -> None:
        """Report that a step ended, with its outcome ("done", "cached", "failed" ...) and duration."""


class SilentReporter:
    """A reporter that drops everything."""

    def started(self, step: str) -> None:
        pass

    def finished(self, step: str, outcome: str, seconds: float) -> None:
        pass

    def step(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def progress(self, task: str, done: int, total: int) -> None:
        pass
