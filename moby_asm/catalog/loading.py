"""Find component descriptors in catalog sources and load them into one catalog.

Sources are searched in order: the project's `components/` folder, then the folders
listed in `MOBY_ASM_CATALOG_PATH` (separated by the platform's path separator), then
those listed under `catalogs` in the user's configuration file, then the catalog
shipped with moby-asm. A component in an earlier source shadows one of the
same name in a later source; the catalog keeps the shadowed entries so they can be shown.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from moby_asm.catalog.model import Component
from moby_asm.documents import Diagnostic, Document, InvalidDocuments, StrictModel, load_document, validate_document
from moby_asm.shipped import shipped_folder
from moby_asm.trust.policy import TrustPolicy

CATALOG_PATH_VARIABLE = "MOBY_ASM_CATALOG_PATH"
CONFIG_VARIABLE = "MOBY_ASM_CONFIG"
DESCRIPTOR_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class CatalogSource:
    """One folder of descriptors; `label` names it in listings (project, path, shipped)."""

    label: str
    path: Path


@dataclass(frozen=True)
class CatalogEntry:
    """A loaded component with the file it came from."""

    component: Component
    path: Path
    source: CatalogSource

    @property
    def name(self) -> str:
        return self.component.name


@dataclass
class Catalog:
    """Components by name, the first source winning; `shadowed` keeps the entries it hid."""

    sources: list[CatalogSource]
    entries: dict[str, CatalogEntry] = field(default_factory=dict)
    shadowed: dict[str, list[CatalogEntry]] = field(default_factory=dict)

    def add(self, entry: CatalogEntry) -> None:
        if entry.name in self.entries:
            self.shadowed.setdefault(entry.name, []).append(entry)
        else:
            self.entries[entry.name] = entry

    def get(self, name: str) -> CatalogEntry | None:
        return self.entries.get(name)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(sorted(self.entries.values(), key=lambda entry: entry.name))

    def __len__(self) -> int:
        return len(self.entries)


def default_sources(project_dir: Path | None = None) -> list[CatalogSource]:
    """Return the catalog sources in precedence order for a project folder."""
    sources = []
    if project_dir is not None and (project_dir / "components").is_dir():
        sources.append(CatalogSource("project", project_dir / "components"))
    for folder in os.environ.get(CATALOG_PATH_VARIABLE, "").split(os.pathsep):
        if folder:
            sources.append(CatalogSource("path", Path(folder)))
    for folder in configured_catalogs():
        sources.append(CatalogSource("config", folder))
    sources.append(CatalogSource("shipped", shipped_folder("components")))
    return _unique(sources)


def config_file() -> Path:
    """Return the user's configuration file: `$MOBY_ASM_CONFIG`, else `moby-asm/config.yml` in the user config folder."""
    configured = os.environ.get(CONFIG_VARIABLE)
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_config_dir("moby-asm")) / "config.yml"


class DebianSettings(StrictModel):
    """Mirrors for Debian-package components, used instead of the system's apt sources, and their keyring."""

    mirrors: list[str] = Field(default_factory=list)
    keyring: str | None = None


class UserConfig(StrictModel):
    """The user's configuration file."""

    catalogs: list[str] = Field(default_factory=list)
    trusted_templates: list[str] = Field(default_factory=list)
    trust: TrustPolicy | None = None
    debian: DebianSettings | None = None


def user_config() -> UserConfig:
    """Return the user's configuration, or the defaults when the file does not exist."""
    path = config_file()
    if not path.is_file():
        return UserConfig()
    return validate_document(load_document(path), UserConfig)


def configured_catalogs() -> list[Path]:
    """Return the catalog folders listed under `catalogs` in the user's configuration file.

    Relative folders are taken from the configuration file's folder; `~` is expanded.
    """
    path = config_file()
    if not path.is_file():
        return []
    settings = validate_document(load_document(path), UserConfig)
    return [path.parent / Path(folder).expanduser() for folder in settings.catalogs]


def _unique(sources: list[CatalogSource]) -> list[CatalogSource]:
    # In a source checkout the project's components/ is the shipped catalog itself.
    seen: set[Path] = set()
    result = []
    for source in sources:
        resolved = source.path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            result.append(source)
    return result


def load_catalog(sources: Iterable[CatalogSource]) -> Catalog:
    """Load every descriptor of every source; raise `InvalidDocuments` listing all problems."""
    catalog = Catalog(list(sources))
    diagnostics: list[Diagnostic] = []
    for source in catalog.sources:
        if not source.path.is_dir():
            problem = "is not a folder" if source.path.exists() else "does not exist"
            where = {"config": f"the 'catalogs' list of {config_file()}"}.get(source.label, CATALOG_PATH_VARIABLE)
            diagnostics.append(Diagnostic(source.path, 1, 1, f"catalog folder {str(source.path)!r} {problem}; "
                                                               f"create it or remove it from {where}"))
            continue
        for entry in load_folder(source, diagnostics):
            catalog.add(entry)
    if diagnostics:
        raise InvalidDocuments(diagnostics)
    return catalog


def load_folder(source: CatalogSource, diagnostics: list[Diagnostic]) -> list[CatalogEntry]:
    """Load the descriptors of one source, adding each problem to `diagnostics`.

    Unchanged valid files are taken from the folder's compiled index (see `catalog.index`),
    and the index is updated afterwards. The cyclic garbage collector is off meanwhile.
    """
    from moby_asm.catalog.index import CatalogIndex, paused_garbage_collection  # index imports this module

    entries = []
    names: dict[str, Path] = {}
    with paused_garbage_collection():
        index = CatalogIndex.open(source.path)
        for path in iter_descriptor_files(source.path):
            try:
                entry = index.load_entry(path, source)
            except InvalidDocuments as error:
                diagnostics.extend(error.diagnostics)
                continue
            if entry.name in names:
                diagnostics.append(Diagnostic(path, 1, 1, f"component {entry.name!r} is also defined in {names[entry.name]}"))
                continue
            names[entry.name] = path
            entries.append(entry)
        index.save()
    return entries


def load_descriptor(path: Path, source: CatalogSource) -> CatalogEntry:
    return entry_from_document(load_document(path), source)


def entry_from_document(document: Document, source: CatalogSource) -> CatalogEntry:
    """Validate a loaded descriptor; its name must match its file or folder name."""
    path = document.path
    component = validate_document(document, Component)
    problems = [document.diagnostic(loc, message) for loc, message in component.problems()]
    expected = expected_name(path)
    if component.name != expected:
        problems.append(document.diagnostic(("name",), f"component name {component.name!r} does not "
                                                       f"match its file name; rename one to {expected!r}"))
    if problems:
        raise InvalidDocuments(problems)
    return CatalogEntry(component, path, source)


def iter_descriptor_files(folder: Path) -> Iterator[Path]:
    """Yield `NAME.yml` files and `NAME/component.yml` files of a catalog folder, sorted."""
    for child in sorted(folder.iterdir()):
        if child.is_file() and child.suffix in DESCRIPTOR_SUFFIXES:
            yield child
        elif child.is_dir():
            for suffix in DESCRIPTOR_SUFFIXES:
                descriptor = child / f"component{suffix}"
                if descriptor.is_file():
                    yield descriptor


def expected_name(path: Path) -> str:
    return path.parent.name if path.stem == "component" else path.stem
