"""Turn a resolver case file into real descriptor files and run the resolver on them.

A case file holds a `catalog` (component name to a list of versions), an `assembly`,
optional `locked`, `upgrade` and `upgrade_all`, and an `expect` block with exactly one of:

- `selection`: the complete map of selected component to version, with optional
  `capabilities` (capability to provider), `order` (stage to names in boot order) and
  `backtracks: true` (the solver must undo at least one decision on the way);
- `unresolvable`, `cycle` or `unknown`: substrings that the message of `Unresolvable`,
  `OrderCycle` or `UnknownRequirement` must each contain.

An `xfail` key marks a case whose expectation is right but which the library fails;
its value is the reason.

Each component is written as `NAME.yml` and the assembly as `assembly.yml`, so every
constraint has a real FILE:LINE:COLUMN. The layout is fixed, so positions can be read
off the case:

    name: NAME                     line 1
    versions:                      line 2
    - version: 1.0.0               first version starts on line 3
      KEY: ...                     the version's keys in the order of the case,
      stage: files                 then `stage` and `source` when the case omits them

Lists are written in block style (`- item` at the indentation of their key), so the
first item of a list that starts on line L is on line L + 1, column (key column + 2).
The assembly file is `name: CASE-ID` followed by the case's keys in order, so its
first requirement sits at `assembly.yml:3:3`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moby_asm.assembly.model import load_assembly
from moby_asm.catalog.loading import CatalogSource, load_catalog
from moby_asm.resolve import Resolution, resolve
from moby_asm.resolve.order import boot_order
from moby_asm.resolve.positions import locate

DATA = Path(__file__).parent.parent / "data" / "resolver"


@dataclass
class Case:
    """One case file: its id (the file name without suffix) and its parsed contents."""

    id: str
    data: dict[str, Any]

    @property
    def expect(self) -> dict[str, Any]:
        return self.data["expect"]


@dataclass
class Outcome:
    """A successful resolution and the boot order of its ordered stages."""

    resolution: Resolution
    order: dict[str, list[str]]

    @property
    def selection(self) -> dict[str, str]:
        return {name: version.version for name, (_, version) in self.resolution.selected.items()}


def load_cases() -> list[Case]:
    return [Case(path.stem, yaml.safe_load(path.read_text())) for path in sorted(DATA.glob("*.yml"))]


def descriptor_text(name: str, versions: list[dict[str, Any]]) -> str:
    """Return the YAML of a component, adding `stage` and a placeholder `source` after the given keys."""
    written = []
    for declared in versions:
        version = dict(declared)
        version.setdefault("stage", "files")
        if version["stage"] != "files":
            version.setdefault("source", {"image": f"example/{name}:{version['version']}"})
        written.append(version)
    return _dump({"name": name, "versions": written})


def assembly_text(case_id: str, assembly: dict[str, Any]) -> str:
    return _dump({"name": case_id, **assembly})


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


def write_case(case: Case, folder: Path) -> tuple[Path, Path]:
    """Write the descriptors and assembly.yml of `case`, and return the catalog folder and assembly path."""
    components = folder / "components"
    components.mkdir()
    for name, versions in case.data["catalog"].items():
        (components / f"{name}.yml").write_text(descriptor_text(name, versions))
    assembly_path = folder / "assembly.yml"
    assembly_path.write_text(assembly_text(case.id, case.data["assembly"]))
    return components, assembly_path


def run_case(case: Case, folder: Path) -> Outcome:
    """Load the written case with the library, resolve it and order every stage."""
    components, assembly_path = write_case(case, folder)
    catalog = load_catalog([CatalogSource("project", components)])
    assembly, _ = load_assembly(assembly_path)
    upgrade = set(case.data.get("upgrade", ()))
    resolution = resolve(
        catalog,
        assembly,
        str(assembly_path),
        locked=case.data.get("locked"),
        upgrade=upgrade,
        upgrade_all=case.data.get("upgrade_all", False),
    )
    return Outcome(resolution, boot_order(resolution, locate))
