"""The resolution problems of the resolver benchmark, independent of any resolver.

A problem is a catalog (component name to releases) and the requirements of one
assembly. Requirements are `(name, range)` pairs whose range uses moby-asm's npm
syntax. A name is either a component or a capability that releases of other
components provide at a version; capability names never equal component names.
Every generated problem is solvable, so each resolver's selection is checked against
the constraints with `check_selection`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

from moby_asm.versions import Range, Version

Requirement = tuple[str, str]


@dataclass(frozen=True)
class Release:
    """One version of a component with the names it requires and the capabilities it provides."""

    version: str
    requires: tuple[Requirement, ...] = ()
    provides: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Provision:
    """A component release that provides a capability at `capability_version`."""

    capability: str
    capability_version: str
    component: str
    component_version: str


class Catalog:
    """Components by name, each with its releases, and the capabilities they provide."""

    def __init__(self, components: dict[str, list[Release]]):
        self.components = components

    @cached_property
    def provisions(self) -> dict[str, list[Provision]]:
        """Every capability and its provisions, in catalog order."""
        result: dict[str, list[Provision]] = {}
        for name, releases in self.components.items():
            for release in releases:
                for capability, version in release.provides:
                    provision = Provision(capability, version, name, release.version)
                    result.setdefault(capability, []).append(provision)
        return result

    @cached_property
    def releases_by_version(self) -> dict[str, dict[Version, Release]]:
        return {name: {Version.parse(r.version): r for r in releases}
                for name, releases in self.components.items()}

    @cached_property
    def digest(self) -> str:
        """A hash of the whole catalog, used to name cached files derived from it."""
        text = json.dumps(self.components, default=lambda r: r.__dict__, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def release(self, name: str, version: str) -> Release | None:
        return self.releases_by_version.get(name, {}).get(Version.parse(version))

    @property
    def release_count(self) -> int:
        return sum(len(releases) for releases in self.components.values())


@dataclass
class Problem:
    """A catalog and the requirements of one assembly; `name` is a valid assembly name."""

    name: str
    catalog: Catalog
    requires: list[Requirement]


@dataclass
class Selection:
    """The result of a resolver: component versions, and the provision chosen for each capability."""

    components: dict[str, str] = field(default_factory=dict)
    capabilities: dict[str, Provision] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.components) + len(self.capabilities)


def check_selection(problem: Problem, selection: Selection) -> list[str]:
    """Return every constraint the selection breaks; an empty list means it is valid."""
    catalog = problem.catalog
    errors = [f"assembly: {e}" for r in problem.requires for e in _check(catalog, selection, r)]
    for name, version in selection.components.items():
        release = catalog.release(name, version)
        if release is None:
            errors.append(f"{name} {version} is not in the catalog")
            continue
        for requirement in release.requires:
            errors.extend(f"{name} {version}: {e}" for e in _check(catalog, selection, requirement))
    for capability, provision in selection.capabilities.items():
        errors.extend(_check_provision(catalog, selection, capability, provision))
    return errors


def _check(catalog: Catalog, selection: Selection, requirement: Requirement) -> list[str]:
    name, range_text = requirement
    if name in catalog.provisions:
        provision = selection.capabilities.get(name)
        version = None if provision is None else provision.capability_version
    else:
        version = selection.components.get(name)
    if version is None:
        return [f"requires {name} {range_text}, which is not selected"]
    if not Range.parse(range_text).contains(Version.parse(version)):
        return [f"requires {name} {range_text}, but {version} is selected"]
    return []


def _check_provision(catalog: Catalog, selection: Selection, capability: str,
                     provision: Provision) -> list[str]:
    selected = selection.components.get(provision.component)
    if selected is None or Version.parse(selected) != Version.parse(provision.component_version):
        return [f"capability {capability} comes from {provision.component} "
                f"{provision.component_version}, which is not selected"]
    release = catalog.release(provision.component, selected)
    if (capability, provision.capability_version) not in release.provides:
        return [f"{provision.component} {selected} does not provide {capability} "
                f"{provision.capability_version}"]
    return []
