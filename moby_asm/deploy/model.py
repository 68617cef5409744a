"""The `services` section of components and assemblies: applications to run on a swarm.

Names and meanings follow the Compose file format (version 3), so `moby-asm compose`
renders them one to one into a file that `docker stack deploy` accepts.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from moby_asm.documents import StrictModel

SERVICE_NAME = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?")
DURATION = re.compile(r"(\d+(ns|us|ms|s|m|h))+")


def _duration(value: str) -> str:
    if not DURATION.fullmatch(value):
        raise ValueError(f"invalid duration {value!r}: write it like 10s, 1m30s or 500ms")
    return value


class Port(StrictModel):
    """A port the service publishes: `target` in the container, `published` on the node."""

    target: int = Field(ge=1, le=65535)
    published: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    mode: Literal["ingress", "host"] = "host"


class FileReference(StrictModel):
    """A config or secret made from a file (relative to the declaring file) and its path in the container."""

    file: str
    target: str | None = None


class Placement(StrictModel):
    """Swarm placement constraints, such as `node.role == manager`."""

    constraints: list[str] = Field(default_factory=list)


class UpdatePolicy(StrictModel):
    """The policy by which a service's tasks are replaced on update."""

    parallelism: int = Field(default=1, ge=0)
    delay: str = "0s"
    order: Literal["stop-first", "start-first"] = "stop-first"
    failure_action: Literal["pause", "continue", "rollback"] = "pause"

    _delay = field_validator("delay")(_duration)


class HealthCheck(StrictModel):
    """A command the engine runs in the container to decide whether it is healthy."""

    test: list[str] = Field(min_length=1)
    interval: str = "30s"
    timeout: str = "30s"
    retries: int = Field(default=3, ge=1)
    start_period: str = "0s"

    _durations = field_validator("interval", "timeout", "start_period")(_duration)


class ServiceSpec(StrictModel):
    """One application service of the swarm."""

    image: str
    command: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    replicas: int = Field(default=1, ge=0)
    ports: list[Port] = Field(default_factory=list)
    networks: list[str] = Field(default_factory=list)
    configs: dict[str, FileReference] = Field(default_factory=dict)
    secrets: dict[str, FileReference] = Field(default_factory=dict)
    placement: Placement = Field(default_factory=Placement)
    update: UpdatePolicy = Field(default_factory=UpdatePolicy)
    healthcheck: HealthCheck | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        from moby_asm.catalog.model import check_image

        return check_image(value)


def check_service_name(value: str) -> str:
    if not SERVICE_NAME.fullmatch(value):
        raise ValueError(f"invalid service name {value!r}: use lowercase letters, digits, '-' and '_'")
    return value
