"""An independent statement of what a valid selection is, and an exhaustive search for one.

A selection maps component names to one of their `ComponentVersion` objects. It is
valid when:

- every version in it supports every target platform of the assembly;
- every requirement of the assembly and every non-optional requirement of a selected
  version is met, which means that some selected component provides the name at a
  version in the range. A component provides its own name at its own version, and the
  names in its `provides` at the versions given there;
- a name that a component other than the one of that name provides is a capability, and
  one selected provider meets every requirement on it at once, as the resolver serves
  each capability from one provider;
- for every optional requirement of a selected version, each selected provider of the
  name provides it at a version in the range;
- no selected version conflicts with another selected component that provides the
  conflicting name at a version in the range.

The rules follow docs/components.md and the docstring of `moby_asm.resolve.universe`
and share no code with the solver except `Range`, so the property tests compare two
separate implementations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from moby_asm.assembly.model import Assembly
from moby_asm.catalog.loading import Catalog
from moby_asm.catalog.model import ComponentVersion, Requirement
from moby_asm.versions import Range, Version

Selection = dict[str, ComponentVersion]


@dataclass(frozen=True)
class Constraint:
    """A rule over the components in `involved`, which `is_satisfied` checks on a selection."""

    text: str
    involved: frozenset[str]
    is_satisfied: Callable[[Selection], bool]


class Problem:
    """The constraints of one catalog and assembly, as plain predicates over selections."""

    def __init__(self, catalog: Catalog, assembly: Assembly):
        self.catalog = catalog
        self.assembly = assembly
        self.names = sorted(catalog.entries)
        self.constraints = list(self._constraints())

    def providers(self, name: str) -> frozenset[str]:
        found = {
            entry.name
            for entry in self.catalog
            if any(capability.name == name for v in entry.component.versions for capability in v.provides)
        }
        if name in self.catalog.entries:
            found.add(name)
        return frozenset(found)

    @staticmethod
    def provided(component: str, version: ComponentVersion, name: str) -> Version | None:
        if component == name:
            return version.parsed_version
        for capability in version.provides:
            if capability.name == name:
                return Version.parse(capability.version)
        return None

    def met(self, selection: Selection, requirement: Requirement) -> bool:
        """Return whether a selected provider offers the requirement's name within its range."""
        version_range = Range.parse(requirement.range)
        for component in self.providers(requirement.name):
            provided = (
                self.provided(component, selection[component], requirement.name) if component in selection else None
            )
            if provided is not None and version_range.contains(provided):
                return True
        return False

    def is_capability(self, name: str) -> bool:
        return bool(self.providers(name) - {name})

    def active_requirements(self, selection: Selection, name: str) -> list[Requirement]:
        """Return the requirements on `name` of the assembly and of the selected versions."""
        found = [r for r in self.assembly.requires if r.name == name]
        for version in selection.values():
            found += [r for r in version.requires if r.name == name and not r.optional]
        return found

    def served_by_one(self, selection: Selection, name: str) -> bool:
        requirements = self.active_requirements(selection, name)
        if not requirements:
            return True
        for component in self.providers(name) & set(selection):
            provided = self.provided(component, selection[component], name)
            if provided is not None and all(Range.parse(r.range).contains(provided) for r in requirements):
                return True
        return False

    def violations(self, selection: Selection) -> list[str]:
        return [constraint.text for constraint in self.constraints if not constraint.is_satisfied(selection)]

    def _constraints(self) -> Iterator[Constraint]:
        for requirement in self.assembly.requires:
            yield Constraint(
                f"assembly requires {requirement}",
                self.providers(requirement.name),
                lambda s, r=requirement: self.met(s, r),
            )
        for entry in self.catalog:
            for version in entry.component.versions:
                yield from self._version_constraints(entry.name, version)
        everything = frozenset(self.names)
        for name in sorted(self._requirable()):
            if self.is_capability(name):
                yield Constraint(f"one provider serves {name}", everything, lambda s, n=name: self.served_by_one(s, n))

    def _requirable(self) -> set[str]:
        names = {r.name for r in self.assembly.requires}
        for entry in self.catalog:
            for version in entry.component.versions:
                names |= {r.name for r in version.requires}
        return names

    def _version_constraints(self, name: str, version: ComponentVersion) -> Iterator[Constraint]:
        label = f"{name} {version.version}"

        def when_selected(rule: Callable[[Selection], bool]) -> Callable[[Selection], bool]:
            return lambda s: s.get(name) is not version or rule(s)

        missing = [p for p in self.assembly.platforms if version.platforms and p not in version.platforms]
        yield Constraint(f"{label} lacks {missing}", frozenset([name]), when_selected(lambda s: not missing))
        for requirement in version.requires:
            involved = self.providers(requirement.name) | {name}
            if requirement.optional:
                rule = self._optional_rule(requirement)
                yield Constraint(f"{label} allows only {requirement}", involved, when_selected(rule))
            else:
                yield Constraint(
                    f"{label} requires {requirement}", involved, when_selected(lambda s, r=requirement: self.met(s, r))
                )
        for conflict in version.conflicts:
            involved = self.providers(conflict.name) | {name}
            yield Constraint(
                f"{label} conflicts with {conflict}", involved, when_selected(self._conflict_rule(name, conflict))
            )

    def _optional_rule(self, requirement: Requirement) -> Callable[[Selection], bool]:
        version_range = Range.parse(requirement.range)

        def rule(selection: Selection) -> bool:
            for component in self.providers(requirement.name):
                if component in selection:
                    provided = self.provided(component, selection[component], requirement.name)
                    if provided is not None and not version_range.contains(provided):
                        return False
            return True

        return rule

    def _conflict_rule(self, name: str, conflict: Requirement) -> Callable[[Selection], bool]:
        version_range = Range.parse(conflict.range)

        def rule(selection: Selection) -> bool:
            for component in self.providers(conflict.name) - {name}:
                if component in selection:
                    provided = self.provided(component, selection[component], conflict.name)
                    if provided is not None and version_range.contains(provided):
                        return False
            return True

        return rule

    def find_valid(self) -> Selection | None:
        """Search every combination of versions, each component also possibly absent.

        Components are assigned in name order, and each constraint is checked as soon as
        the last component it involves is assigned, which prunes without skipping any
        combination that could still be valid.
        """
        position = {name: index for index, name in enumerate(self.names)}
        checks: list[list[Constraint]] = [[] for _ in self.names]
        for constraint in self.constraints:
            involved = [position[n] for n in constraint.involved if n in position]
            checks[max(involved, default=0)].append(constraint)
        return self._search({}, 0, checks)

    def _search(self, selection: Selection, depth: int, checks: list[list[Constraint]]) -> Selection | None:
        if depth == len(self.names):
            return dict(selection)
        name = self.names[depth]
        for option in [None, *self.catalog.get(name).component.versions]:
            if option is not None:
                selection[name] = option
            if all(constraint.is_satisfied(selection) for constraint in checks[depth]):
                found = self._search(selection, depth + 1, checks)
                if found is not None:
                    return found
            selection.pop(name, None)
        return None
