"""Run resolvelib (the resolver of pip) on a benchmark problem.

A small provider serves the catalog. Requirements are `(name, Range)` pairs matched
with moby-asm's `Range`, so both resolvers see the same version semantics. A
capability is a package of its own whose candidates are its provisions, each at the
capability version and requiring its provider at exactly the provider's version.
Candidates are offered newest first. The next package to pin is one that caused a
backtrack (pip's provider also prefers those), and among those the one with the
fewest matching candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from resolvelib import AbstractProvider, BaseReporter, ResolutionImpossible, Resolver
from resolver_model import Catalog, Problem, Provision, Requirement, Selection
from resolver_timing import NoSolution, Run, RunResult

from moby_asm.versions import Range, Version

MAX_ROUNDS = 10**9
"""resolvelib stops after 100 rounds by default; the time limit bounds runs instead."""


@dataclass(frozen=True, slots=True)
class PeerRequirement:
    name: str
    range: Range


@dataclass(frozen=True, eq=False, slots=True)
class PeerCandidate:
    """One release of a component, or one provision of a capability."""

    name: str
    version: Version
    requires: tuple[Requirement, ...]
    provision: Provision | None = None


class CatalogProvider(AbstractProvider):
    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._candidates: dict[str, list[PeerCandidate]] = {}

    def identify(self, requirement_or_candidate):
        return requirement_or_candidate.name

    def get_preference(self, identifier, resolutions, candidates, information, backtrack_causes):
        causes = {cause.requirement.name for cause in backtrack_causes}
        causes.update(cause.parent.name for cause in backtrack_causes if cause.parent is not None)
        return (identifier not in causes, sum(1 for _ in candidates[identifier]), identifier)

    def find_matches(self, identifier: str, requirements: Mapping[str, Iterator[PeerRequirement]],
                     incompatibilities: Mapping[str, Iterator[PeerCandidate]]) -> list[PeerCandidate]:
        excluded = {id(candidate) for candidate in incompatibilities[identifier]}
        ranges = [requirement.range for requirement in requirements[identifier]]
        return [candidate for candidate in self.candidates(identifier)
                if id(candidate) not in excluded and all(r.contains(candidate.version) for r in ranges)]

    def is_satisfied_by(self, requirement: PeerRequirement, candidate: PeerCandidate) -> bool:
        return requirement.range.contains(candidate.version)

    def get_dependencies(self, candidate: PeerCandidate) -> Iterable[PeerRequirement]:
        return [PeerRequirement(name, Range.parse(text)) for name, text in candidate.requires]

    def candidates(self, name: str) -> Sequence[PeerCandidate]:
        """Return every candidate of a component or capability, newest first."""
        found = self._candidates.get(name)
        if found is None:
            found = self._candidates[name] = self._make_candidates(name)
        return found

    def _make_candidates(self, name: str) -> list[PeerCandidate]:
        provisions = self.catalog.provisions.get(name)
        if provisions is None:
            releases = self.catalog.components.get(name, ())
            result = [PeerCandidate(name, Version.parse(r.version), r.requires) for r in releases]
            return sorted(result, key=lambda candidate: candidate.version, reverse=True)
        # Among provisions of one capability version, the newest provider release comes first.
        ordered = sorted(provisions, reverse=True, key=lambda p: (
            Version.parse(p.capability_version), Version.parse(p.component_version), p.component))
        return [PeerCandidate(name, Version.parse(p.capability_version),
                              ((p.component, f"={p.component_version}"),), p) for p in ordered]


def resolvelib_run(problem: Problem) -> Run:
    """Return a function that resolves the problem once with a fresh provider."""
    requirements = [PeerRequirement(name, Range.parse(text)) for name, text in problem.requires]

    def run() -> RunResult:
        resolver = Resolver(CatalogProvider(problem.catalog), BaseReporter())
        try:
            result = resolver.resolve(requirements, max_rounds=MAX_ROUNDS)
        except ResolutionImpossible as error:
            raise NoSolution(f"ResolutionImpossible with {len(error.causes)} causes") from None
        return RunResult(_selection(result.mapping))

    return run


def _selection(mapping: Mapping[str, PeerCandidate]) -> Selection:
    selection = Selection()
    for name, candidate in mapping.items():
        if candidate.provision is not None:
            selection.capabilities[name] = candidate.provision
        else:
            selection.components[name] = str(candidate.version)
    return selection
