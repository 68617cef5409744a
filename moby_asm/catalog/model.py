"""The component descriptor: the YAML format of one block in the catalog.

`docs/components.md` documents every field; the LinuxKit runtime settings keep the
names and meaning they have in a LinuxKit YAML file so that configs map one to one.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from moby_asm.catalog.placeholders import iter_malformed, iter_placeholders
from moby_asm.catalog.runtime import ContainerConfig, IdOrName
from moby_asm.debian.model import DebianSource
from moby_asm.deploy.model import ServiceSpec, check_service_name
from moby_asm.documents import StrictModel
from moby_asm.versions import InvalidVersion, Range, Version

NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
IMAGE_PATTERN = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
PLATFORM_PATTERN = re.compile(r"^linux/(amd64|arm64|arm/v6|arm/v7|riscv64|s390x|ppc64le|386)$")

Stage = Literal["kernel", "init", "onboot", "service", "onshutdown", "files"]
CONTAINER_STAGES = ("onboot", "service", "onshutdown")


def check_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"invalid name {value!r}: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_platform(value: str) -> str:
    if not PLATFORM_PATTERN.fullmatch(value):
        raise ValueError(f"invalid platform {value!r}: expected OS/ARCH such as linux/amd64 or linux/arm64")
    return value


def check_parameter_name(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
        raise ValueError(f"invalid parameter name {value!r}: use lowercase letters, digits and '_'")
    return value


def check_version(value: str) -> str:
    try:
        Version.parse(value)
    except InvalidVersion as error:
        raise ValueError(str(error)) from None
    return value


Platform = Annotated[str, AfterValidator(check_platform)]
SemanticVersion = Annotated[str, AfterValidator(check_version)]
ComponentName = Annotated[str, AfterValidator(check_name)]
ParameterName = Annotated[str, AfterValidator(check_parameter_name)]
ServiceName = Annotated[str, AfterValidator(check_service_name)]


def check_range(value: str) -> str:
    try:
        Range.parse(value)
    except InvalidVersion as error:
        raise ValueError(str(error)) from None
    return value


def check_image(value: str) -> str:
    if not IMAGE_PATTERN.fullmatch(value):
        raise ValueError(
            f"invalid image reference {value!r}: expected REPOSITORY[:TAG][@sha256:DIGEST], "
            "for example linuxkit/getty:v1.0.0"
        )
    return value


class Requirement(StrictModel):
    """A dependency on a component or capability: `NAME` or `NAME RANGE`, or a mapping."""

    name: str
    range: str = "*"
    optional: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            name, _, range_text = value.strip().partition(" ")
            return {"name": name, "range": range_text.strip() or "*"}
        if not isinstance(value, dict):
            raise ValueError(f"expected 'NAME [RANGE]' or a mapping with name, range and optional; got {value!r}")
        return value

    _name = field_validator("name")(check_name)
    _range = field_validator("range")(check_range)

    def __str__(self) -> str:
        return self.name if self.range == "*" else f"{self.name} {self.range}"


class Capability(StrictModel):
    """A capability that a component version provides, such as `oci-runtime 1.1.0`."""

    name: str
    version: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            name, _, version = value.strip().partition(" ")
            return {"name": name, "version": version.strip()}
        return value

    _name = field_validator("name")(check_name)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        try:
            Version.parse(value)
        except InvalidVersion as error:
            raise ValueError(f"{error}; write the capability as 'NAME VERSION'") from None
        return value


class BuildContext(StrictModel):
    """A Docker build context, relative to the descriptor's folder."""

    context: str
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None


class Source(StrictModel):
    """The origin of the component's content: exactly one of image, build, debian or path."""

    image: str | None = None
    build: BuildContext | None = None
    debian: DebianSource | None = None
    path: str | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else check_image(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        chosen = [key for key in ("image", "build", "debian", "path") if getattr(self, key) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "a source sets exactly one of 'image', 'build', 'debian' or 'path'"
                + (f"; found {', '.join(chosen)}" if chosen else "")
            )
        return self


ParameterType = Literal["string", "integer", "number", "boolean", "list"]
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
}


def parameter_value_error(type_name: str, value: Any) -> str | None:
    """Return why `value` is not of the parameter type `type_name`, or None when it is."""
    expected = _PYTHON_TYPES[type_name]
    if isinstance(value, bool) and type_name != "boolean":
        return f"expected a value of type {type_name}, got {value!r}"
    if not isinstance(value, expected):
        return f"expected a value of type {type_name}, got {value!r}"
    if type_name == "list" and not all(isinstance(item, str) for item in value):
        return "expected a list of strings"
    return None


