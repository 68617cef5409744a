"""Deploy an assembly's services onto a Docker Engine in swarm mode, and remove them again.

Everything created carries the label com.moby-asm.assembly=NAME, so `undeploy` removes
exactly what the assembly created. Configs and secrets are immutable in swarm, so each
one is named after its content hash and a changed file gives a new object. A service
records a hash of its whole specification in a label. A service whose hash is unchanged
is left alone, so deploying unchanged inputs changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from moby_asm.deploy.stack import LABEL_ASSEMBLY, DeclaredService
from moby_asm.errors import InputError, MobyAsmError

LABEL_SPEC = "com.moby-asm.spec"
WAIT_SECONDS = 120
POLL_SECONDS = 0.5
FAILED_STATES = ("failed", "rejected", "orphaned")
UPDATING_STATES = ("updating", "rollback_started")
FAILED_UPDATE_STATES = ("paused", "rollback_paused", "rollback_completed")
STABLE_SECONDS = 3


class NotSwarm(MobyAsmError):
    """The engine is not a swarm manager."""


class DeployFailed(MobyAsmError):
    """A service did not reach the running state; the message names it and its task error."""


@dataclass
class Change:
    """One object that a deploy creates, updates, leaves or removes."""

    kind: str
    name: str
    action: str


@dataclass
class ServiceState:
    """A service's running replicas, whether an update runs, task errors, and why pending tasks wait."""

    name: str
    replicas: int
    running: int = 0
    errors: list[str] = field(default_factory=list)
    updating: bool = False
    waiting: list[str] = field(default_factory=list)


def service_name(assembly: str, service: str) -> str:
    return f"{assembly}_{service}"


def check_swarm(client) -> None:
    """Raise NotSwarm unless the engine manages a swarm."""
    swarm = client.info().get("Swarm", {})
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise NotSwarm("the Docker Engine is not a swarm manager (state "
                       f"{swarm.get('LocalNodeState', 'unknown')!r}); run 'docker swarm init' there or point "
                       "--engine at a manager")


def read_files(services: dict[str, DeclaredService]) -> dict[tuple[str, str], bytes]:
    """Read every config and secret file first, so a missing one fails before anything changes."""
    contents = {}
    for service in services.values():
        for kind in ("configs", "secrets"):
            for name, reference in getattr(service.spec, kind).items():
                path = service.file(reference.file)
                try:
                    contents[kind, name] = path.read_bytes()
                except OSError as error:
                    raise InputError(f"{service.declared_in}: {kind[:-1]} {name!r} of service {service.name!r}: "
                                     f"cannot read {path}: {error.strerror}") from error
    return contents


def plan(client, assembly: str, services: dict[str, DeclaredService], files: dict[tuple[str, str], bytes],
         ) -> list[Change]:
    """Return what a deploy would change, comparing with what runs."""
    running = {item.name: item for item in client.services.list(filters={"label": f"{LABEL_ASSEMBLY}={assembly}"})}
    changes = []
    for (kind, name), data in files.items():
        full = object_name(assembly, name, data)
        collection = client.configs if kind == "configs" else client.secrets
        exists = any(item.name == full for item in collection.list(filters={"name": full}))
        changes.append(Change(kind[:-1], full, "unchanged" if exists else "create"))
    for name, service in services.items():
        full = service_name(assembly, name)
        current = running.pop(full, None)
        expected = spec_hash(service, files)
        if current is None:
            changes.append(Change("service", full, "create"))
        else:
            same = current.attrs["Spec"].get("Labels", {}).get(LABEL_SPEC) == expected
            changes.append(Change("service", full, "unchanged" if same else "update"))
    changes += [Change("service", name, "remove") for name in running]
    return changes


def object_name(assembly: str, name: str, data: bytes) -> str:
    return f"{assembly}_{name}_{hashlib.sha256(data).hexdigest()[:12]}"


def spec_hash(service: DeclaredService, files: dict[tuple[str, str], bytes]) -> str:
    material = {"spec": service.spec.model_dump(mode="json"),
                "files": {f"{kind}/{name}": hashlib.sha256(data).hexdigest() for (kind, name), data in files.items()
                          if name in getattr(service.spec, kind)}}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def deploy(client, assembly: str, services: dict[str, DeclaredService], files: dict[tuple[str, str], bytes],
           ) -> list[Change]:
    """Create or update configs, secrets and services; remove the assembly's services no longer declared."""
    from docker.errors import APIError

    changes = plan(client, assembly, services, files)
    references = _ensure_files(client, assembly, files)
    for change in changes:
        if change.kind != "service" or change.action == "unchanged":
            continue
        try:
            _apply(client, assembly, change, services, files, references)
        except APIError as error:
            explanation = getattr(error, "explanation", None) or str(error)
            raise DeployFailed(f"service {change.name}: the engine rejected the {change.action}: "
                               f"{explanation}") from error
    return changes


def _apply(client, assembly: str, change: Change, services, files, references) -> None:
    if change.action == "remove":
        client.services.get(change.name).remove()
        return
    name = change.name.removeprefix(f"{assembly}_")
    arguments = _service_arguments(assembly, services[name], files, references)
    if change.action == "create":
        client.services.create(**arguments)
    else:
        client.services.get(change.name).update(**arguments)


def _ensure_files(client, assembly: str, files: dict[tuple[str, str], bytes]) -> dict[tuple[str, str], tuple[str, str]]:
    references = {}
    for (kind, name), data in files.items():
        collection = client.configs if kind == "configs" else client.secrets
        full = object_name(assembly, name, data)
        existing = collection.list(filters={"name": full})
        found = next((item for item in existing if item.name == full), None)
        if found is None:
            found = collection.create(name=full, data=data, labels={LABEL_ASSEMBLY: assembly})
        references[kind, name] = (found.id, full)
    return references


