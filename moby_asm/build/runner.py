"""Run a build: compose the project, pull the images it names, and hand each format to its builder.

Images already in the content store under the same reference are used as they are
unless `pull` is set, so a rebuild with nothing changed makes no network request; a
reference pinned by digest is always checked against its digest.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moby_asm.builders.base import BuildJob, BuildOutput
from moby_asm.compose import Composition, compose, write_composition
from moby_asm.compose.plan import NATIVE_FORMATS, builder_for
from moby_asm.errors import InputError
from moby_asm.fileio import WriteFailed
from moby_asm.project import Project, lock_project
from moby_asm.reporter import Reporter, SilentReporter

BUILDERS = ("native", "linuxkit", "docker")


@dataclass
class BuildOptions:
    """How to build: which formats, which builder, where the cache and outputs go, how to reach registries."""

    formats: list[str] = field(default_factory=list)
    builder: str | None = None
    jobs: int = 4
    cache: Path | None = None
    output: Path | None = None
    pull: bool = False
    offline: bool = False
    insecure: set[str] = field(default_factory=set)
    mirrors: dict[str, str] = field(default_factory=dict)


@dataclass
class BuildReport:
    """The outputs written, and the image references that were pulled or found in the cache."""

    outputs: list[BuildOutput]
    pulled: list[str]
    cached: list[str]
    output_dir: Path


class UnknownBuilder(InputError):
    """A builder name or format that this build cannot use."""


def build_project(project: Project, options: BuildOptions, reporter: Reporter | None = None) -> BuildReport:
    """Compose the project into build/, then build every requested format into the output folder."""
    reporter = reporter or SilentReporter()
    _check_options(options)
    locked = lock_project(project, reporter=reporter)
    composition = compose(project, locked)
    write_composition(composition, project.folder / "build", project.folder)
    formats = options.formats or list(project.assembly.outputs)
    by_builder = _assign_builders(project, formats, options.builder)
    output_dir = (options.output or project.folder / "dist").absolute()
    outputs, pulled, cached = [], [], []
    _check_output_dir(output_dir)
    for builder_name, builder_formats in by_builder.items():
        run = _run_native if builder_name == "native" else _run_linuxkit
        try:
            result = run(project, composition, builder_formats, options, output_dir, reporter)
        except OSError as error:
            raise WriteFailed(Path(error.filename or output_dir), error.strerror or str(error)) from error
        outputs += result.outputs
        pulled += result.pulled
        cached += result.cached
    return BuildReport(outputs, sorted(set(pulled)), sorted(set(cached)), output_dir)


def _check_options(options: BuildOptions) -> None:
    from typing import get_args

    from moby_asm.assembly.model import OutputFormat

    if options.offline and options.pull:
        raise UnknownBuilder("--offline and --pull contradict each other; give one of them")
    known = get_args(OutputFormat)
    for output_format in options.formats:
        if output_format not in known:
            raise UnknownBuilder(f"unknown format {output_format!r}; use one of {', '.join(known)}")


def _assign_builders(project: Project, formats: list[str], override: str | None) -> dict[str, list[str]]:
    assignment: dict[str, list[str]] = {}
    for output_format in formats:
        builder = override or builder_for(project.assembly, output_format)
        if builder not in BUILDERS:
            raise UnknownBuilder(f"unknown builder {builder!r}; use one of {', '.join(BUILDERS)}")
        if builder == "native" and output_format not in NATIVE_FORMATS:
            raise UnknownBuilder(f"the native builder cannot make {output_format!r}; it makes "
                                 f"{', '.join(NATIVE_FORMATS)}. Use --builder linuxkit for {output_format}")
        if builder == "docker":
            raise UnknownBuilder("the docker builder is not available yet; use --builder native "
                                 f"(formats {', '.join(NATIVE_FORMATS)}) or --builder linuxkit")
        assignment.setdefault(builder, []).append(output_format)
    return assignment


def _check_output_dir(output_dir: Path) -> None:
    for folder in (output_dir, *output_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise UnknownBuilder(f"output folder {output_dir} cannot be made: {folder} is a file; "
                                     "choose another --output")
            return


def image_references(config: dict[str, Any]) -> list[str]:
    """Return every image a LinuxKit config names, in order, each once."""
    references = []
    if "kernel" in config:
        references.append(config["kernel"]["image"])
    references += config.get("init", [])
    for section in ("onboot", "services", "onshutdown"):
        references += [entry["image"] for entry in config.get(section, [])]
    references += [volume["image"] for volume in config.get("volumes", []) if volume.get("image")]
    return list(dict.fromkeys(references))


@dataclass
class _Result:
    outputs: list[BuildOutput]
    pulled: list[str]
    cached: list[str]


def _run_native(project: Project, composition: Composition, formats: list[str], options: BuildOptions,
                output_dir: Path, reporter: Reporter) -> _Result:
    from moby_asm.builders.native import NativeBuilder
    from moby_asm.build.images import ImageFetcher

    platform = project.assembly.platforms[0]
    fetcher = ImageFetcher(options, platform, reporter)
    references = image_references(composition.config)
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        images = dict(zip(references, pool.map(fetcher.fetch, references)))
    job = BuildJob(project.assembly.name, composition.config, formats, platform, output_dir,
                   images.__getitem__, fetcher.store.blob_path)
    outputs = NativeBuilder().build(job, reporter)
    return _Result(outputs, fetcher.pulled, fetcher.cached)


def _run_linuxkit(project: Project, composition: Composition, formats: list[str], options: BuildOptions,
                  output_dir: Path, reporter: Reporter) -> _Result:
    from moby_asm.builders.linuxkit import LinuxKitBuilder

    outputs = LinuxKitBuilder().build_config(project.folder / "build" / "linuxkit.yml", project.assembly.name,
                                             formats, output_dir, reporter)
    return _Result(outputs, [], [])
