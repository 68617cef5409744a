"""A project folder: its assembly, its lock and the catalog it resolves against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moby_asm.assembly.model import ASSEMBLY_FILE, Assembly, load_assembly
from moby_asm.catalog.loading import Catalog, default_sources, load_catalog
from moby_asm.errors import InputError
from moby_asm.lock.lockfile import LOCK_FILE, built_images, locked_versions, read_lock, render_lock
from moby_asm.reporter import Reporter, SilentReporter
from moby_asm.resolve.order import boot_order
from moby_asm.resolve.positions import locate
from moby_asm.resolve.resolution import Resolution, resolve

if TYPE_CHECKING:
    from moby_asm.debian.packages import DebianOptions


class AssemblyNotFound(InputError):
    """The path given for an assembly names no assembly file."""


@dataclass
class Project:
    """The assembly file, the catalog of its folder and, when present, its lock."""

    assembly_path: Path
    assembly: Assembly
    catalog: Catalog
    lock: dict | None

    @property
    def folder(self) -> Path:
        return self.assembly_path.parent

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_FILE


def open_project(path: Path) -> Project:
    """Load the assembly at `path` (a file, or a folder holding assembly.yml) with its catalog and lock."""
    if not path.exists():
        raise AssemblyNotFound(f"{path} does not exist; give an assembly file or a folder holding {ASSEMBLY_FILE}")
    assembly_path = path / ASSEMBLY_FILE if path.is_dir() else path
    if not assembly_path.exists():
        raise AssemblyNotFound(f"{path} holds no {ASSEMBLY_FILE}; create one (see docs/assemblies.md) or give its path")
    assembly, _ = load_assembly(assembly_path)
    catalog = load_catalog(default_sources(assembly_path.parent))
    lock = read_lock(assembly_path.parent / LOCK_FILE)
    return Project(assembly_path, assembly, catalog, lock)


@dataclass
class Locked:
    """A resolution with its boot order and the lock text that records both."""

    resolution: Resolution
    order: dict[str, list[str]]
    text: str
    assembly_path: Path
    built: dict[str, dict[str, str]]

    def with_built(self, built: dict[str, dict[str, str]]) -> Locked:
        """Return this lock with the image and digest of each component built from a context."""
        merged = {**self.built, **built}
        text = render_lock(self.resolution, self.order, self.assembly_path, merged)
        return Locked(self.resolution, self.order, text, self.assembly_path, merged)


def lock_project(project: Project, upgrade: set[str] | None = None, upgrade_all: bool = False,
                 reporter: Reporter | None = None, debian: DebianOptions | None = None) -> Locked:
    """Resolve the project, keeping its locked versions unless an upgrade is requested.

    Debian-package components keep their locked packages too; the others, and those
    being upgraded, are resolved from the mirrors that `debian` names (apt's by default).
    """
    reporter = reporter or SilentReporter()
    reporter.step(f"resolving {len(project.assembly.requires)} requirements of {project.assembly.name!r}")
    resolution = resolve(project.catalog, project.assembly, str(project.assembly_path),
                         locked=locked_versions(project.lock), upgrade=upgrade, upgrade_all=upgrade_all,
                         locked_providers=(project.lock or {}).get("capabilities"))
    order = boot_order(resolution, locate)
    recorded = built_images(project.lock)
    for name in (set(recorded) if upgrade_all else set(upgrade or ())):
        if "packages" in recorded.get(name, {}):
            del recorded[name]
    built = _still_built(resolution, recorded, reporter)
    built.update(_resolve_packages(resolution, built, debian, reporter))
    _warn_unpinned(resolution, built, reporter)
    text = render_lock(resolution, order, project.assembly_path, built)
    return Locked(resolution, order, text, project.assembly_path, built)


def _still_built(resolution: Resolution, recorded: dict[str, dict[str, str]],
                 reporter: Reporter) -> dict[str, dict[str, str]]:
    """Return the recorded images that still apply.

    A pinned image applies while the descriptor names the same tag without a digest. A
    built image applies while its tag, a hash of the build context, matches the context.
    """
    from moby_asm.compose.render import ComposeError, image_reference

    kept = {}
    for name, record in recorded.items():
        source = resolution.selected[name][1].source if name in resolution.selected else None
        if source is not None and source.image is not None:
            if record["image"] == source.image:
                kept[name] = record
            continue
        if source is not None and source.debian is not None:
            if _packaged_as(name, source.debian, resolution, record.get("packages")) == record["image"]:
                kept[name] = record
            else:
                reporter.warning(f"the lock's Debian packages of {name} do not match its settings, which changed "
                                 "or were edited in the lock; resolving them again")
            continue
        if source is None or source.build is None:
            continue
        try:
            current = image_reference(*resolution.selected[name], resolution.assembly.platforms[0])
        except ComposeError:
            continue
        if record["image"].rpartition(":")[2] == current.rpartition(":")[2]:
            kept[name] = record
    return kept


def _packaged_as(name: str, source, resolution: Resolution, packages) -> str | None:
    """Return the image tag that `packages` make under `source`, or None when the records are malformed."""
    from moby_asm.debian.packages import debian_reference, valid_package_record

    if not isinstance(packages, list) or not all(valid_package_record(item) for item in packages):
        return None
    architecture = source.architecture_for(resolution.assembly.platforms[0])
    return debian_reference(name, source, architecture, packages)


def _resolve_packages(resolution: Resolution, kept: dict[str, dict], options: DebianOptions | None,
                      reporter: Reporter) -> dict[str, dict]:
    """Resolve the Debian packages of every component whose lock records none that still apply."""
    names = [name for name, (_, version) in resolution.selected.items()
             if version.source is not None and version.source.debian is not None and name not in kept]
    if not names:
        return {}
    from moby_asm.debian.packages import DebianOptions, DebianPackages

    packages = DebianPackages(options or DebianOptions())
    resolved = {}
    for name in names:
        source = resolution.selected[name][1].source.debian
        reporter.step(f"resolving the Debian packages of {name} from suite {source.suite}")
        resolved[name] = {**packages.resolve(name, source, resolution.assembly.platforms[0]), "digest": None}
    return resolved


def _warn_unpinned(resolution: Resolution, pinned: dict[str, dict[str, str]], reporter: Reporter) -> None:
    unpinned = sorted(name for name, (_, version) in resolution.selected.items()
                      if version.source is not None and version.source.image and "@sha256:" not in version.source.image
                      and name not in pinned)
    if unpinned:
        reporter.warning(f"{len(unpinned)} images are not pinned to a digest yet ({', '.join(unpinned)}); "
                         "'moby-asm build' records their digests in the lock when it pulls them")
