"""Property tests of `resolve` on small generated catalogs, checked against `selections.Problem`.

Catalogs have two to six components with one to five versions each, random
requirements, occasional conflicts, optional requirements, capabilities and platform
limits. Assemblies get random `prefer` entries and locked versions, which change which
selection is chosen but never whether one exists. The catalogs are small enough for
`Problem.find_valid` to search every combination.

The generator leaves out three shapes. Two of them fail in the library and have strict
xfail case files in tests/data/resolver/: a version that requires its own component
(self-requirement-*), and a conflict on a name that some version of the same component
provides (conflict-provided-capability-itself, conflict-capability-own-other-version).
The third is an optional requirement on a name that other components provide, because
the documentation does not say whether it limits a provider that is selected directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moby_asm.assembly.model import Assembly
from moby_asm.catalog.loading import Catalog, CatalogEntry, CatalogSource
from moby_asm.catalog.model import Component, ComponentVersion
from moby_asm.resolve import Resolution, Unresolvable, resolve
from moby_asm.versions import Range, Version

from .selections import Problem

VERSIONS = ("0.1.0", "1.0.0", "1.1.0", "1.2.0-rc.1", "1.2.0", "2.0.0", "2.1.0")
RANGES = (
    "*",
    "^1.0.0",
    "~1.1.0",
    ">=1.1.0",
    "<2.0.0",
    "1.x",
    "2.x",
    "1.0.0 - 1.2.0",
    "^0.1.0 || ^2.0.0",
    "=1.0.0",
    ">=1.2.0-rc.1",
    "^1.2.0-rc.1",
    ">2.0.0",
    "<=1.1.0",
)
CAPABILITIES = ("k0", "k1")
PLATFORM_CHOICES = ([], [], [], [], [], [], ["linux/amd64"], ["linux/arm64"], ["linux/amd64", "linux/arm64"])
TARGET_CHOICES = (["linux/amd64"], ["linux/arm64"], ["linux/amd64", "linux/arm64"])

# Descriptors built in memory have no file, so explanations show this path without a position.
MEMORY = Path("/in-memory-catalog")
SOURCE = CatalogSource("generated", MEMORY)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Generated:
    """A generated catalog and assembly, as plain data in descriptor format."""

    components: dict[str, list[dict[str, Any]]]
    requires: list[str]
    platforms: list[str]
    prefer: dict[str, str]
    locked: dict[str, str]

    def build(self) -> tuple[Catalog, Assembly]:
        catalog = Catalog([SOURCE])
        for name, versions in self.components.items():
            component = Component.model_validate({"name": name, "versions": versions})
            catalog.add(CatalogEntry(component, MEMORY / f"{name}.yml", SOURCE))
        assembly = Assembly.model_validate(
            {"name": "generated", "requires": self.requires, "platforms": self.platforms, "prefer": self.prefer}
        )
        return catalog, assembly


class Planted:
    """One version per component that every constraint the generator adds must accept."""

    def __init__(self, components: dict[str, list[dict[str, Any]]], chosen: dict[str, int]):
        self.components = components
        self.chosen = chosen

    def provided_versions(self, name: str) -> list[str]:
        """Return the versions of `name` that the planted versions provide, by provider name."""
        result = []
        for component, index in sorted(self.chosen.items()):
            version = self.components[component][index]
            if component == name:
                result.append(version["version"])
            result += [text.split(" ")[1] for text in version.get("provides", ()) if text.split(" ")[0] == name]
        return result

    def serving_versions(self, name: str) -> list[str]:
        """Return the one version of `name` that every planted requirement on it must accept.

        A capability is served by one provider, so all requirements on it are aimed at
        the first planted provider by name. The list is empty when no planted version
        provides the name.
        """
        return self.provided_versions(name)[:1]


def _matches(range_text: str, versions: list[str]) -> bool:
    version_range = Range.parse(range_text)
    return any(version_range.contains(Version.parse(v)) for v in versions)


# Strategies are built once: building a fresh strategy for every draw costs more than
# resolving the generated catalog.
_INDEXES = [st.integers(0, size - 1) for size in range(1, 64)]


def _pick(draw, choices):
    return choices[draw(_INDEXES[len(choices) - 1])]


def _one_in(draw, size: int) -> bool:
    return draw(_INDEXES[size - 1]) == 0


def _versions(draw) -> list[str]:
    """Draw one to five distinct versions in a random descriptor order."""
    remaining = list(VERSIONS)
    chosen = []
    for _ in range(1 + draw(_INDEXES[4])):
        chosen.append(remaining.pop(draw(_INDEXES[len(remaining) - 1])))
    return chosen


def _provides(draw, owner: str, names: list[str]) -> list[str]:
    if not _one_in(draw, 4):
        return []
    provided = _pick(draw, [*CAPABILITIES, *[n for n in names if n != owner]])
    return [f"{provided} {_pick(draw, VERSIONS)}"]


def _range(draw, planted: Planted | None, name: str, inside: bool) -> str | None:
    """Draw a range, which for a planted version contains the serving provider or avoids all planted providers."""
    if planted is None:
        return _pick(draw, RANGES)
    if inside:
        serving = planted.serving_versions(name)
        choices = [r for r in RANGES if _matches(r, serving)] + [f"={v}" for v in serving]
    else:
        choices = [r for r in RANGES if not _matches(r, planted.provided_versions(name))]
    return _pick(draw, choices) if choices else None


def _names(components: dict[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
    """Return every requirable name and the components that provide it."""
    providers: dict[str, set[str]] = {name: {name} for name in components}
    for name, versions in components.items():
        for version in versions:
            for text in version.get("provides", ()):
                providers.setdefault(text.split(" ")[0], set()).add(name)
    return providers


def _relations(
    draw, owner: str, version: dict[str, Any], providers: dict[str, set[str]], planted: Planted | None
) -> None:
    """Add requirements and conflicts to `version`, which is the planted version when `planted` is set."""
    requirable = sorted(n for n in providers if n != owner)
    plain = [n for n in requirable if providers[n] == {n}]
    if planted is not None:
        requirable = [n for n in requirable if planted.serving_versions(n)]
    for _ in range(draw(_INDEXES[2]) if requirable else 0):
        name = _pick(draw, requirable)
        range_text = _range(draw, planted, name, inside=True)
        optional = name in plain and _one_in(draw, 5)
        version.setdefault("requires", []).append({"name": name, "range": range_text, "optional": optional})
    unowned = sorted(n for n in providers if owner not in providers[n])
    if unowned and _one_in(draw, 4):
        name = _pick(draw, unowned)
        range_text = _range(draw, planted, name, inside=False)
        if range_text is not None:
            version.setdefault("conflicts", []).append(f"{name} {range_text}")


@st.composite
def generated(draw, plant: bool = False) -> Generated:
    """Draw a catalog and assembly. With `plant`, a selection of one version of every component is valid."""
    names = [f"c{i}" for i in range(2 + draw(_INDEXES[4]))]
    components = {name: [{"version": v, "stage": "files"} for v in _versions(draw)] for name in names}
    for name, versions in components.items():
        for version in versions:
            version["provides"] = _provides(draw, name, names)
    chosen = {name: draw(_INDEXES[len(versions) - 1]) for name, versions in components.items()}
    planted = Planted(components, chosen) if plant else None
    providers = _names(components)
    for name, versions in components.items():
        for index, version in enumerate(versions):
            is_planted = planted is not None and chosen[name] == index
            _relations(draw, name, version, providers, planted if is_planted else None)
            if not is_planted:
                version["platforms"] = _pick(draw, PLATFORM_CHOICES)
    requires = _assembly_requires(draw, sorted(providers), planted)
    # A preferred component must provide the capability; naming another one is an input error.
    prefer = {n: _pick(draw, sorted(providers[n])) for n in sorted(providers)
              if providers[n] != {n} and _one_in(draw, 2)}
    locked = {n: _pick(draw, VERSIONS) for n in names if _one_in(draw, 3)}
    return Generated(components, requires, _pick(draw, TARGET_CHOICES), prefer, locked)


def _assembly_requires(draw, names: list[str], planted: Planted | None) -> list[str]:
    """Draw one to three distinct requirements, which the planted versions meet when `planted` is set."""
    if planted is not None:
        names = [n for n in names if planted.serving_versions(n)]
    result = []
    for _ in range(1 + draw(_INDEXES[2])):
        name = names.pop(draw(_INDEXES[len(names) - 1]))
        range_text = _range(draw, planted, name, inside=True)
        result.append(name if range_text == "*" else f"{name} {range_text}")
        if not names:
            break
    return result


def _solve(problem: Generated) -> tuple[Problem, Resolution | None]:
    catalog, assembly = problem.build()
    checker = Problem(catalog, assembly)
    try:
        return checker, resolve(catalog, assembly, str(MEMORY / "assembly.yml"), locked=problem.locked)
    except Unresolvable:
        return checker, None


def _selection(resolution: Resolution) -> dict[str, ComponentVersion]:
    return {name: version for name, (_, version) in resolution.selected.items()}


def _versions_of(selection: dict[str, ComponentVersion] | None) -> dict[str, str] | None:
    return None if selection is None else {name: version.version for name, version in selection.items()}


def _serving(resolution: Resolution, name: str) -> str:
    return resolution.capabilities.get(name, name)


def _check_resolution(checker: Problem, resolution: Resolution) -> None:
    selection = _selection(resolution)

    assert checker.violations(selection) == []
    for capability, provider in resolution.capabilities.items():
        assert provider in selection, f"capability {capability} is served by unselected {provider}"
    assert _unreachable(checker, resolution) == set()


def _unreachable(checker: Problem, resolution: Resolution) -> set[str]:
    """Return selected components that no chain of requirements from the assembly reaches."""
    selection = _selection(resolution)
    pending = [r for r in checker.assembly.requires]
    reached: set[str] = set()
    while pending:
        requirement = pending.pop()
        target = _serving(resolution, requirement.name)
        assert target in selection, f"{requirement} is served by {target}, which is not selected"
        provided = Problem.provided(target, selection[target], requirement.name)
        assert provided is not None and Range.parse(requirement.range).contains(provided), (
            f"{target} {selection[target].version} does not meet {requirement}"
        )
        if target not in reached:
            reached.add(target)
            pending += [r for r in selection[target].requires if not r.optional]
    return set(selection) - reached


@SETTINGS
@given(generated())
def test_selection_satisfies_constraints(problem: Generated):
    checker, resolution = _solve(problem)
    if resolution is not None:
        _check_resolution(checker, resolution)


@SETTINGS
@given(generated())
def test_unresolvable_has_no_selection(problem: Generated):
    checker, resolution = _solve(problem)
    if resolution is None:
        found = checker.find_valid()
        assert found is None, f"reported unresolvable, but {_versions_of(found)} is valid"


@SETTINGS
@given(generated(plant=True))
def test_planted_selection_resolves(problem: Generated):
    checker, resolution = _solve(problem)

    assert resolution is not None, f"reported unresolvable, but {_versions_of(checker.find_valid())} is valid"
    _check_resolution(checker, resolution)
