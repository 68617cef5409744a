"""`moby-asm lock`, `why`, `tree` and `graph`: resolve the assembly and explain the selection."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.build import CacheOption, DebianKeyringOption, DebianMirrorOption
from moby_asm.cli.output import console, escape, print_json, table

AssemblyArgument = typer.Argument(Path("."), help="The assembly file, or a folder holding assembly.yml.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _locked(assembly: Path, upgrade: list[str] | None = None, upgrade_all: bool = False, reporter=None,
            debian=None):
    from moby_asm.project import lock_project, open_project

    project = open_project(assembly)
    return project, lock_project(project, set(upgrade or ()), upgrade_all, reporter, debian)


def lock(
    assembly: Path = AssemblyArgument,
    upgrade: list[str] = typer.Option(None, "--upgrade", metavar="NAME",
                                      help="Let NAME move to its newest allowed version; repeat for several."),
    upgrade_all: bool = typer.Option(False, "--upgrade-all", help="Let every component move to its newest version."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 when the lock does not match the inputs."),
    offline: bool = typer.Option(False, "--offline", help="Contact no registry or Debian mirror; fail "
                                                             "if the trust policy covers an image."),
    insecure: list[str] = typer.Option(None, "--insecure-registry", metavar="HOST[:PORT]",
                                       help="Allow plain HTTP to this registry (loopback hosts always are)."),
    mirrors: list[str] = typer.Option(None, "--mirror", metavar="REGISTRY=MIRROR",
                                      help="Check signatures of REGISTRY's images on MIRROR."),
    debian_mirrors: list[str] = DebianMirrorOption,
    debian_keyring: Path = DebianKeyringOption,
    cache: Path = CacheOption,
    json: bool = JsonOption,
) -> None:
    """Resolve the assembly and write assembly.lock beside it; verify the signatures its trust policy requires."""
    import yaml

    from moby_asm.cli.build import parse_mirrors
    from moby_asm.cli.output import ConsoleReporter, interruptible
    from moby_asm.debian.packages import DebianOptions
    from moby_asm.lock import LockMismatch, compare_locks, write_lock

    debian = DebianOptions(list(debian_mirrors or ()), debian_keyring, offline, cache)
    with interruptible("lock interrupted; the lock file is unchanged"):
        project, locked = _locked(assembly, upgrade, upgrade_all, ConsoleReporter(), debian)
    _check_upgrade_names(project, upgrade or [])
    locked = _verify_signed(project, locked, offline, set(insecure or ()), parse_mirrors(mirrors or ()))
    if check:
        new = yaml.safe_load(locked.text)
        if project.lock is None:
            differences = ["no lock file; run 'moby-asm lock'"]
        else:
            differences = compare_locks(project.lock, new)
        if differences:
            raise LockMismatch(project.lock_path, differences)
    else:
        write_lock(project.lock_path, locked.text)
    _report_lock(project, locked, check, json)


def _verify_signed(project, locked, offline: bool, insecure: set[str], mirrors: dict[str, str]):
    """Verify each image the trust policy covers and pin a tag-only one to the digest that was verified."""
    from moby_asm.compose.render import pinned_reference
    from moby_asm.trust.policy import PolicyViolation, enforce_all, load_policy
    from moby_asm.trust.signatures import resolve_digest

    policy = load_policy(project.assembly.trust, project.assembly_path)
    pins, covered = {}, []
    for name, (_, version) in locked.resolution.selected.items():
        image = version.source.image if version.source is not None else None
        rules = policy.rules_for("images", image) if image else []
        if not rules:
            continue
        if offline:
            raise PolicyViolation(f"component {name}: trust rule {rules[0].match!r} in {rules[0].declared_in} "
                                  f"covers {image}, whose signature cannot be checked --offline")
        record = locked.built.get(name)
        reference = pinned_reference(image, record["digest"]) if record and "@" not in image else image
        if "@" not in reference:
            reference = f"{image}@{resolve_digest(image, insecure=insecure, mirrors=mirrors)}"
            pins[name] = {"image": image, "digest": reference.partition("@")[2]}
        covered.append(reference)
    enforce_all(policy, "images", covered, insecure=insecure, mirrors=mirrors)
    return locked.with_built(pins) if pins else locked


def _check_upgrade_names(project, names: list[str]) -> None:
    from moby_asm.catalog.query import ComponentNotFound
    from moby_asm.documents.diagnostics import suggest

    for name in names:
        if project.catalog.get(name) is None:
            raise ComponentNotFound(name, f"--upgrade {name}: no component of that name in the catalog"
                                          + suggest(name, project.catalog.entries))


def _report_lock(project, locked, check: bool, json: bool) -> None:
    resolution = locked.resolution
    if json:
        print_json({
            "lock": str(project.lock_path),
            "written": not check,
            "components": {name: version.version for name, (_, version) in resolution.selected.items()},
            "capabilities": resolution.capabilities,
            "order": locked.order,
        })
        return
    title = f"{project.assembly.name}: {len(resolution.selected)} components"
    output = table("component", "version", "stage", title=title)
    for name, (_, version) in resolution.selected.items():
        output.add_row(name, version.version, version.stage)
    console().print(output)
    verb = "is up to date" if check else "written"
    console().print(f"{escape(str(project.lock_path))} {verb}")


def why(name: str = typer.Argument(..., help="A selected component."), assembly: Path = AssemblyArgument,
        json: bool = JsonOption) -> None:
    """Show every path of requirements from the assembly to NAME."""
    from moby_asm.resolve.graph import ROOT_LABEL, iter_paths
    from moby_asm.resolve.universe import ROOT

    project, locked = _locked(assembly)
    resolution = locked.resolution
    if name not in resolution.selected:
        from moby_asm.catalog.query import ComponentNotFound

        raise ComponentNotFound(name, f"{name!r} is not part of the selection of assembly {project.assembly.name!r}; "
                                      "run 'moby-asm tree' to see what is selected")
    paths = list(iter_paths(resolution, name))
    rows = [[{"from": ROOT_LABEL if e.parent == ROOT else e.parent, "to": e.child, "requirement": e.text,
              "optional": e.kind == "optional"} for e in path] for path in paths]
    if json:
        print_json({"component": name, "version": resolution.selected[name][1].version, "paths": rows})
        return
    console().print(f"{name} {resolution.selected[name][1].version} is selected because:", markup=False)
    for path in rows:
        steps = [f"{step['to']} (requires {step['requirement']}{', optional' if step['optional'] else ''})"
                 for step in path]
        console().print("  " + " -> ".join([path[0]["from"]] + steps),
                        markup=False, soft_wrap=True)


def tree(assembly: Path = AssemblyArgument, json: bool = JsonOption) -> None:
    """Show the requirement tree of the selection."""
    from rich.tree import Tree

    from moby_asm.resolve.graph import tree_lines

    project, locked = _locked(assembly)
    resolution = locked.resolution
    rows = tree_lines(resolution)
    if json:
        print_json([{"depth": d, "name": n, "requirement": t, "repeated": r,
                     "version": resolution.selected[n][1].version} for d, n, t, r in rows])
        return
    root = Tree(f"{project.assembly.name} {project.assembly.version}")
    stack = [root]
    for depth, name, text, repeated in rows:
        del stack[depth + 1:]
        label = f"{name} {resolution.selected[name][1].version}  [dim]({escape(text)})[/dim]"
        node = stack[depth].add(label + (" [dim](shown above)[/dim]" if repeated else ""))
        stack.append(node)
    console().print(root)


GRAPH_FORMATS = ("dot", "mermaid", "json", "svg", "png")


def graph(
    assembly: Path = AssemblyArgument,
    format: str = typer.Option("dot", "--format", "-f", help=f"One of {', '.join(GRAPH_FORMATS)}."),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of standard output."),
    json: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Export the selection graph as Graphviz dot, Mermaid, JSON, or SVG/PNG (needs Graphviz)."""
    import sys

    from moby_asm.errors import InputError
    from moby_asm.fileio import atomic_write_bytes
    from moby_asm.resolve import graph as exports

    if json:
        format = "json"
    if format not in GRAPH_FORMATS:
        raise InputError(f"unknown graph format {format!r}; use one of {', '.join(GRAPH_FORMATS)}")
    _, locked = _locked(assembly)
    resolution = locked.resolution
    if format in ("svg", "png"):
        from moby_asm.tools import run_tool

        data = run_tool(["dot", f"-T{format}"], input=exports.to_dot(resolution).encode(),
                        hint="install Graphviz (Debian package 'graphviz'), or use --format dot")
    else:
        render = {"dot": exports.to_dot, "mermaid": exports.to_mermaid, "json": exports.to_json}[format]
        data = render(resolution).encode()
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        atomic_write_bytes(output, data)
