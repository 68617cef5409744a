"""Run the solver for an assembly and describe its result in catalog terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from moby_asm.assembly.model import Assembly
from moby_asm.catalog.loading import Catalog, CatalogEntry
from moby_asm.catalog.model import ComponentVersion
from moby_asm.documents.diagnostics import Diagnostic, suggest
from moby_asm.errors import InputError, ResolutionError
from moby_asm.resolve.explain import explain
from moby_asm.resolve.positions import position
from moby_asm.resolve.provider import Origin
from moby_asm.resolve.solver import SolveFailure, Solver
from moby_asm.resolve.universe import CAPABILITY_PREFIX, ROOT, Universe


class Unresolvable(ResolutionError):
    """No selection satisfies the assembly; `explanation` gives the reason, step by step."""

    def __init__(self, assembly: str, explanation: str):
        self.assembly = assembly
        self.explanation = explanation
        super().__init__(f"no consistent selection of components exists for assembly {assembly!r}:\n{explanation}")


class UnknownRequirement(InputError):
    """The assembly requires a name that no component or capability has."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(str(diagnostic))


@dataclass(frozen=True)
class Edge:
    """One satisfied requirement: `parent` (a component or ROOT) requires `child`."""

    parent: str
    child: str
    text: str
    origin: Origin | None
    kind: str


@dataclass
class Resolution:
    """The selected component versions, the provider chosen for each capability, and why."""

    assembly: Assembly
    assembly_path: str
    selected: dict[str, tuple[CatalogEntry, ComponentVersion]]
    capabilities: dict[str, str]
    edges: list[Edge] = field(default_factory=list)
    decisions: int = 0
    conflicts: int = 0


def resolve(catalog: Catalog, assembly: Assembly, assembly_path: str, *, locked: dict[str, str] | None = None,
            upgrade: set[str] | None = None, upgrade_all: bool = False,
            locked_providers: dict[str, str] | None = None) -> Resolution:
    """Select one version of every component the assembly needs, newest first.

    Locked versions are kept unless named in `upgrade` or `upgrade_all` is set. Raises
    `UnknownRequirement` when the assembly names something the catalog lacks, and
    `Unresolvable` with a derivation when no selection exists.
    """
    universe = Universe(catalog, assembly, assembly_path, locked, upgrade, upgrade_all, locked_providers)
    _check_requirements(universe)
    solver = Solver(universe)
    try:
        solution = solver.solve()
    except SolveFailure as failure:
        raise Unresolvable(assembly.name, explain(failure.incompatibility, universe)) from None
    return _resolution(universe, solution.selected, solution.decisions, solution.conflicts)


def _check_requirements(universe: Universe) -> None:
    known = set(universe.catalog.entries) | set(universe.providers)
    for index, requirement in enumerate(universe.assembly.requires):
        if requirement.name not in known:
            line, column = position(Origin(universe.assembly_path, ("requires", index)))
            message = (f"no component or capability named {requirement.name!r} in the catalog"
                       + (suggest(requirement.name, known) or "; run 'moby-asm components search' to find one"))
            raise UnknownRequirement(Diagnostic(Path(universe.assembly_path), line, column, message))
    for capability, component in universe.assembly.prefer.items():
        providers = {p.component for p in universe.providers.get(capability, ())} | (
            {capability} if capability in universe.catalog.entries else set())
        if component not in providers:
            line, column = position(Origin(universe.assembly_path, ("prefer", capability)))
            message = (f"'prefer' names {component!r} for {capability!r}, but it does not provide "
                       f"{capability!r}; providers: {', '.join(sorted(providers)) or 'none'}")
            raise UnknownRequirement(Diagnostic(Path(universe.assembly_path), line, column, message))


def _resolution(universe: Universe, chosen: dict[str, int], decisions: int, conflicts: int) -> Resolution:
    selected = {}
    capabilities = {}
    for package, index in chosen.items():
        if package == ROOT:
            continue
        if package.startswith(CAPABILITY_PREFIX):
            capabilities[package.removeprefix(CAPABILITY_PREFIX)] = universe.provisions(package)[index].component
        else:
            selected[package] = (universe.catalog.get(package), universe.component_versions(package)[index])
    resolution = Resolution(universe.assembly, universe.assembly_path, dict(sorted(selected.items())), dict(sorted(capabilities.items())),
                            decisions=decisions, conflicts=conflicts)
    resolution.edges = _edges(universe, chosen)
    return resolution


def _edges(universe: Universe, chosen: dict[str, int]) -> list[Edge]:
    """Return the satisfied requirements between selected packages, capabilities collapsed."""
    edges = []
    for package, index in chosen.items():
        if package.startswith(CAPABILITY_PREFIX):
            continue
        for dependency in universe.dependencies(package, index):
            if dependency.kind == "conflicts" or dependency.package not in chosen:
                continue
            child = dependency.package
            if child.startswith(CAPABILITY_PREFIX):
                child = universe.provisions(child)[chosen[child]].component
            edges.append(Edge(package, child, dependency.text, dependency.origin, dependency.kind))
    return sorted(edges, key=lambda e: (e.parent, e.child, e.text))
