"""Compare moby-asm's resolver with resolvelib and uv on the same problems, in one run.

Usage: python benchmarks/resolver.py [--quick] [--case NAME ...] [--profile]

Each case is one solvable problem: an assembly over a seeded synthetic catalog (small,
medium and large), a large assembly over a catalog whose newest releases are all
consistent, two hard cases whose newest releases conflict, and the singletons shape.
moby-asm runs `resolve`, and resolvelib runs in this process with a provider over the
same data. uv runs `uv pip compile` on the problem written as local wheels,
so its wall time includes starting the process. Every selection is checked against
all constraints. The script prints the machine, the command and a Markdown table of
median wall times with the ratios moby-asm / peer.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import platform
import pstats
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import resolvelib
import resolver_generate as generate
from resolver_moby import moby_catalog, moby_run
from resolver_model import Catalog, Problem
from resolver_resolvelib import resolvelib_run
from resolver_timing import Measurement, Run, measure_case
from resolver_uv import CACHE_FOLDER, WheelCatalog, uv_command, uv_executable, uv_run, uv_version

TOOLS = ("moby-asm", "resolvelib", "uv")


@dataclass(frozen=True)
class Sizes:
    catalog_components: int
    catalog_versions: tuple[int, int]
    assemblies: tuple[tuple[str, int], ...]
    deep_conflict: tuple[int, int, int]
    wide_conflict: tuple[int, int]
    singletons: tuple[tuple[int, int], ...]


FULL = Sizes(2000, (10, 40), (("small", 5), ("medium", 30), ("large", 200)),
             (20, 10, 30), (100, 40), ((20, 100), (50, 200), (100, 500)))
QUICK = Sizes(200, (5, 15), (("small", 5), ("medium", 30), ("large", 100)),
              (3, 4, 10), (10, 10), ((20, 100),))


@dataclass(frozen=True)
class Case:
    name: str
    problem: Callable[[], Problem]


def build_cases(sizes: Sizes, seed: int) -> list[Case]:
    catalog = functools.cache(lambda: generate.synthetic_catalog(
        sizes.catalog_components, sizes.catalog_versions, seed))
    consistent = functools.cache(lambda: generate.synthetic_catalog(
        sizes.catalog_components, sizes.catalog_versions, seed, planted_newest=1.0))
    cases = []
    for label, count in sizes.assemblies:
        name = f"synthetic-{label}"
        cases.append(Case(name, functools.partial(_synthetic, catalog, count, seed, name)))
    label, count = sizes.assemblies[-1]
    name = f"consistent-{label}"
    cases.append(Case(name, functools.partial(_synthetic, consistent, count, seed, name)))
    cases.append(Case("deep-conflict", functools.partial(generate.deep_conflict, *sizes.deep_conflict)))
    cases.append(Case("wide-conflict", functools.partial(generate.wide_conflict, *sizes.wide_conflict)))
    for count, versions in sizes.singletons:
        cases.append(Case(f"singletons-{count}x{versions}",
                          functools.partial(generate.singletons, count, versions)))
    return cases


def _synthetic(catalog, count: int, seed: int, name: str) -> Problem:
    return generate.synthetic_problem(catalog(), count, seed, name)


class Runners:
    """Builds each tool's run function, converting every catalog once per tool."""

    def __init__(self):
        self._moby: dict[str, object] = {}
        self._wheels: dict[str, WheelCatalog] = {}

    def run(self, tool: str, problem: Problem) -> Run:
        digest = problem.catalog.digest
        if tool == "moby-asm":
            if digest not in self._moby:
                self._moby[digest] = moby_catalog(problem.catalog)
            return moby_run(problem, self._moby[digest])
        if tool == "resolvelib":
            return resolvelib_run(problem)
        if digest not in self._wheels:
            self._wheels[digest] = WheelCatalog(problem.catalog)
        return uv_run(problem, self._wheels[digest])


def machine_lines(argv: list[str]) -> list[str]:
    return [
        f"Command: {shlex.join(['python', *argv])}",
        f"CPU: {_cpu_model()}, {os.cpu_count()} logical cores",
        f"OS: {platform.platform()}",
        f"Python: {platform.python_implementation()} {platform.python_version()}",
        f"moby-asm {metadata.version('moby-asm')} ({_revision()}), resolvelib {resolvelib.__version__}, {uv_version()}",
        f"uv command: {shlex.join(uv_command(CACHE_FOLDER / 'wheels-DIGEST', Path('CASE.in')))}",
        f"uv process start (median of 5 `uv --version` runs): {format_seconds(uv_start_seconds())}",
        f"Load average at start: {load_average()}",
    ]


