"""Collect the services of a selection and render them as a Compose file for `docker stack deploy`.

Services come from the selected components, then from the assembly, which replaces a
component's service of the same name. Config and secret files are resolved against the
file that declares them and written as absolute paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moby_asm.deploy.model import ServiceSpec
from moby_asm.resolve.resolution import Resolution

COMPOSE_VERSION = "3.8"
LABEL_ASSEMBLY = "com.moby-asm.assembly"


@dataclass(frozen=True)
class DeclaredService:
    """A service with the file that declared it, against which its files are resolved."""

    name: str
    spec: ServiceSpec
    declared_in: Path

    def file(self, path: str) -> Path:
        return (self.declared_in.parent / path).resolve()


def collect_services(resolution: Resolution) -> dict[str, DeclaredService]:
    """Return every service of the selected components and the assembly, by name."""
    services: dict[str, DeclaredService] = {}
    for entry, version in resolution.selected.values():
        for name, spec in version.services.items():
            services[name] = DeclaredService(name, spec, entry.path)
    for name, spec in resolution.assembly.services.items():
        services[name] = DeclaredService(name, spec, Path(resolution.assembly_path))
    return dict(sorted(services.items()))


def render_stack(assembly: str, services: dict[str, DeclaredService]) -> dict[str, Any]:
    """Return the Compose file (version 3.8) of the services, labelled with the assembly's name."""
    stack: dict[str, Any] = {"version": COMPOSE_VERSION, "services": {}}
    networks: set[str] = set()
    for kind in ("configs", "secrets"):
        files = {f"{name}": {"file": str(service.file(reference.file))} for service in services.values()
                 for name, reference in getattr(service.spec, kind).items()}
        if files:
            stack[kind] = dict(sorted(files.items()))
    for name, service in services.items():
        stack["services"][name] = _service(assembly, service.spec)
        networks.update(service.spec.networks)
    if networks:
        stack["networks"] = {network: {"external": True} if network == "host" else {"driver": "overlay"}
                             for network in sorted(networks)}
    return stack


def _service(assembly: str, spec: ServiceSpec) -> dict[str, Any]:
    item: dict[str, Any] = {"image": spec.image}
    if spec.command is not None:
        item["command"] = spec.command
    if spec.environment:
        item["environment"] = dict(sorted(spec.environment.items()))
    if spec.ports:
        item["ports"] = [port.model_dump(exclude_none=True) for port in spec.ports]
    if spec.networks:
        item["networks"] = list(spec.networks)
    for kind in ("configs", "secrets"):
        references = getattr(spec, kind)
        if references:
            item[kind] = [{"source": name, **({"target": ref.target} if ref.target else {})}
                          for name, ref in sorted(references.items())]
    if spec.healthcheck is not None:
        item["healthcheck"] = spec.healthcheck.model_dump()
    deploy: dict[str, Any] = {"replicas": spec.replicas, "labels": {LABEL_ASSEMBLY: assembly},
                              "update_config": spec.update.model_dump()}
    if spec.placement.constraints:
        deploy["placement"] = {"constraints": list(spec.placement.constraints)}
    item["deploy"] = deploy
    return item
