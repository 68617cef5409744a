"""Helpers shared by the benchmark scripts: machine description, timing and output."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Timings:
    """Wall-clock and CPU times of the repeated runs of one measurement, in seconds."""

    label: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def measure(self, run: Callable[[], object]) -> object:
        """Run `run` once, add its wall time and its CPU time, and return its result.

        The CPU time is user plus system time of this process and of the child
        processes that ended meanwhile, so it covers commands run as subprocesses.
        """
        wall_start, cpu_start = time.perf_counter(), _cpu_seconds()
        result = run()
        self.cpu.append(_cpu_seconds() - cpu_start)
        self.wall.append(time.perf_counter() - wall_start)
        return result

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def _cpu_seconds() -> float:
    # process_time has a fine resolution; os.times counts in clock ticks (often 10 ms).
    children = os.times()
    return time.process_time() + children.children_user + children.children_system


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def print_machine() -> None:
    """Print the command line and the machine, so that a result can be reproduced."""
    print("command:", shlex.join([os.path.basename(sys.executable), *sys.argv]))
    print(f"machine: {cpu_model()}, {usable_cores()} cores usable ({os.cpu_count()} online), "
          f"{platform.system()} {platform.release()}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    if hasattr(os, "getloadavg"):
        print("load average at start (1, 5, 15 min): " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def print_timings(rows: list[Timings]) -> None:
    """Print one line per measurement: median wall time and median CPU time."""
    width = max(len(row.label) for row in rows)
    for row in rows:
        print(f"  {row.label:<{width}}  {format_seconds(row.median):>10} wall  "
              f"{format_seconds(row.median_cpu):>10} CPU  ({len(row.wall)} runs)")


def ratio(numerator: Timings, denominator: Timings) -> str:
    """Return the ratio of the median wall times, then of the median CPU times in brackets."""
    cpu = numerator.median_cpu / denominator.median_cpu if denominator.median_cpu else float("nan")
    return f"{numerator.median / denominator.median:.2f} ({cpu:.2f} CPU)"
