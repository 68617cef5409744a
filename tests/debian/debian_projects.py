"""Write moby-asm project folders whose components are made from Debian packages."""

from __future__ import annotations

from pathlib import Path

import yaml


def component_descriptor(name: str, debian: dict, stage: str = "init") -> dict:
    """Return a component descriptor with one version, 1.0.0, whose source is `debian`."""
    return {"name": name, "versions": [{"version": "1.0.0", "stage": stage, "source": {"debian": debian}}]}


def write_project(folder: Path, sources: dict[str, dict], outputs: tuple[str, ...] = ("tar",)) -> Path:
    """Write assembly.yml requiring one component per entry of `sources`, and components/NAME.yml for each."""
    (folder / "components").mkdir(parents=True)
    for name, debian in sources.items():
        text = yaml.safe_dump(component_descriptor(name, debian), sort_keys=False)
        (folder / "components" / f"{name}.yml").write_text(text)
    assembly = {"name": "debian-test", "requires": list(sources), "outputs": list(outputs)}
    (folder / "assembly.yml").write_text(yaml.safe_dump(assembly, sort_keys=False))
    return folder
