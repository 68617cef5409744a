"""The solver's view of a catalog and an assembly.

Packages are component names, `capability:NAME` for a capability that several
components provide, and `:assembly` for the assembly itself. A requirement names a
component or a capability: every component provides its own name at its own version,
so when only the component of that name provides it, the requirement goes straight to
the component; otherwise it goes to the capability, whose candidates are its providers.

Preference order of a component's versions: the locked version (unless it is being
upgraded), then newest to oldest. Preference order of a capability's providers: the
assembly's `prefer` entry, then the component of the same name, then the others by
name; each component's versions in its own preference order. A provider recorded in the
lock comes right after the `prefer` entry, then any provider with a locked version,
unless the capability or component is being upgraded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from moby_asm.assembly.model import Assembly
from moby_asm.catalog.loading import Catalog, CatalogEntry
from moby_asm.catalog.model import ComponentVersion, Requirement
from moby_asm.resolve.masks import VersionMasks
from moby_asm.resolve.provider import Candidate, Dependency, Origin
from moby_asm.versions import Range, Version

ROOT = ":assembly"
CAPABILITY_PREFIX = "capability:"


@dataclass(frozen=True)
class Provision:
    """A component version that provides a capability at a capability version."""

    component: str
    version: ComponentVersion
    capability_version: Version
    loc: tuple[str | int, ...]


class Universe:
    """Implements the solver's `Provider` contract over a catalog and an assembly."""

    root = ROOT

    def __init__(self, catalog: Catalog, assembly: Assembly, assembly_path: str,
                 locked: dict[str, str] | None = None, upgrade: set[str] | None = None,
                 upgrade_all: bool = False, locked_providers: dict[str, str] | None = None):
        self.catalog = catalog
        self.assembly = assembly
        self.assembly_path = assembly_path
        self.locked = {} if upgrade_all else {k: v for k, v in (locked or {}).items() if k not in (upgrade or ())}
        self.locked_providers = {} if upgrade_all else {
            k: v for k, v in (locked_providers or {}).items() if k not in (upgrade or ())}
        self._candidates: dict[str, list[Candidate]] = {}
        self._versions: dict[str, list[ComponentVersion]] = {}
        self._provisions: dict[str, list[Provision]] = {}
        self._masks: dict[tuple[str, str], int] = {}
        self._indexes: dict[str, VersionMasks] = {}
        self._positions: dict[str, dict[int, int]] = {}
        self._preference_positions: dict[str, dict[int, int]] = {}

    @cached_property
    def providers(self) -> dict[str, list[Provision]]:
        """Every explicitly provided capability and its provisions, over the whole catalog."""
        result: dict[str, list[Provision]] = {}
        for entry in self.catalog:
            for index, version in enumerate(entry.component.versions):
                for position, capability in enumerate(version.provides):
                    loc = ("versions", index, "provides", position)
                    result.setdefault(capability.name, []).append(
                        Provision(entry.name, version, Version.parse(capability.version), loc))
        return result

    def package_for(self, name: str) -> str:
        """Return the package a requirement on `name` goes to."""
        others = [p for p in self.providers.get(name, ()) if p.component != name]
        if others:
            return CAPABILITY_PREFIX + name
        return name

    def candidates(self, package: str) -> Sequence[Candidate]:
        found = self._candidates.get(package)
        if found is None:
            found = self._make_candidates(package)
            self._candidates[package] = found
        return found

    def _make_candidates(self, package: str) -> list[Candidate]:
        if package == ROOT:
            return [Candidate(self.assembly.version, (0,))]
        if package.startswith(CAPABILITY_PREFIX):
            return [Candidate(f"{p.capability_version} from {p.component} {p.version.version}",
                              (p.capability_version.sort_key,), self._unavailable(p.version))
                    for p in self.provisions(package)]
        return [Candidate(v.version, (v.parsed_version.sort_key,), self._unavailable(v))
                for v in self.component_versions(package)]

    def _unavailable(self, version: ComponentVersion) -> str | None:
        if not version.platforms:
            return None
        missing = [p for p in self.assembly.platforms if p not in version.platforms]
        if missing:
            return f"it supports {', '.join(version.platforms)} but the assembly targets {', '.join(missing)}"
        return None

    def component_versions(self, name: str) -> list[ComponentVersion]:
        """Return a component's versions in preference order."""
        found = self._versions.get(name)
        if found is None:
            entry = self.catalog.get(name)
            found = [] if entry is None else self._preference_order(name, entry.component.versions)
            self._versions[name] = found
        return found

    def descriptor_position(self, name: str, version: ComponentVersion) -> int:
        """Return where `version` is listed in its descriptor's `versions`."""
        positions = self._positions.get(name)
        if positions is None:
            entry = self.catalog.get(name)
            positions = self._positions[name] = {id(v): i for i, v in enumerate(entry.component.versions)}
        return positions[id(version)]

    def preference_position(self, name: str, version: ComponentVersion) -> int:
        """Return the candidate index of `version` among the component's candidates."""
        positions = self._preference_positions.get(name)
        if positions is None:
            order = self.component_versions(name)
            positions = self._preference_positions[name] = {id(v): i for i, v in enumerate(order)}
        return positions[id(version)]

    def _preference_order(self, name: str, versions: list[ComponentVersion]) -> list[ComponentVersion]:
        ordered = sorted(versions, key=lambda v: v.parsed_version, reverse=True)
        locked = self.locked.get(name)
        if locked is not None:
            ordered.sort(key=lambda v: v.version != locked)
        return ordered

    def provisions(self, package: str) -> list[Provision]:
        """Return a capability's provisions in preference order."""
        found = self._provisions.get(package)
        if found is None:
            found = self._order_provisions(package.removeprefix(CAPABILITY_PREFIX))
            self._provisions[package] = found
        return found

    def _order_provisions(self, capability: str) -> list[Provision]:
        explicit = list(self.providers.get(capability, ()))
        implicit = [Provision(capability, v, v.parsed_version, ("versions", i, "version"))
                    for i, v in enumerate(self._catalog_versions(capability))]
        preferred = self.assembly.prefer.get(capability)
        locked = self.locked_providers.get(capability)

        def rank(provision: Provision) -> tuple:
            return (provision.component != preferred, provision.component != locked,
                    provision.component not in self.locked, provision.component != capability,
                    provision.component, self.preference_position(provision.component, provision.version))

        return sorted(implicit + explicit, key=rank)

    def _catalog_versions(self, name: str) -> list[ComponentVersion]:
        entry = self.catalog.get(name)
        return entry.component.versions if entry else []

    def mask(self, package: str, range_text: str) -> int:
        """Return the candidates of `package` whose version lies in `range_text`."""
        key = (package, range_text)
        found = self._masks.get(key)
        if found is None:
            index = self._indexes.get(package)
            if index is None:
                index = self._indexes[package] = VersionMasks(self._candidate_versions(package))
            found = self._masks[key] = index.matching(Range.parse(range_text))
        return found

    def _candidate_versions(self, package: str) -> list[Version]:
        if package.startswith(CAPABILITY_PREFIX):
            return [p.capability_version for p in self.provisions(package)]
        return [v.parsed_version for v in self.component_versions(package)]

    def dependencies(self, package: str, index: int) -> list[Dependency]:
        if package == ROOT:
            return [self._requirement(r, Origin(self.assembly_path, ("requires", i)))
                    for i, r in enumerate(self.assembly.requires)]
        if package.startswith(CAPABILITY_PREFIX):
            return [self._provided_by(self.provisions(package)[index])]
        return self._component_dependencies(package, self.component_versions(package)[index])

    def _component_dependencies(self, name: str, version: ComponentVersion) -> list[Dependency]:
        entry = self.catalog.get(name)
        path = str(entry.path)
        position = self.descriptor_position(name, version)
        result = [self._requirement(r, Origin(path, ("versions", position, "requires", i)))
                  for i, r in enumerate(version.requires)]
        for i, conflict in enumerate(version.conflicts):
            result.extend(self._conflicts(name, conflict, Origin(path, ("versions", position, "conflicts", i))))
        return result

    def _requirement(self, requirement: Requirement, origin: Origin) -> Dependency:
        package = self.package_for(requirement.name)
        kind = "optional" if requirement.optional else "requires"
        return Dependency(package, self.mask(package, requirement.range), kind, str(requirement), origin)

    def _conflicts(self, name: str, conflict: Requirement, origin: Origin) -> list[Dependency]:
        """Forbid every other provider of the conflicting name, each at the versions in range.

        A component never conflicts with itself, so `conflicts: [http-api]` on a provider of
        `http-api` means "no other provider of http-api".
        """
        targets = {conflict.name} | {p.component for p in self.providers.get(conflict.name, ())}
        targets.discard(name)
        version_range = Range.parse(conflict.range)
        result = []
        for target in sorted(targets):
            mask = 0
            for index, version in enumerate(self.component_versions(target)):
                provided = self._provided_version(version, target, conflict.name)
                if provided is not None and version_range.contains(provided):
                    mask |= 1 << index
            if mask:
                result.append(Dependency(target, mask, "conflicts", str(conflict), origin))
        return result

    @staticmethod
    def _provided_version(version: ComponentVersion, component: str, name: str) -> Version | None:
        if component == name:
            return version.parsed_version
        for capability in version.provides:
            if capability.name == name:
                return Version.parse(capability.version)
        return None

    def _provided_by(self, provision: Provision) -> Dependency:
        entry = self.catalog.get(provision.component)
        index = self.preference_position(provision.component, provision.version)
        return Dependency(provision.component, 1 << index, "requires",
                          f"{provision.component} {provision.version.version}",
                          Origin(str(entry.path), self._version_loc(entry, provision)))

    def _version_loc(self, entry: CatalogEntry, provision: Provision) -> tuple:
        position = self.descriptor_position(entry.name, provision.version)
        return ("versions", position) + provision.loc[2:] if len(provision.loc) > 2 else ("versions", position)

    def choose(self, package: str, allowed: int, decided: dict[str, int]) -> int:
        if package.startswith(CAPABILITY_PREFIX):
            for index, provision in enumerate(self.provisions(package)):
                if allowed >> index & 1 and self._is_decided(provision, decided):
                    return index
        return (allowed & -allowed).bit_length() - 1

    def _is_decided(self, provision: Provision, decided: dict[str, int]) -> bool:
        index = decided.get(provision.component)
        return index is not None and index == self.preference_position(provision.component, provision.version)

    def describe(self, package: str, mask: int) -> str:
        if package == ROOT:
            return f"assembly {self.assembly.name!r}"
        name = self.describe_name(package)
        if mask == 0:
            return name
        return f"{name} {self.describe_versions(package, mask)}"

    @staticmethod
    def describe_name(package: str) -> str:
        if package.startswith(CAPABILITY_PREFIX):
            return "capability " + package.removeprefix(CAPABILITY_PREFIX)
        return package

    def describe_versions(self, package: str, mask: int) -> str:
        """Describe a set of candidates as version spans in order, such as `>=1.0.0 <=1.4.0 || 2.0.0`."""
        candidates = self.candidates(package)
        if package.startswith(CAPABILITY_PREFIX):
            return "(" + ", ".join(c.label for i, c in enumerate(candidates) if mask >> i & 1) + ")"
        full = (1 << len(candidates)) - 1
        if mask == full and len(candidates) > 1:
            return "(any version)"
        ordered = sorted(range(len(candidates)), key=lambda i: candidates[i].sort_key)
        runs: list[list[int]] = [[]]
        for index in ordered:
            if mask >> index & 1:
                runs[-1].append(index)
            elif runs[-1]:
                runs.append([])
        parts = []
        for run in filter(None, runs):
            low, high = candidates[run[0]].label, candidates[run[-1]].label
            parts.append(low if low == high else f">={low} <={high}")
        return " || ".join(parts)

    def locate(self, origin: Origin) -> str:
        from moby_asm.resolve.positions import locate

        return locate(origin)
