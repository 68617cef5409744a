"""Run a build: lock and compose the project, make its images, and hand each format to its builder.

The steps, in order:
1. Resolve the project (keeping its lock) and choose a builder for every format.
2. In parallel: build or find the image of each component with a Docker build context,
   and pull every other image the native builder needs. Images already in the content
   store under the same reference are used as they are unless `pull` is set, so a
   rebuild with nothing changed makes no network request and runs no engine build.
3. Render the config with the built images' references, and write the build folder and
   the lock with their digests.
4. In parallel: one step per builder, each writing its formats into the output folder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from moby_asm.builders.base import BuildJob, BuildOutput
from moby_asm.compose import Composition, compose, write_composition
from moby_asm.compose.plan import NATIVE_FORMATS, builder_for
from moby_asm.compose.render import LOCAL_IMAGE_PREFIX, pinned_reference
from moby_asm.debian.packages import DebianOptions
from moby_asm.errors import InputError
from moby_asm.fileio import WriteFailed, atomic_write_text
from moby_asm.project import Locked, Project, lock_project
from moby_asm.reporter import Reporter, SilentReporter

BUILDERS = ("native", "linuxkit", "docker")
DOCKER_BUILDER_FORMATS = ("docker",)


@dataclass
class BuildOptions:
    """How to build: formats, builder, cache and output folders, registries and the Docker Engine."""

    formats: list[str] = field(default_factory=list)
    builder: str | None = None
    jobs: int = 4
    cache: Path | None = None
    output: Path | None = None
    pull: bool = False
    offline: bool = False
    insecure: set[str] = field(default_factory=set)
    mirrors: dict[str, str] = field(default_factory=dict)
    registry: str | None = None
    engine: str | None = None
    build_network: str | None = None
    debian_mirrors: list[str] = field(default_factory=list)
    debian_keyring: Path | None = None

    def debian(self) -> DebianOptions:
        """Return where this build takes Debian packages from."""
        return DebianOptions(self.debian_mirrors, self.debian_keyring, self.offline, self.cache)


@dataclass
class BuildReport:
    """The outputs written, the images pulled or found in the cache, and the images built from contexts."""

    outputs: list[BuildOutput]
    pulled: list[str]
    cached: list[str]
    output_dir: Path
    built: list[Any] = field(default_factory=list)
    verified: dict[str, list[str]] = field(default_factory=dict)


class UnknownBuilder(InputError):
    """A builder name or format that this build cannot use."""


def build_project(project: Project, options: BuildOptions, reporter: Reporter | None = None,
                  cancel: threading.Event | None = None) -> BuildReport:
    """Build every requested format of the project into the output folder."""
    from moby_asm.build.steps import CancellingReporter, StepRunner

    cancel = cancel or threading.Event()
    reporter = CancellingReporter(reporter or SilentReporter(), cancel)
    _check_options(options)
    locked = lock_project(project, reporter=reporter, debian=options.debian())
    by_builder = _assign_builders(project, options.formats or list(project.assembly.outputs), options.builder)
    output_dir = (options.output or project.folder / "dist").absolute()
    _check_output_dir(output_dir)
    run = _Build(project, options, StepRunner(options.jobs, reporter, cancel), reporter, cancel)
    images, built = run.images(locked, by_builder)
    resolved_text = locked.text
    locked = locked.with_built({**run.pins(locked), **{item.component: {**locked.built.get(item.component, {}),
                                                                        **item.record()} for item in built}})
    verified = run.verify(locked)
    composition = compose(project, locked)
    write_composition(composition, project.folder / "build", project.folder)
    _update_project_lock(project, resolved_text, locked)
    outputs = run.outputs(composition, by_builder, output_dir, images, bool(built))
    # Built images are reported under `built`, whichever way the builder then found them.
    own = {item.pinned for item in built}
    pulled, cached = set(run.fetcher.pulled) - own, set(run.fetcher.cached) - own
    return BuildReport(outputs, sorted(pulled), sorted(cached), output_dir, built, verified)


def _update_project_lock(project: Project, resolved_text: str, locked: Locked) -> None:
    """Record new digests of built images in the project's lock, when it is otherwise up to date.

    An outdated lock is left as it is, so that `moby-asm lock --check` still reports it.
    """
    if project.lock is None or project.lock_path.read_text() == locked.text:
        return
    if _without_builds(project.lock) == _without_builds(yaml.safe_load(resolved_text)):
        atomic_write_text(project.lock_path, locked.text)


def _without_builds(lock: dict[str, Any]) -> list[Any]:
    """Return the lock's content without the digests recorded for images and the images of context builds."""
    components = []
    for item in lock.get("components", ()):
        if not isinstance(item, dict):
            continue
        source = dict(item["source"]) if isinstance(item.get("source"), dict) else {}
        source.pop("digest", None)
        if "build" in source:
            source.pop("image", None)
        components.append({**item, "source": source})
    return [components, *(value for key, value in lock.items() if key != "components")]


