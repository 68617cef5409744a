"""`moby-asm compose`: render the LinuxKit config, build plan and lock into a build folder."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.output import console, escape, print_json

STAGE_TITLES = {"kernel": "kernel", "init": "init", "onboot": "onboot", "service": "services",
                "onshutdown": "onshutdown", "files": "files"}


def compose(
    assembly: Path = typer.Argument(Path("."), help="The assembly file, or a folder holding assembly.yml."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="Build folder to write; default: build/ beside the assembly."),
    locked_only: bool = typer.Option(False, "--locked", help="Fail instead of updating a missing or outdated lock."),
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Resolve the assembly and write linuxkit.yml, plan.json and assembly.lock to the build folder."""
    import yaml

    from moby_asm.cli.output import ConsoleReporter
    from moby_asm.compose import compose as compose_project
    from moby_asm.compose import write_composition
    from moby_asm.lock import LockMismatch, compare_locks, write_lock
    from moby_asm.project import lock_project, open_project

    project = open_project(assembly)
    locked = lock_project(project, reporter=ConsoleReporter())
    differences = (["no lock file"] if project.lock is None
                   else compare_locks(project.lock, yaml.safe_load(locked.text)))
    if differences and locked_only:
        raise LockMismatch(project.lock_path, differences)
    composition = compose_project(project, locked)
    folder = output or project.folder / "build"
    if differences:
        write_lock(project.lock_path, locked.text)
    write_composition(composition, folder, project.folder)
    _report(project, composition, folder, bool(differences), json)


def _report(project, composition, folder: Path, lock_updated: bool, json: bool) -> None:
    from rich.tree import Tree

    resolution = composition.locked.resolution
    outputs = [{"format": step["inputs"]["format"], "builder": step["inputs"]["builder"]}
               for step in composition.plan["steps"] if step["kind"] == "emit"]
    if json:
        print_json({
            "assembly": project.assembly.name,
            "folder": str(folder),
            "files": sorted(composition.files),
            "lockUpdated": lock_updated,
            "stages": {stage: [{"name": n, "version": resolution.selected[n][1].version} for n in names]
                       for stage, names in composition.locked.order.items()},
            "outputs": outputs,
            "steps": len(composition.plan["steps"]),
        })
        return
    root = Tree(f"[bold]{escape(project.assembly.name)}[/bold] {escape(project.assembly.version)}")
    for stage, names in composition.locked.order.items():
        if names:
            branch = root.add(STAGE_TITLES[stage])
            for name in names:
                branch.add(f"{escape(name)} {escape(resolution.selected[name][1].version)}")
    branch = root.add("outputs")
    for item in outputs:
        branch.add(f"{escape(item['format'])} (builder: {item['builder']})")
    console().print(root)
    written = ", ".join(sorted(composition.files))
    console().print(f"wrote {escape(written)} to {escape(str(folder))} "
                    f"({len(composition.plan['steps'])} plan steps)")
    if lock_updated:
        console().print(f"updated {escape(str(project.lock_path))}")
