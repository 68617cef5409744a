"""LinuxKit's container runtime settings, with LinuxKit's own key names.

These are the fields of an `onboot`, `onshutdown` or `services` entry of a LinuxKit
YAML file other than `name` and `image` (LinuxKit v1.x, `docs/yaml.md`). Values that
LinuxKit passes through to the OCI runtime spec unchanged (`resources`) stay free-form.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from moby_asm.documents import StrictModel


class Mount(StrictModel):
    destination: str
    type: str | None = None
    source: str | None = None
    options: list[str] = Field(default_factory=list)


class Device(StrictModel):
    path: str
    type: Literal["a", "b", "c", "u", "p"]
    major: int
    minor: int
    mode: str | None = None


class IdMapping(StrictModel):
    container_id: int = Field(alias="containerID")
    host_id: int = Field(alias="hostID")
    size: int


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
    binds: list[str] | None = None
    binds_add: list[str] | None = Field(default=None, alias="binds.add")
    tmpfs: list[str] | None = None
    devices: list[Device] | None = None
    command: list[str] | None = None
    env: list[str] | None = None
    cwd: str | None = None
    net: str | None = None
    pid: str | None = None
    ipc: str | None = None
    uts: str | None = None
    userns: str | None = None
    readonly: bool | None = None
    masked_paths: list[str] | None = Field(default=None, alias="maskedPaths")
    readonly_paths: list[str] | None = Field(default=None, alias="readonlyPaths")
    uid: int | str | None = None
    gid: int | str | None = None
    additional_gids: list[int | str] | None = Field(default=None, alias="additionalGids")
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

    @model_validator(mode="after")
    def _check_env(self) -> ContainerConfig:
        for entry in self.env or ():
            if "=" not in entry:
                raise ValueError(f"invalid env entry {entry!r}: expected KEY=VALUE")
        for bind in (self.binds or []) + (self.binds_add or []):
            if ":" not in bind:
                raise ValueError(f"invalid bind {bind!r}: expected SOURCE:DESTINATION[:OPTIONS]")
        return self

    def to_linuxkit(self) -> dict[str, Any]:
        """Return the settings as a LinuxKit YAML entry holds them, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)