def _revision() -> str:
    """Return the repository's commit, marked when the working tree has changes."""
    folder = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        changes = subprocess.run(["git", "-C", str(folder), "status", "--porcelain"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {commit}" + (" with uncommitted changes" if changes else "")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def uv_start_seconds() -> float:
    command = [uv_executable(), "--version"]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


def format_time(measurement: Measurement) -> str:
    if measurement.status != "ok":
        return measurement.status
    return format_seconds(measurement.median)


def format_ratio(moby: Measurement, peer: Measurement, timeout: float, reported: bool = False) -> str:
    """Return moby-asm's median over the peer's; below 1 means moby-asm is faster."""
    peer_time = peer.reported_median if reported else peer.median
    if moby.status != "ok":
        return "n/a"
    if peer.status == "timeout":
        return f"< {moby.median / timeout:.2g}"
    if peer.status != "ok" or not peer_time:
        return "n/a"
    return f"{moby.median / peer_time:.2g}"


def results_table(rows: list[tuple[Case, Problem, dict[str, Measurement]]], timeout: float) -> list[str]:
    lines = ["| Case | Components / releases | Requirements | Selected | moby-asm | resolvelib "
             "| uv wall | uv reported | moby-asm / resolvelib | moby-asm / uv wall "
             "| moby-asm / uv reported |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case, problem, results in rows:
        moby = results.get("moby-asm", Measurement("not run"))
        resolvelib_result = results.get("resolvelib", Measurement("not run"))
        uv = results.get("uv", Measurement("not run"))
        catalog: Catalog = problem.catalog
        cells = [case.name, f"{len(catalog.components)} / {catalog.release_count}",
                 str(len(problem.requires)), str(moby.selected or "-"),
                 format_time(moby), format_time(resolvelib_result), format_time(uv),
                 format_seconds(uv.reported_median) if uv.status == "ok" else uv.status,
                 format_ratio(moby, resolvelib_result, timeout), format_ratio(moby, uv, timeout),
                 format_ratio(moby, uv, timeout, reported=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def details_table(rows: list[tuple[Case, Problem, dict[str, Measurement]]]) -> list[str]:
    lines = ["| Case | Tool | Status | Runs | Warm-up | Min | Median | Max | Median CPU | Detail |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for case, _, results in rows:
        for tool, result in results.items():
            times = result.seconds
            cells = [case.name, tool, result.status, str(len(times)), format_seconds(result.warm_up_seconds),
                     format_seconds(min(times) if times else None), format_seconds(result.median),
                     format_seconds(max(times) if times else None), format_seconds(result.cpu_median),
                     result.detail.replace("|", "/")]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def profile_moby(problem: Problem, runners: Runners, limit: int) -> None:
    """Print the functions with the most cumulative and own time in one moby-asm run."""
    run = runners.run("moby-asm", problem)
    run()
    # CPU time, not wall time, so that other processes on the machine skew the shares less.
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(run)
    statistics_table = pstats.Stats(profiler, stream=sys.stdout)
    for order in ("cumulative", "tottime"):
        print(f"\ncProfile of moby-asm on {problem.name}, CPU time, sorted by {order}:")
        statistics_table.sort_stats(order).print_stats(limit)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run small sizes only, as a smoke check")
    parser.add_argument("--case", action="append", default=[], metavar="NAME",
                        help="run only this case (repeatable); default: every case")
    parser.add_argument("--tool", action="append", choices=TOOLS, default=[],
                        help="run only this tool (repeatable); default: all three")
    parser.add_argument("--repeat", type=int, default=5, help="maximum timed runs per tool and case (default 5)")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds of timed runs per tool and case after which no run starts (default 30)")
    parser.add_argument("--timeout", type=float,
                        help="time limit of one run in seconds; a run over it is recorded as timeout "
                             "(default 120, or 20 with --quick)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic catalog (default 1)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile summary of one moby-asm run per case")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    if arguments.timeout is None:
        arguments.timeout = 20.0 if arguments.quick else 120.0
    cases = build_cases(QUICK if arguments.quick else FULL, arguments.seed)
    if arguments.case:
        unknown = set(arguments.case) - {case.name for case in cases}
        if unknown:
            names = ", ".join(case.name for case in cases)
            print(f"unknown case {', '.join(sorted(unknown))}; choose from {names}", file=sys.stderr)
            return 2
        cases = [case for case in cases if case.name in arguments.case]
    print("\n".join(machine_lines([sys.argv[0], *argv])), flush=True)
    tools = arguments.tool or list(TOOLS)
    runners = Runners()
    rows = []
    for case in cases:
        problem = case.problem()
        runs = {tool: runners.run(tool, problem) for tool in tools}
        results = measure_case(problem, runs, arguments.repeat, arguments.budget, arguments.timeout)
        for tool, result in results.items():
            print(f"{case.name} {tool}: {format_time(result)} {result.detail}", file=sys.stderr, flush=True)
        rows.append((case, problem, results))
        if arguments.profile and "moby-asm" in tools:
            profile_moby(problem, runners, 25)
    print(f"\nLoad average at end: {load_average()}\n")
    print("\n".join(results_table(rows, arguments.timeout)))
    print()
    print("\n".join(details_table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