class _Build:
    """The steps of one build, sharing the image fetcher, the step runner and the cancel event."""

    def __init__(self, project: Project, options: BuildOptions, steps, reporter: Reporter, cancel: threading.Event):
        from moby_asm.build.images import ImageFetcher

        self.project = project
        self.options = options
        self.steps = steps
        self.reporter = reporter
        self.cancel = cancel
        self.platform = project.assembly.platforms[0]
        self.fetcher = ImageFetcher(options, self.platform, reporter)
        self._debian = None
        self._debian_lock = threading.Lock()

    def images(self, locked: Locked, by_builder: dict[str, list[str]]) -> tuple[dict[str, Any], list]:
        """Build the context images and pull the others the native builder needs, all in parallel."""
        from moby_asm.build.contexts import ContextImages

        contexts = self.contexts = ContextImages(
            self.fetcher, self.options.registry or self.project.assembly.builder.registry, self.options.engine,
            self.options.build_network, self.reporter, self.cancel)
        selected = self.selected = locked.resolution.selected
        to_build = self.to_build = [name for name, (_, version) in selected.items()
                                    if version.source is not None and version.source.build is not None]
        packaged = [name for name, (_, version) in selected.items()
                    if version.source is not None and version.source.debian is not None]
        # A tag-only image that the lock pins is fetched by its digest, so other content under the tag is refused.
        self.pulled_as = {name: pinned_reference(version.source.image, locked.built[name]["digest"])
                          if name in locked.built and "@" not in version.source.image else version.source.image
                          for name, (_, version) in selected.items()
                          if version.source is not None and version.source.image}
        to_pull = sorted(set(self.pulled_as.values())) if by_builder.keys() & {"native", "docker"} else []
        steps = [(f"build {name}", lambda name=name: contexts.get(*selected[name])) for name in to_build]
        steps += [(f"unpack the Debian packages of {name}", lambda name=name: self._debian_image(name, locked))
                  for name in packaged]
        steps += [(f"pull {reference}", lambda reference=reference: self.fetcher.fetch(reference))
                  for reference in to_pull]
        results = self.steps.run(steps)
        built = results[:len(to_build) + len(packaged)]
        self._warn_scripts(built)
        return dict(zip(to_pull, results[len(built):], strict=True)), built

    def _debian_image(self, name: str, locked: Locked):
        from moby_asm.debian.packages import DebianPackages

        source = locked.resolution.selected[name][1].source.debian
        with self._debian_lock:
            if self._debian is None:
                self._debian = DebianPackages(self.options.debian(), self.fetcher.store)
        record = locked.built[name]
        image = self._debian.image(name, source, self.platform, record)
        if record.get("digest") and record["digest"] != image.digest:
            # The same packages should always give the same layer; a difference means a changed layer writer.
            self.reporter.warning(f"{name}: the image made from the locked packages has digest {image.digest}, not "
                                  f"the {record['digest']} that the lock records; the lock now records the new one")
        return image

    def _warn_scripts(self, built: list) -> None:
        for image in built:
            if getattr(image, "scripted", ()):
                self.reporter.warning(f"{image.component}: the maintainer scripts of {', '.join(image.scripted)} "
                                      "were not run; add the files they would make to the component's 'files'")

    def pins(self, locked: Locked) -> dict[str, dict[str, str]]:
        """Return the digest each tag-only image of the selection had when it was pulled or found in the store."""
        from moby_asm.build.images import stored_name

        pins = {}
        for name, reference in self.pulled_as.items():
            image = locked.resolution.selected[name][1].source.image
            if "@" in image:
                continue
            stored = self.fetcher.store.resolve(stored_name(reference))
            digest = reference.partition("@")[2] or (stored.digest if stored is not None else None)
            if digest:
                pins[name] = {"image": image, "digest": digest}
        return pins

    def verify(self, locked: Locked) -> dict[str, list[str]]:
        """Check every image that a trust rule covers, by the digest the build uses; return the key ids by image."""
        from moby_asm.trust.policy import PolicyViolation, enforce_all, load_policy

        policy = load_policy(self.project.assembly.trust, self.project.assembly_path)
        # Debian packages are checked against the archive's signed indexes instead.
        references = [pinned_reference(record["image"], record["digest"]) for record in locked.built.values()
                      if "packages" not in record]
        references += [image for image in self.pulled_as.values() if "@" in image and image not in references]
        covered = [reference for reference in references if policy.rules_for("images", reference)]
        for reference in covered:
            if reference.startswith(LOCAL_IMAGE_PREFIX) or self.options.offline:
                why = ("it was built on this machine only; push it with --registry and sign it there"
                       if reference.startswith(LOCAL_IMAGE_PREFIX) else "signatures cannot be checked --offline")
                raise PolicyViolation(f"{reference} must be signed under the trust policy, but {why}")
        self.reporter.step(f"checking the signatures of {len(covered)} images")
        return enforce_all(policy, "images", covered, insecure=self.options.insecure, mirrors=self.options.mirrors)

    def outputs(self, composition: Composition, by_builder: dict[str, list[str]], output_dir: Path,
                images: dict[str, Any], has_built: bool) -> list[BuildOutput]:
        runners = {"native": self._native, "linuxkit": self._linuxkit, "docker": self._docker}
        steps = [(f"{name} builder: {', '.join(formats)}",
                  lambda name=name, formats=formats: runners[name](composition, formats, output_dir, images, has_built))
                 for name, formats in by_builder.items()]
        try:
            results = self.steps.run(steps)
        except OSError as error:
            raise WriteFailed(Path(error.filename or output_dir), error.strerror or str(error)) from error
        return [output for result in results for output in result]

    def _native(self, composition: Composition, formats: list[str], output_dir: Path, images: dict[str, Any],
                has_built: bool) -> list[BuildOutput]:
        from moby_asm.builders.native import NativeBuilder

        for reference in image_references(composition.config):
            # An image pulled by tag is rendered pinned to the digest that pull found.
            unpinned = reference.partition("@")[0]
            if reference not in images:
                images[reference] = (replace(images[unpinned], reference=reference) if unpinned in images
                                     else self.fetcher.fetch(reference))
        job = BuildJob(self.project.assembly.name, composition.config, formats, self.platform, output_dir,
                       images.__getitem__, self.fetcher.store.blob_path)
        return NativeBuilder().build(job, self.reporter)

    def _linuxkit(self, composition: Composition, formats: list[str], output_dir: Path, images: dict[str, Any],
                  has_built: bool) -> list[BuildOutput]:
        from moby_asm.builders.linuxkit import LinuxKitBuilder

        packaged = [name for name, (_, version) in self.selected.items()
                    if version.source is not None and version.source.debian is not None]
        if packaged:
            raise UnknownBuilder(f"the linuxkit builder cannot use the images made from Debian packages "
                                 f"({', '.join(packaged)}); build these formats with the native builder")
        local_images = has_built and any(reference.startswith(LOCAL_IMAGE_PREFIX)
                                         for reference in image_references(composition.config))
        if local_images:
            for name in self.to_build:
                self.contexts.ensure_in_engine(*self.selected[name])
        return LinuxKitBuilder().build_config(self.project.folder / "build" / "linuxkit.yml",
                                              self.project.assembly.name, formats, output_dir, self.reporter,
                                              cancel=self.cancel, use_docker=local_images)

    def _docker(self, composition: Composition, formats: list[str], output_dir: Path, images: dict[str, Any],
                has_built: bool) -> list[BuildOutput]:
        from moby_asm.builders.docker import load_into_engine

        outputs = self._native(composition, formats, output_dir, images, has_built)
        assembly = self.project.assembly
        return load_into_engine(outputs, f"{assembly.name}:{assembly.version}", self.options.engine, self.reporter)


