"""Run uv's resolver on a benchmark problem expressed as local wheels.

Every release becomes a minimal wheel whose METADATA lists its requirements as
`Requires-Dist` lines, with each npm range written as the equivalent PEP 440
specifier. A capability becomes a package of its own: provision k of capability C at
capability version V is the wheel `C-V+k`, which requires its provider at `==` its
version. PEP 440 ignores the local label `+k` in comparisons with a public version,
so ranges over capability versions keep their meaning.

Wheels are written once per catalog into a folder under the system's temporary
folder, named after the catalog's digest, and reused by later runs.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version as PackagingVersion
from resolver_model import Catalog, Problem, Provision, Selection
from resolver_timing import NoSolution, Run, RunResult

from moby_asm.versions import Range, Version

CACHE_FOLDER = Path(tempfile.gettempdir()) / "moby-asm-resolver-benchmark"
COMPLETE_MARKER = ".complete"
TRANSLATION_SAMPLES = 3000
"""Number of (package, range) pairs whose PEP 440 translation is checked against every
version of the package when the wheels are written."""

WHEEL_FILE = "Wheel-Version: 1.0\nGenerator: moby-asm-benchmark\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
RESOLVED_PATTERN = re.compile(r"Resolved \d+ packages? in (?:(\d+)m )?([\d.]+)(µs|ms|s)\b")


class UnsupportedRange(ValueError):
    """A range that PEP 440 cannot express, such as one with `||` or a prerelease bound."""


def specifier(range_text: str) -> str:
    """Return the PEP 440 specifier with the same meaning as an npm range without prereleases."""
    intervals = Range.parse(range_text).intervals
    if len(intervals) != 1:
        raise UnsupportedRange(f"range {range_text!r} has {len(intervals)} alternatives; expected one")
    interval = intervals[0]
    bounds = [bound for bound in (interval.low, interval.high) if bound is not None]
    if any(bound.prerelease for bound in bounds):
        raise UnsupportedRange(f"range {range_text!r} has a prerelease bound")
    if interval.low is not None and interval.low == interval.high:
        return f"=={interval.low}"
    parts = []
    if interval.low is not None:
        parts.append((">=" if interval.low_inclusive else ">") + str(interval.low))
    if interval.high is not None:
        parts.append(("<=" if interval.high_inclusive else "<") + str(interval.high))
    return ",".join(parts)


class WheelCatalog:
    """The wheels of one catalog and the map from capability wheel versions to provisions."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.folder = CACHE_FOLDER / f"wheels-{catalog.digest}"
        self.provisions: dict[tuple[str, str], Provision] = {}
        for capability, provisions in catalog.provisions.items():
            for number, provision in enumerate(provisions):
                self.provisions[capability, f"{provision.capability_version}+{number}"] = provision

    def ensure_written(self) -> None:
        """Write the wheels unless a complete folder for this catalog exists already."""
        if (self.folder / COMPLETE_MARKER).exists():
            return
        start = time.perf_counter()
        _check_translations(self.catalog)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        for name, releases in self.catalog.components.items():
            for release in releases:
                self._write(name, release.version, release.requires)
        for (capability, version), provision in self.provisions.items():
            requires = ((provision.component, f"={provision.component_version}"),)
            self._write(capability, version, requires)
        (self.folder / COMPLETE_MARKER).write_text("")
        count = self.catalog.release_count + len(self.provisions)
        print(f"wrote {count} wheels to {self.folder} in {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)

    def _write(self, name: str, version: str, requires) -> None:
        distribution = name.replace("-", "_")
        info = f"{distribution}-{version}.dist-info"
        lines = [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
        lines += [f"Requires-Dist: {target}{specifier(text)}\n" for target, text in requires]
        path = self.folder / f"{distribution}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(f"{info}/METADATA", "".join(lines))
            archive.writestr(f"{info}/WHEEL", WHEEL_FILE)
            archive.writestr(f"{info}/RECORD", f"{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")

    def selection(self, output: str) -> Selection:
        """Parse `name==version` lines of `uv pip compile` output into a selection."""
        selection = Selection()
        for line in output.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, version = line.partition("==")
            provision = self.provisions.get((name, version))
            if provision is not None:
                selection.capabilities[name] = provision
            else:
                selection.components[name] = version
        return selection


def _check_translations(catalog: Catalog) -> None:
    """Raise AssertionError when a sampled specifier disagrees with its npm range."""
    pairs = sorted({requirement for releases in catalog.components.values()
                    for release in releases for requirement in release.requires})
    sample = random.Random(0).sample(pairs, min(TRANSLATION_SAMPLES, len(pairs)))
    for name, range_text in sample:
        npm_range = Range.parse(range_text)
        pep440 = SpecifierSet(specifier(range_text))
        for version in _versions(catalog, name):
            public = Version.parse(version.split("+")[0])
            expected = npm_range.contains(public)
            if pep440.contains(PackagingVersion(version)) != expected:
                raise AssertionError(f"{name} {range_text} -> {pep440}: disagree on {version}")


def _versions(catalog: Catalog, name: str) -> list[str]:
    provisions = catalog.provisions.get(name)
    if provisions is not None:
        return [f"{p.capability_version}+{number}" for number, p in enumerate(provisions)]
    return [release.version for release in catalog.components[name]]


def uv_executable() -> str:
    return shutil.which("uv") or "uv"


def uv_command(folder: Path, requirements: Path) -> list[str]:
    return [uv_executable(), "pip", "compile", "--offline", "--no-index",
            "--find-links", str(folder), str(requirements), "--python", sys.executable,
            "--no-config", "--no-header", "--no-annotate", "--cache-dir", str(CACHE_FOLDER / "uv-cache")]


def uv_run(problem: Problem, wheels: WheelCatalog) -> Run:
    """Return a function that runs `uv pip compile` on the problem's requirements once."""
    wheels.ensure_written()
    requirements = CACHE_FOLDER / f"{problem.name}-{problem.catalog.digest}.in"
    requirements.write_text("".join(f"{name}{specifier(text)}\n" for name, text in problem.requires))
    command = uv_command(wheels.folder, requirements)

    def run() -> RunResult:
        completed = subprocess.run(command, capture_output=True, text=True, cwd=CACHE_FOLDER,
                                   env=_environment())
        if completed.returncode != 0:
            if "No solution found" in completed.stderr:
                raise NoSolution(completed.stderr.strip())
            raise RuntimeError(f"uv exited with {completed.returncode}: {completed.stderr.strip()}")
        return RunResult(wheels.selection(completed.stdout), reported_seconds(completed.stderr))

    return run


def _environment() -> dict[str, str]:
    """Return this process's environment without uv settings that could change the resolution."""
    return {key: value for key, value in os.environ.items() if not key.startswith("UV_")}


def reported_seconds(stderr: str) -> float | None:
    """Return the time in uv's `Resolved N packages in T` line, in seconds."""
    match = RESOLVED_PATTERN.search(stderr)
    if match is None:
        return None
    minutes, value, unit = match.groups()
    scale = {"µs": 1e-6, "ms": 1e-3, "s": 1.0}[unit]
    return float(value) * scale + 60 * int(minutes or 0)


def uv_version() -> str:
    completed = subprocess.run([uv_executable(), "--version"], capture_output=True, text=True)
    return completed.stdout.strip() or completed.stderr.strip()
