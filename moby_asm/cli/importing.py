"""`moby-asm import`: turn LinuxKit configs into an assembly project."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.output import console, escape, print_json


def import_configs(
    configs: list[Path] = typer.Argument(..., help="LinuxKit YAML files; later files add to earlier ones."),
    output: Path = typer.Option(None, "--output", "-o", help="Project folder to create; default: named after "
                                                             "the first file."),
    name: str = typer.Option(None, "--name", help="Assembly name; default: the first file's name."),
    force: bool = typer.Option(False, "--force", help="Write into a folder that already holds an assembly."),
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Create an assembly and local components that compose back to the given LinuxKit configs."""
    from moby_asm.importing import import_project

    folder = output or Path(configs[0].stem)
    report = import_project(configs, folder, name or _default_name(configs[0]), force)
    if json:
        print_json({"folder": str(folder), "components": sorted(report.result.components),
                    "matched": report.result.matched, "ignored": report.result.ignored,
                    "equivalent": not report.differences})
        return
    console().print(f"wrote {escape(str(folder / 'assembly.yml'))} and "
                    f"{len(report.result.components)} local components")
    for line in report.result.matched:
        console().print(f"  catalog: {escape(line)}")
    for line in report.result.ignored:
        console().print(f"  ignored: {escape(line)}")
    console().print("composing the assembly gives back an equivalent LinuxKit config")


def _default_name(path: Path) -> str:
    import re

    name = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return name or "imported"