def _check_options(options: BuildOptions) -> None:
    from typing import get_args

    from moby_asm.assembly.model import OutputFormat, registry_problem

    if options.offline and options.pull:
        raise UnknownBuilder("--offline and --pull contradict each other; give one of them")
    known = get_args(OutputFormat)
    for output_format in options.formats:
        if output_format not in known:
            raise UnknownBuilder(f"unknown format {output_format!r}; use one of {', '.join(known)}")
    problem = registry_problem(options.registry) if options.registry is not None else None
    if problem:
        raise UnknownBuilder(f"--registry: {problem}")


def _assign_builders(project: Project, formats: list[str], override: str | None) -> dict[str, list[str]]:
    assignment: dict[str, list[str]] = {}
    for output_format in dict.fromkeys(formats):
        builder = override or builder_for(project.assembly, output_format)
        if builder not in BUILDERS:
            raise UnknownBuilder(f"unknown builder {builder!r}; use one of {', '.join(BUILDERS)}")
        if builder == "native" and output_format not in NATIVE_FORMATS:
            raise UnknownBuilder(f"the native builder cannot make {output_format!r}; it makes "
                                 f"{', '.join(NATIVE_FORMATS)}. Use --builder linuxkit for {output_format}")
        if builder == "docker" and output_format not in DOCKER_BUILDER_FORMATS:
            raise UnknownBuilder(f"the docker builder makes only the docker format (loaded into the engine), "
                                 f"not {output_format!r}; build {output_format} with the native or linuxkit builder")
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
