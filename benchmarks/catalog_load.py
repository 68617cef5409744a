"""Measure catalog loading against a bare libyaml load of the same files.

For the shipped catalog and for a generated catalog (10,000 descriptors by default),
each round times, in this order:

- bare: `yaml.load(text, Loader=yaml.CSafeLoader)` of every descriptor file, nothing else;
- load_document: moby-asm's positioned loader on every file, without validation;
- cold: `load_catalog` with an empty cache folder, so every file is parsed and validated
  and the index is written;
- warm: `load_catalog` again, with the index that the cold run wrote;
- index JSON: `json.loads` of that index file alone, the floor for a warm load.

Rounds alternate the measurements so that load from other processes spreads over all
of them. The medians of the rounds are printed with the ratios.

With `--collector-on`, each round also times a cold and a warm load with Python's cyclic
garbage collector left on, which `load_folder` otherwise pauses.

    python benchmarks/catalog_load.py [--count 10000] [--rounds 5] [--collector-on] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from common import Timings, format_seconds, print_machine, print_timings, ratio
from synthetic import write_catalog

from moby_asm.catalog import CatalogSource, load_catalog
from moby_asm.catalog import index as catalog_index
from moby_asm.catalog.loading import iter_descriptor_files
from moby_asm.documents import InvalidDocuments, load_document
from moby_asm.shipped import shipped_folder


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="descriptors in the generated catalog")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of measurements; medians are printed")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated catalog")
    parser.add_argument("--skip-shipped", action="store_true", help="measure only the generated catalog")
    parser.add_argument("--skip-synthetic", action="store_true", help="measure only the shipped catalog")
    parser.add_argument("--collector-on", action="store_true",
                        help="also time cold and warm loads with the cyclic garbage collector left on")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile summary of one cold and one warm load of the generated catalog")
    return parser.parse_args()


def bare_load(files: list[Path]) -> None:
    for path in files:
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def loader_only(files: list[Path]) -> None:
    for path in files:
        try:
            load_document(path)
        except InvalidDocuments:
            pass


def catalog_load(folder: Path) -> int:
    """Load `folder` as the only catalog source; return the number of problems reported."""
    try:
        load_catalog([CatalogSource("benchmark", folder)])
    except InvalidDocuments as error:
        return len(error.diagnostics)
    return 0


def catalog_load_collector_on(folder: Path) -> int:
    """Run `catalog_load` with the cyclic garbage collector left on during the load."""
    original = catalog_index.paused_garbage_collection
    catalog_index.paused_garbage_collection = contextlib.nullcontext
    try:
        return catalog_load(folder)
    finally:
        catalog_index.paused_garbage_collection = original


def measure(label: str, folder: Path, rounds: int, cache: Path, collector_on: bool) -> None:
    """Run the rounds of measurements on `folder` and print the medians and ratios."""
    files = list(iter_descriptor_files(folder))
    size = sum(path.stat().st_size for path in files)
    print(f"\n{label}: {folder}")
    print(f"  {len(files)} descriptor files, {size / 1e6:.2f} MB of YAML")
    bare, cold, warm, floor = (Timings("bare yaml.load, CSafeLoader"), Timings("load_catalog, cold (no index)"),
                               Timings("load_catalog, warm (index)"), Timings("json.loads of the index file"))

    # Each step: timings, the run, and whether the cache folder is emptied first.
    loader = Timings("load_document of each file")
    steps = [(bare, lambda: bare_load(files), True), (loader, lambda: loader_only(files), False),
             (cold, lambda: catalog_load(folder), False),
             (warm, lambda: catalog_load(folder), False),
             (floor, lambda: json.loads(catalog_index.index_file(folder).read_bytes()), False)]
    if collector_on:
        cold_on, warm_on = Timings("cold, collector on"), Timings("warm, collector on")
        steps += [(cold_on, lambda: catalog_load_collector_on(folder), True),
                  (warm_on, lambda: catalog_load_collector_on(folder), False)]

    problems = 0
    for _ in range(rounds):
        for timings, run, empty_cache in steps:
            if empty_cache:
                shutil.rmtree(cache, ignore_errors=True)
            gc.collect()
            outcome = timings.measure(run)
            if timings is warm:
                problems = outcome

    print_timings([step[0] for step in steps])
    print(f"  ratios: load_document / bare {ratio(loader, bare)}, cold / bare {ratio(cold, bare)}, "
          f"warm / bare {ratio(warm, bare)}, cold / warm {ratio(cold, warm)}")
    if collector_on:
        print(f"  collector on / paused: cold {ratio(cold_on, cold)}, warm {ratio(warm_on, warm)}")
    print(f"  per descriptor: bare {format_seconds(bare.median / len(files))}, "
          f"cold {format_seconds(cold.median / len(files))}, warm {format_seconds(warm.median / len(files))}")
    _print_index_use(folder, files, problems)


def _print_index_use(folder: Path, files: list[Path], problems: int) -> None:
    stored = json.loads(catalog_index.index_file(folder).read_bytes())["files"]
    print(f"  files stored in the index after the warm load: {len(stored)} of {len(files)}"
          " (files changed in the last few seconds and invalid files are not stored)")
    if problems:
        print(f"  NOTE: the catalog has {problems} problems; invalid files were parsed in every run")


def profile(folder: Path, cache: Path, rows: int = 20) -> None:
    """Print the functions with the most own time in one cold and one warm load of `folder`."""
    shutil.rmtree(cache, ignore_errors=True)
    for label in ("cold", "warm"):
        profiler = cProfile.Profile()
        profiler.runcall(catalog_load, folder)
        print(f"\ncProfile of one {label} load (the profiler slows Python code down, so read shares, not times)")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(rows)
        stats.sort_stats("cumulative").print_stats(rows)


def main() -> None:
    arguments = parse_arguments()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="moby-asm-bench-") as scratch:
        cache = Path(scratch) / "cache"
        os.environ[catalog_index.CACHE_DIR_VARIABLE] = str(cache)
        if not arguments.skip_shipped:
            measure("shipped catalog", shipped_folder("components"), arguments.rounds, cache,
                    arguments.collector_on)
        if not arguments.skip_synthetic:
            folder = Path(scratch) / "components"
            started = time.perf_counter()
            write_catalog(folder, arguments.count, arguments.seed)
            print(f"\ngenerated {arguments.count} descriptors (seed {arguments.seed}) "
                  f"in {format_seconds(time.perf_counter() - started)}")
            measure("generated catalog", folder, arguments.rounds, cache, arguments.collector_on)
            if arguments.profile:
                profile(folder, cache)


if __name__ == "__main__":
    sys.exit(main())