class Parameter(StrictModel):
    """A typed setting that an assembly may give a value; `${NAME}` in strings refers to it."""

    type: ParameterType = "string"
    description: str = ""
    choices: list[Any] | None = None
    default: Any = None
    required: bool = False

    @field_validator("choices")
    @classmethod
    def _choices(cls, values: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        for value in values or ():
            problem = parameter_value_error(info.data.get("type", "string"), value)
            if problem:
                raise ValueError(f"invalid choice: {problem}")
        return values

    @field_validator("default")
    @classmethod
    def _default(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value
        problem = parameter_value_error(info.data.get("type", "string"), value)
        if problem:
            raise ValueError(f"invalid default: {problem}")
        choices = info.data.get("choices")
        if choices and value not in choices:
            raise ValueError(f"default {value!r} is not one of the choices {choices!r}; "
                             "pick one of them or add it to 'choices'")
        return value

    @field_validator("required")
    @classmethod
    def _required(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("default") is not None:
            raise ValueError("a required parameter cannot have a default; remove 'default' or 'required'")
        return value


class FileEntry(StrictModel):
    """A file placed in the root filesystem, as in LinuxKit's `files` section."""

    path: str
    contents: str | None = None
    source: str | None = None
    metadata: Literal["yaml"] | None = None
    directory: bool | None = None
    symlink: str | None = None
    mode: str | None = None
    uid: IdOrName | None = None
    gid: IdOrName | None = None
    optional: bool | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/") or not value.strip("/"):
            raise ValueError(f"invalid path {value!r}: use a relative path inside the root filesystem, "
                             "without '..', for example etc/motd")
        return value

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"0?[0-7]{3,4}", value):
            raise ValueError(f"invalid mode {value!r}: expected an octal string such as \"0644\"")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> FileEntry:
        kinds = [k for k in ("contents", "source", "metadata", "symlink") if getattr(self, k) is not None]
        if self.directory:
            kinds.append("directory")
        if len(kinds) != 1:
            raise ValueError(
                f"file {self.path!r} sets exactly one of contents, source, metadata, directory, symlink"
                + (f"; found {', '.join(kinds)}" if kinds else "")
            )
        return self


class Volume(StrictModel):
    name: str
    image: str | None = None
    readonly: bool | None = None
    format: Literal["oci", "filesystem"] | None = None
    platforms: list[Platform] | None = None


class KernelSettings(StrictModel):
    """Settings of a kernel component, with LinuxKit's defaults."""

    cmdline: str = ""
    binary: str = "kernel"
    tar: str = "kernel.tar"
    ucode: str | None = None


class ComponentVersion(StrictModel):
    """One released version of a component."""

    version: SemanticVersion
    stage: Stage
    source: Source | None = None
    requires: list[Requirement] = Field(default_factory=list)
    provides: list[Capability] = Field(default_factory=list)
    conflicts: list[Requirement] = Field(default_factory=list)
    after: list[ComponentName] = Field(default_factory=list)
    before: list[ComponentName] = Field(default_factory=list)
    parameters: dict[ParameterName, Parameter] = Field(default_factory=dict)
    config: ContainerConfig | None = None
    kernel: KernelSettings | None = None
    files: list[FileEntry] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    platforms: list[Platform] = Field(default_factory=list)
    services: dict[ServiceName, ServiceSpec] = Field(default_factory=dict)

    @field_validator("after", "before")
    @classmethod
    def _ordering(cls, values: list[str], info: ValidationInfo) -> list[str]:
        if values and info.data.get("stage") not in ("onboot", "onshutdown"):
            raise ValueError(f"'{info.field_name}' orders onboot and onshutdown containers only, "
                             f"not stage {info.data.get('stage')!r}")
        return values

    @field_validator("config")
    @classmethod
    def _config(cls, value: ContainerConfig | None, info: ValidationInfo) -> ContainerConfig | None:
        stage = info.data.get("stage")
        if value is not None and stage is not None and stage not in CONTAINER_STAGES:
            raise ValueError(f"'config' applies to onboot, service and onshutdown containers, not to stage {stage!r}")
        return value

    @field_validator("kernel")
    @classmethod
    def _kernel(cls, value: KernelSettings | None, info: ValidationInfo) -> KernelSettings | None:
        stage = info.data.get("stage")
        if value is not None and stage is not None and stage != "kernel":
            raise ValueError(f"'kernel' settings apply to stage 'kernel' only, not to {stage!r}")
        return value

    @model_validator(mode="after")
    def _source_needed(self) -> ComponentVersion:
        if self.stage != "files" and self.source is None:
            raise ValueError(f"stage {self.stage!r} needs a 'source'; only 'files' components may omit it")
        return self

    @cached_property
    def parsed_version(self) -> Version:
        return Version.parse(self.version)


class Component(StrictModel):
    """A named block of a container platform with its released versions."""

    name: str
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    versions: list[ComponentVersion] = Field(min_length=1)

    _name = field_validator("name")(check_name)

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Return checks that span several entries, each with the location of the entry at fault."""
        found = []
        seen: dict[Version, int] = {}
        for index, entry in enumerate(self.versions):
            found.extend(_unknown_placeholders(entry, index))
            parsed = entry.parsed_version
            if parsed in seen:
                found.append((("versions", index, "version"),
                              f"version {entry.version!r} is listed twice (first as entry {seen[parsed] + 1})"))
            seen.setdefault(parsed, index)
        return found


def _unknown_placeholders(entry: ComponentVersion, index: int) -> list[tuple[tuple, str]]:
    """Return a problem for each `${NAME}` that names no parameter of the version."""
    found = []
    data = entry.model_dump(by_alias=True, exclude_none=True, include={"config", "files", "kernel"})
    for loc, text in iter_malformed(data):
        found.append((("versions", index) + loc, f"malformed placeholder {text!r}: write ${{name}} with a "
                                                 "lowercase parameter name, or $${ for a literal '${'"))
    for loc, name in iter_placeholders(data):
        if name not in entry.parameters:
            declared = ", ".join(entry.parameters) or "none"
            found.append((("versions", index) + loc, f"'${{{name}}}' names no parameter of version "
                                                     f"{entry.version}; declare it under 'parameters' "
                                                     f"(declared: {declared})"))
    return found
