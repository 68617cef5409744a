"""LinuxKit's container runtime settings, with LinuxKit's own key names.

These are the fields of an `onboot`, `onshutdown` or `services` entry of a LinuxKit
YAML file other than `name` and `image` (LinuxKit v1.x, `docs/yaml.md`). Values that
LinuxKit passes through to the OCI runtime spec unchanged (`resources`) stay free-form.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PlainValidator
from pydantic_core import PydanticCustomError

from moby_asm.documents import StrictModel


def _check_id(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        # The error type lets the validation layer quote the value as written in the file.
        raise PydanticCustomError("id_type", "expected a number or a name")
    return value


def _check_device_mode(value: str) -> str:
    if not re.fullmatch(r"0?[0-7]{3,4}", value):
        raise ValueError(f"invalid device mode {value!r}: expected an octal string such as \"0666\"")
    return value


def _check_env(value: str) -> str:
    if "=" not in value:
        raise ValueError(f"invalid env entry {value!r}: expected KEY=VALUE")
    return value


def _check_bind(value: str) -> str:
    if ":" not in value:
        raise ValueError(f"invalid bind {value!r}: expected SOURCE:DESTINATION[:OPTIONS]")
    return value


IdOrName = Annotated[int | str, PlainValidator(_check_id)]
"""A user or group: a number, or a name LinuxKit looks up (a container's name for its own ids)."""
EnvEntry = Annotated[str, AfterValidator(_check_env)]
Bind = Annotated[str, AfterValidator(_check_bind)]


class IdMapping(StrictModel):
    container_id: int = Field(alias="containerID")
    host_id: int = Field(alias="hostID")
    size: int


class Mount(StrictModel):
    """An OCI mount; LinuxKit fills in the destination of well-known types such as cgroup."""

    destination: str | None = None
    type: str | None = None
    source: str | None = None
    options: list[str] = Field(default_factory=list)
    # LinuxKit spells these two in lower case on mounts, unlike on containers.
    uid_mappings: list[IdMapping] | None = Field(default=None, alias="uidmappings")
    gid_mappings: list[IdMapping] | None = Field(default=None, alias="gidmappings")


class Device(StrictModel):
    """A device cgroup rule; `path: all` with no numbers applies to every device of the type."""

    path: str
    type: Literal["a", "b", "c", "u", "p"]
    major: int | None = None
    minor: int | None = None
    mode: Annotated[str, AfterValidator(_check_device_mode)] | None = None


class Interface(StrictModel):
    name: str | None = None
    add: str | None = None
    peer: str | None = None
    create_in_root: bool | None = Field(default=None, alias="createInRoot")


class BindNamespaces(StrictModel):
    cgroup: str | None = None
    ipc: str | None = None
    mnt: str | None = None
    net: str | None = None
    pid: str | None = None
    user: str | None = None
    uts: str | None = None


class RuntimeHooks(StrictModel):
    """The `runtime` field: what LinuxKit's init prepares before starting the container."""

    cgroups: list[str] | None = None
    mounts: list[Mount] | None = None
    mkdir: list[str] | None = None
    interfaces: list[Interface] | None = None
    bind_ns: BindNamespaces | None = Field(default=None, alias="bindNS")
    namespace: str | None = None


class ContainerConfig(StrictModel):
    """The runtime settings of one container; unset fields keep the image's or LinuxKit's default."""

    capabilities: list[str] | None = None
    capabilities_add: list[str] | None = Field(default=None, alias="capabilities.add")
    ambient: list[str] | None = None
    mounts: list[Mount] | None = None
    binds: list[Bind] | None = None
    binds_add: list[Bind] | None = Field(default=None, alias="binds.add")
    tmpfs: list[str] | None = None
    devices: list[Device] | None = None
    command: list[str] | None = None
    env: list[EnvEntry] | None = None
    cwd: str | None = None
    net: str | None = None
    pid: str | None = None
    ipc: str | None = None
    uts: str | None = None
    userns: str | None = None
    readonly: bool | None = None
    masked_paths: list[str] | None = Field(default=None, alias="maskedPaths")
    readonly_paths: list[str] | None = Field(default=None, alias="readonlyPaths")
    uid: IdOrName | None = None
    gid: IdOrName | None = None
    additional_gids: list[IdOrName] | None = Field(default=None, alias="additionalGids")
    no_new_privileges: bool | None = Field(default=None, alias="noNewPrivileges")
    hostname: str | None = None
    oom_score_adj: int | None = Field(default=None, alias="oomScoreAdj")
    rootfs_propagation: str | None = Field(default=None, alias="rootfsPropagation")
    cgroups_path: str | None = Field(default=None, alias="cgroupsPath")
    resources: dict[str, Any] | None = None
    sysctl: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    rlimits: list[str] | None = None
    uid_mappings: list[IdMapping] | None = Field(default=None, alias="uidMappings")
    gid_mappings: list[IdMapping] | None = Field(default=None, alias="gidMappings")
    runtime: RuntimeHooks | None = None

    def to_linuxkit(self) -> dict[str, Any]:
        """Return the settings as a LinuxKit YAML entry contains them, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)
