"""The `assembly.yml` format; `docs/assemblies.md` documents every field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from moby_asm.catalog.model import FileEntry, Platform, Requirement, SemanticVersion, ServiceName, Volume, check_name
from moby_asm.catalog.runtime import ContainerConfig
from moby_asm.deploy.model import ServiceSpec
from moby_asm.documents import Document, StrictModel, load_document, validate_document
from moby_asm.trust.policy import TrustPolicy

ASSEMBLY_FILE = "assembly.yml"
DEFAULT_PLATFORM = "linux/amd64"

OutputFormat = Literal[
    "kernel+initrd", "tar", "docker", "tar-kernel-initrd", "iso-bios", "iso-efi", "iso-efi-initrd",
    "raw-bios", "raw-efi", "kernel+squashfs", "kernel+erofs", "kernel+iso", "qcow2-bios", "qcow2-efi",
    "vhd", "dynamic-vhd", "vmdk", "gcp", "aws", "rpi3", "oci",
]
BuilderName = Literal["native", "docker", "linuxkit"]
REGISTRY_PATTERN = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


class BuilderPreferences(StrictModel):
    """The builder choice for outputs: `default` for all, `formats` per output format.

    `registry` is where images built from Docker build contexts are pushed, as
    HOST[:PORT][/PATH]; without it they stay in the Docker Engine and the content store.
    """

    default: BuilderName = "native"
    formats: dict[OutputFormat, BuilderName] = Field(default_factory=dict)
    registry: str | None = None

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        problem = registry_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value


def registry_problem(value: str) -> str | None:
    """Return why `value` is not a registry location HOST[:PORT][/PATH], or None when it is one."""
    match = REGISTRY_PATTERN.fullmatch(value)
    port = match.group(2) if match else None
    if match is None or (port is not None and not 0 < int(port[1:]) < 65536):
        return f"invalid registry {value!r}: expected HOST[:PORT][/PATH] such as 127.0.0.1:5000/platform"
    return None


class KernelOverrides(StrictModel):
    """Kernel settings that replace those of the selected kernel component."""

    cmdline: str | None = None
    binary: str | None = None
    tar: str | None = None
    ucode: str | None = None


OrderedStage = Literal["init", "onboot", "onshutdown"]


class Assembly(StrictModel):
    """A platform to compose: the components it requires and how to build it."""

    name: str
    version: SemanticVersion = "0.1.0"
    description: str = ""
    platforms: list[Platform] = Field(default_factory=lambda: [DEFAULT_PLATFORM], min_length=1)
    requires: list[Requirement] = Field(min_length=1)
    prefer: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    config: dict[str, ContainerConfig] = Field(default_factory=dict)
    kernel: KernelOverrides | None = None
    order: dict[OrderedStage, list[str]] = Field(default_factory=dict)
    files: list[FileEntry] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    outputs: list[OutputFormat] = Field(default_factory=lambda: ["kernel+initrd"])
    builder: BuilderPreferences = Field(default_factory=BuilderPreferences)
    trust: TrustPolicy | None = None
    services: dict[ServiceName, ServiceSpec] = Field(default_factory=dict)

    _name = field_validator("name")(check_name)

    @field_validator("parameters", "config")
    @classmethod
    def _component_keys(cls, values: dict[str, Any]) -> dict[str, Any]:
        for name in values:
            check_name(name)
        return values

    @field_validator("prefer")
    @classmethod
    def _prefer(cls, values: dict[str, str]) -> dict[str, str]:
        for capability, component in values.items():
            check_name(capability)
            check_name(component)
        return values


def load_assembly(path: Path) -> tuple[Assembly, Document]:
    """Load and validate an assembly file; a folder means its `assembly.yml`."""
    if path.is_dir():
        path = path / ASSEMBLY_FILE
    document = load_document(path)
    return validate_document(document, Assembly), document
