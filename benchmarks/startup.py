"""Measure the start-up time of the moby-asm command against a bare Python interpreter.

Each round runs `python -c pass`, `moby-asm --help` and `moby-asm components list` once
as subprocesses, in that order; the medians of the rounds are printed with the ratios.
The catalog command runs in an empty folder with a private cache folder, after one
unmeasured run that writes the catalog index, so it measures a warm start.

Then `python -X importtime -c "import moby_asm.cli.main"` and `python -X importtime -m
moby_asm components list` run a few times each, and the largest import costs are
printed (medians over those runs), with every third-party module that a moby_asm
module imports directly.

    python benchmarks/startup.py [--rounds 20] [--module moby_asm.cli.main]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import Timings, format_seconds, print_machine, print_timings, ratio

IMPORTTIME_RUNS = 5


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="runs of each command; medians are printed")
    parser.add_argument("--module", default="moby_asm.cli.main", help="module whose import time is broken down")
    parser.add_argument("--top", type=int, default=15, help="rows of the import cost tables")
    return parser.parse_args()


def moby_asm_command() -> list[str]:
    """Return the installed `moby-asm` script next to this interpreter, or `python -m moby_asm`."""
    script = Path(sys.executable).with_name("moby-asm")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "moby_asm"]


def run(command: list[str], folder: Path, environment: dict[str, str]) -> None:
    completed = subprocess.run(command, cwd=folder, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed with exit code {completed.returncode}:\n{completed.stderr}")


def measure_commands(rounds: int, folder: Path, environment: dict[str, str]) -> None:
    moby_asm = moby_asm_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "moby-asm --help": [*moby_asm, "--help"],
        "moby-asm components list": [*moby_asm, "components", "list"],
    }
    for label, command in commands.items():
        print(f"  {label}: {shlex.join(command)}")
    timings = {label: Timings(label) for label in commands}
    for command in commands.values():
        run(command, folder, environment)
    for _ in range(rounds):
        for label, command in commands.items():
            timings[label].measure(lambda: run(command, folder, environment))
    rows = list(timings.values())
    print_timings(rows)
    baseline = rows[0]
    for row in rows[1:]:
        print(f"  {row.label}: {ratio(row, baseline)} x python -c pass, "
              f"{format_seconds(row.median - baseline.median)} more")


@dataclass
class ImportCost:
    """One line of `-X importtime` output; times in microseconds."""

    name: str
    depth: int
    self_us: int
    cumulative_us: int
    importer: str = ""


def parse_importtime(text: str) -> list[ImportCost]:
    """Parse `-X importtime` output and set each module's importer.

    Python prints a module after the modules it imports, indented two more spaces for
    each level, so a module's importer is the next line with less indentation.
    """
    costs = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_part, cumulative_part, name_part = line[len("import time:"):].split("|")
        name = name_part.rstrip()
        stripped = name.lstrip()
        costs.append(ImportCost(stripped, (len(name) - len(stripped)) // 2, int(self_part), int(cumulative_part)))
    for position, cost in enumerate(costs):
        for later in costs[position + 1:]:
            if later.depth < cost.depth:
                cost.importer = later.name
                break
    return costs


def collect_import_costs(arguments: list[str], folder: Path, environment: dict[str, str]) -> list[ImportCost]:
    """Run `python -X importtime ARGUMENTS` a few times; return each module's median costs."""
    runs = []
    for _ in range(IMPORTTIME_RUNS):
        completed = subprocess.run([sys.executable, "-X", "importtime", *arguments], cwd=folder, env=environment,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
        runs.append({cost.name: cost for cost in parse_importtime(completed.stderr)})
    merged = []
    for name, cost in runs[-1].items():
        samples = [run[name] for run in runs if name in run]
        merged.append(ImportCost(name, cost.depth, int(statistics.median(s.self_us for s in samples)),
                                 int(statistics.median(s.cumulative_us for s in samples)), cost.importer))
    return merged


def print_import_costs(arguments: list[str], top: int, folder: Path, environment: dict[str, str]) -> None:
    costs = collect_import_costs(arguments, folder, environment)
    print(f"\nimport costs of {shlex.join(['python', '-X', 'importtime', *arguments])} "
          f"(median of {IMPORTTIME_RUNS} runs)")
    print(f"  total of all imports: {_ms(sum(c.cumulative_us for c in costs if c.depth == 0))}")
    print(f"  top {top} by cumulative time (module, importer):")
    for cost in sorted(costs, key=lambda c: c.cumulative_us, reverse=True)[:top]:
        print(f"    {_ms(cost.cumulative_us):>10}  {cost.name}  <- {cost.importer or '(top level)'}")
    print(f"  top {top} by own time:")
    for cost in sorted(costs, key=lambda c: c.self_us, reverse=True)[:top]:
        print(f"    {_ms(cost.self_us):>10}  {cost.name}")
    print("  third-party modules imported directly by moby_asm modules:")
    for cost in sorted(costs, key=lambda c: c.cumulative_us, reverse=True):
        package = cost.name.split(".")[0]
        if cost.importer.startswith("moby_asm") and package not in sys.stdlib_module_names | {"moby_asm"}:
            print(f"    {_ms(cost.cumulative_us):>10}  {cost.name}  <- {cost.importer}")


def _ms(microseconds: int) -> str:
    return f"{microseconds / 1000:.1f} ms"


def main() -> None:
    arguments = parse_arguments()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="moby-asm-startup-") as scratch:
        folder = Path(scratch)
        environment = {key: value for key, value in os.environ.items() if key != "MOBY_ASM_CATALOG_PATH"}
        environment.update({"MOBY_ASM_CACHE_DIR": str(folder / "cache"), "NO_COLOR": "1"})
        print(f"\nstart-up, {arguments.rounds} rounds, in an empty folder with a private cache folder")
        measure_commands(arguments.rounds, folder, environment)
        print_import_costs(["-c", f"import {arguments.module}"], arguments.top, folder, environment)
        print_import_costs(["-m", "moby_asm", "components", "list"], arguments.top, folder, environment)


if __name__ == "__main__":
    main()
