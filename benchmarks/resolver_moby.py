"""Run moby-asm's resolver on a benchmark problem.

The catalog is converted to validated `Component` models once per catalog, as loading
a catalog would, so a timed run covers `resolve` alone: building the solver's universe,
solving, and describing the result.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from resolver_model import Catalog, Problem, Provision, Release, Selection
from resolver_timing import NoSolution, Run, RunResult

from moby_asm.assembly.model import Assembly
from moby_asm.catalog.loading import Catalog as MobyCatalog
from moby_asm.catalog.loading import CatalogEntry, CatalogSource
from moby_asm.catalog.model import Component
from moby_asm.resolve import Resolution, Unresolvable, resolve

ASSEMBLY_PATH = "assembly.yml"
"""Path recorded in the origins of assembly requirements; it is read only to explain a failure."""


def moby_catalog(catalog: Catalog) -> MobyCatalog:
    """Return the catalog as moby-asm's validated models, from a folder that does not exist."""
    source = CatalogSource("benchmark", Path(tempfile.gettempdir()) / "moby-asm-benchmark-catalog")
    result = MobyCatalog([source])
    for name, releases in catalog.components.items():
        versions = [_version_document(name, release) for release in releases]
        component = Component.model_validate({"name": name, "versions": versions})
        result.add(CatalogEntry(component, source.path / f"{name}.yml", source))
    return result


def _version_document(name: str, release: Release) -> dict:
    document: dict = {"version": release.version, "stage": "service",
                      "source": {"image": f"example/{name}:v{release.version}"}}
    if release.requires:
        document["requires"] = [f"{target} {range_text}" for target, range_text in release.requires]
    if release.provides:
        document["provides"] = [f"{capability} {version}" for capability, version in release.provides]
    return document


def assembly_for(problem: Problem) -> Assembly:
    requires = [f"{name} {range_text}" for name, range_text in problem.requires]
    return Assembly.model_validate({"name": problem.name, "requires": requires})


def moby_run(problem: Problem, catalog: MobyCatalog) -> Run:
    """Return a function that resolves the problem's assembly once."""
    assembly = assembly_for(problem)

    def run() -> RunResult:
        try:
            resolution = resolve(catalog, assembly, ASSEMBLY_PATH)
        except Unresolvable as error:
            raise NoSolution(error.explanation) from None
        detail = f"{resolution.decisions} decisions, {resolution.conflicts} conflicts"
        return RunResult(_selection(problem.catalog, resolution), detail=detail)

    return run


def _selection(catalog: Catalog, resolution: Resolution) -> Selection:
    components = {name: version.version for name, (_, version) in resolution.selected.items()}
    capabilities = {}
    for capability, provider in resolution.capabilities.items():
        version = components[provider]
        release = catalog.release(provider, version)
        provided = dict(release.provides)[capability]
        capabilities[capability] = Provision(capability, provided, provider, version)
    return Selection(components, capabilities)
