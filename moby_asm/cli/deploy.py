"""`moby-asm deploy` and `moby-asm undeploy`: the assembly's services on a swarm."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.output import ConsoleReporter, console, escape, interruptible, print_json, table

AssemblyArgument = typer.Argument(Path("."), help="The assembly file, or a folder holding assembly.yml.")
EngineOption = typer.Option(None, "--engine", metavar="URL",
                            help="A swarm manager's Docker Engine; default: DOCKER_HOST, else the default socket.")


def deploy(
    assembly: Path = AssemblyArgument,
    engine: str = EngineOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would change; change nothing."),
    timeout: float = typer.Option(120, "--timeout", min=1, help="Seconds to wait for tasks to run."),
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Create or update the assembly's services, configs and secrets on a swarm and wait for them."""
    from moby_asm.deploy import swarm
    from moby_asm.deploy.stack import collect_services
    from moby_asm.engine import connect
    from moby_asm.errors import InputError
    from moby_asm.project import lock_project, open_project

    project = open_project(assembly)
    services = collect_services(lock_project(project, reporter=ConsoleReporter()).resolution)
    if not services:
        raise InputError(f"{project.assembly_path} declares no services, and neither do its components; "
                         "add a 'services' section (see docs/deploy.md)")
    files = swarm.read_files(services)
    client = connect(engine)
    swarm.check_swarm(client)
    name = project.assembly.name
    if dry_run:
        _print_changes(swarm.plan(client, name, services, files), json)
        return
    with interruptible("deploy interrupted; run it again to finish"):
        changes = swarm.deploy(client, name, services, files)
        states = swarm.wait(client, name, services, timeout)
    _print_states(changes, states, json)
    failed = [state for state in states if state.errors or state.running < state.replicas or state.updating]
    if failed:
        raise swarm.DeployFailed("; ".join(_failure(state, timeout) for state in failed))


def _failure(state, timeout: float) -> str:
    text = f"service {state.name}: {state.running} of {state.replicas} running"
    if state.errors:
        return text + f", task error: {state.errors[-1]}"
    if state.updating:
        return text + f", update still in progress after {timeout:.0f} s"
    reason = f" ({state.waiting[-1]})" if state.waiting else ""
    return text + f", not running after {timeout:.0f} s{reason}"


def undeploy(assembly: Path = AssemblyArgument, engine: str = EngineOption,
             json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Remove every service, config and secret the assembly created on the swarm."""
    from moby_asm.deploy import swarm
    from moby_asm.engine import connect
    from moby_asm.project import open_project

    project = open_project(assembly)
    client = connect(engine)
    swarm.check_swarm(client)
    _print_changes(swarm.undeploy(client, project.assembly.name), json)


def _print_changes(changes, json: bool) -> None:
    if json:
        print_json([vars(change) for change in changes])
        return
    output = table("kind", "name", "action", title=f"{len(changes)} objects")
    for change in changes:
        output.add_row(change.kind, escape(change.name), change.action)
    console().print(output)


def _print_states(changes, states, json: bool) -> None:
    if json:
        print_json({"changes": [vars(change) for change in changes], "services": [vars(state) for state in states]})
        return
    _print_changes(changes, False)
    output = table("service", "running", "error", title="services")
    for state in states:
        error = state.errors[-1] if state.errors else ""
        output.add_row(escape(state.name), f"{state.running}/{state.replicas}", escape(error))
    console().print(output)
