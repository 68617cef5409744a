"""Time resolvers on one problem, with a warm-up run, interleaved repetitions and a time
limit, and check the selection that each resolver returns."""

from __future__ import annotations

import resource
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from resolver_model import Problem, Selection, check_selection


class TimeLimitExceeded(Exception):
    """A run took longer than the time limit of the case."""


class NoSolution(Exception):
    """The resolver reported that no selection satisfies the problem."""


@dataclass
class RunResult:
    """The result of one run: the selection, the time the tool reports itself, and a note."""

    selection: Selection
    reported_seconds: float | None = None
    detail: str = ""


Run = Callable[[], RunResult]


@dataclass
class Measurement:
    """The runs of one resolver on one problem.

    `status` is `ok`, `timeout` (a run exceeded the time limit), `wrong` (no solution
    reported, or a selection that breaks a constraint) or `error`. `cpu_seconds` is
    the CPU time of this process, or of the child process for a tool run as one.
    """

    status: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    reported_seconds: list[float] = field(default_factory=list)
    warm_up_seconds: float | None = None
    detail: str = ""
    selected: int = 0

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else None

    @property
    def reported_median(self) -> float | None:
        return statistics.median(self.reported_seconds) if self.reported_seconds else None


@dataclass
class Sample:
    seconds: float
    cpu_seconds: float
    run_result: RunResult


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `TimeLimitExceeded` in the main thread after `seconds` of wall time.

    It relies on SIGALRM, so it works on Unix only and only between Python bytecodes
    or in interruptible waits, which covers pure-Python resolvers and subprocess waits.
    """
    def expire(signum, frame):
        raise TimeLimitExceeded(f"time limit of {seconds:g} s exceeded")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def measure_case(problem: Problem, runs: dict[str, Run], repeat: int, budget: float,
                 timeout: float) -> dict[str, Measurement]:
    """Warm up and check every tool, then time up to `repeat` rounds of one run per tool.

    Rounds interleave the tools, so a change in machine load affects all of them alike.
    A tool stops when its next run would take its timed runs over `budget` seconds.
    When its warm-up alone took more than half the budget, the warm-up run is its only
    measurement.
    """
    results = {tool: _warm_up(problem, run, timeout, budget) for tool, run in runs.items()}
    active = [tool for tool, result in results.items() if result.status == "ok" and not result.seconds]
    for _ in range(repeat):
        for tool in list(active):
            result = results[tool]
            last = result.seconds[-1] if result.seconds else result.warm_up_seconds
            if result.seconds and sum(result.seconds) + last > budget:
                active.remove(tool)
                continue
            sample = _timed(runs[tool], timeout)
            if isinstance(sample, Measurement):
                results[tool] = sample
                active.remove(tool)
                continue
            _record(result, sample)
    return results


def _warm_up(problem: Problem, run: Run, timeout: float, budget: float) -> Measurement:
    sample = _timed(run, timeout)
    if isinstance(sample, Measurement):
        return sample
    errors = check_selection(problem, sample.run_result.selection)
    if errors:
        first_errors = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        return Measurement("wrong", detail=f"invalid selection: {first_errors}")
    result = Measurement("ok", warm_up_seconds=sample.seconds, detail=sample.run_result.detail,
                         selected=sample.run_result.selection.size)
    if sample.seconds > budget / 2:
        _record(result, sample)
    return result


def _record(result: Measurement, sample: Sample) -> None:
    result.seconds.append(sample.seconds)
    result.cpu_seconds.append(sample.cpu_seconds)
    if sample.run_result.reported_seconds is not None:
        result.reported_seconds.append(sample.run_result.reported_seconds)


def _timed(run: Run, timeout: float) -> Sample | Measurement:
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    try:
        with time_limit(timeout):
            run_result = run()
    except TimeLimitExceeded as error:
        return Measurement("timeout", detail=str(error))
    except NoSolution as error:
        return Measurement("wrong", detail=f"reported no solution: {_first_line(error)}")
    except Exception as error:  # noqa: BLE001 - the table records any failure of a tool
        return Measurement("error", detail=f"{type(error).__name__}: {_first_line(error)}")
    return Sample(time.perf_counter() - start, _cpu_seconds() - cpu_start, run_result)


def _cpu_seconds() -> float:
    """Return the CPU time of this process and of its finished child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