def _service_arguments(assembly: str, service: DeclaredService, files, references) -> dict[str, Any]:
    from docker.types import (
        ConfigReference,
        EndpointSpec,
        Healthcheck,
        RestartPolicy,
        SecretReference,
        ServiceMode,
        UpdateConfig,
    )

    spec = service.spec
    configs = [ConfigReference(references["configs", name][0], references["configs", name][1],
                               filename=reference.target or f"/{name}") for name, reference in spec.configs.items()]
    secrets = [SecretReference(references["secrets", name][0], references["secrets", name][1],
                               filename=reference.target or name) for name, reference in spec.secrets.items()]
    ports = [{"TargetPort": port.target, "PublishedPort": port.published or port.target, "Protocol": port.protocol,
              "PublishMode": port.mode} for port in spec.ports]
    labels = {LABEL_ASSEMBLY: assembly, LABEL_SPEC: spec_hash(service, files)}
    arguments: dict[str, Any] = {
        "image": spec.image, "name": service_name(assembly, service.name), "labels": labels,
        "container_labels": {LABEL_ASSEMBLY: assembly},
        "env": [f"{key}={value}" for key, value in sorted(spec.environment.items())],
        "mode": ServiceMode("replicated", replicas=spec.replicas), "networks": list(spec.networks),
        "configs": configs, "secrets": secrets, "constraints": list(spec.placement.constraints),
        "endpoint_spec": EndpointSpec(ports=ports) if ports else None,
        "update_config": UpdateConfig(parallelism=spec.update.parallelism, delay=_nanoseconds(spec.update.delay),
                                      order=spec.update.order, failure_action=spec.update.failure_action),
        "restart_policy": RestartPolicy(condition="on-failure", max_attempts=3),
    }
    if spec.command is not None:
        arguments["command"] = spec.command
    if spec.healthcheck is not None:
        check = spec.healthcheck
        arguments["healthcheck"] = Healthcheck(test=check.test, interval=_nanoseconds(check.interval),
                                               timeout=_nanoseconds(check.timeout), retries=check.retries,
                                               start_period=_nanoseconds(check.start_period))
    return arguments


def _nanoseconds(duration: str) -> int:
    import re

    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    return sum(int(amount) * units[unit] for amount, unit in re.findall(r"(\d+)(ns|us|ms|s|m|h)", duration))


def wait(client, assembly: str, services: dict[str, DeclaredService], timeout: float = WAIT_SECONDS,
         ) -> list[ServiceState]:
    """Wait until every service runs its replicas with no update in progress, and stays so for a moment.

    A task that failed after the deploy began ends the wait at once, even when the engine
    has started a replacement, so a service that crashes soon after starting is reported.
    """
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    deadline = time.monotonic() + timeout
    stable_since = None
    while True:
        states = [_state(client, assembly, service, since) for service in services.values()]
        if any(state.errors for state in states) or time.monotonic() > deadline:
            return states
        if all(state.running >= state.replicas and not state.updating for state in states):
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= STABLE_SECONDS:
                return states
        else:
            stable_since = None
        time.sleep(POLL_SECONDS)


def _state(client, assembly: str, service: DeclaredService, since: datetime) -> ServiceState:
    """Count running tasks, note an update in progress, and collect errors of tasks that failed since `since`."""
    state = ServiceState(service.name, service.spec.replicas)
    current = client.services.get(service_name(assembly, service.name))
    update = (current.attrs.get("UpdateStatus") or {}).get("State")
    state.updating = update in UPDATING_STATES
    if update in FAILED_UPDATE_STATES:
        state.errors.append(f"update {update}: {(current.attrs.get('UpdateStatus') or {}).get('Message', '')}")
    newest: dict[Any, dict] = {}
    for task in current.tasks():
        status = task.get("Status", {})
        if status.get("State") in FAILED_STATES and _created(task) >= since:
            state.errors.append(status.get("Err") or status.get("Message") or status.get("State"))
        slot = task.get("Slot", task.get("ID"))
        if slot not in newest or task.get("CreatedAt", "") > newest[slot].get("CreatedAt", ""):
            newest[slot] = task
    for task in newest.values():
        status = task.get("Status", {})
        if status.get("State") == "running":
            state.running += 1
        elif status.get("Err"):
            state.waiting.append(status["Err"])
    return state


def _created(task: dict) -> datetime:
    text = task.get("CreatedAt", "")[:19]
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.now(timezone.utc)


def undeploy(client, assembly: str) -> list[Change]:
    """Remove every service, config and secret labelled with the assembly's name."""
    selector = {"label": f"{LABEL_ASSEMBLY}={assembly}"}
    changes = []
    for item in client.services.list(filters=selector):
        item.remove()
        changes.append(Change("service", item.name, "remove"))
    for kind, collection in (("config", client.configs), ("secret", client.secrets)):
        for item in collection.list(filters=selector):
            _remove_when_unused(item)
            changes.append(Change(kind, item.name, "remove"))
    return changes


def _remove_when_unused(item, timeout: float = WAIT_SECONDS) -> None:
    """Remove a config or secret; the engine refuses while the tasks of a removed service still use it."""
    from docker.errors import APIError

    deadline = time.monotonic() + timeout
    while True:
        try:
            item.remove()
            return
        except APIError as error:
            if "in use" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(POLL_SECONDS)
