"""The `debian` source of a component: Debian packages from a suite, optionally remapped.

A component with this source is built into a one-layer image from the packages' files;
`docs/debian.md` documents every field.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from moby_asm.documents import StrictModel

PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
RELATION_OPERATORS = ("<<", "<=", "=", ">=", ">>")
ARCHITECTURES = {"linux/amd64": "amd64", "linux/arm64": "arm64", "linux/arm/v7": "armhf", "linux/arm/v6": "armel",
                 "linux/386": "i386", "linux/ppc64le": "ppc64el", "linux/s390x": "s390x", "linux/riscv64": "riscv64"}


def parse_relation(text: str) -> list[list[dict[str, Any]]]:
    """Parse a Debian relation field (`a (>= 1) | b, c`) into alternatives; raise ValueError when malformed."""
    import logging

    from debian.deb822 import PkgRelation

    # python-debian logs a warning and returns the raw text for what it cannot parse.
    logging.getLogger("debian.deb822").setLevel(logging.ERROR)
    relations = PkgRelation.parse_relations(text)
    for alternatives in relations:
        for item in alternatives:
            version = item.get("version")
            if not PACKAGE_NAME.fullmatch(item.get("name") or "") or (
                    version is not None and version[0] not in RELATION_OPERATORS):
                raise ValueError(f"cannot read {text.strip()!r} as a Debian package relation; write NAME or "
                                 "NAME (OP VERSION) with OP one of <<, <=, =, >=, >>, as in 'runc (>= 1.1)'")
    return relations


def _check_relative(path: str, label: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or "." in parts or "" in parts:
        raise ValueError(f"{label} {path!r} must be a relative path, "
                         "without '.' or '..' parts, a leading '/' or empty parts, as in 'usr/bin/runc'")
    return path


class DebianSource(StrictModel):
    """Debian packages that make a component's content, resolved from the configured mirrors."""

    suite: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    packages: list[str] = Field(min_length=1)
    components: list[str] = Field(default_factory=lambda: ["main"], min_length=1)
    architecture: str | None = None
    essential: bool = False
    exclude: list[str] = Field(default_factory=list)
    paths: dict[str, str | list[str]] = Field(default_factory=dict)

    @field_validator("packages")
    @classmethod
    def _packages(cls, values: list[str]) -> list[str]:
        for value in values:
            relations = parse_relation(value)
            if len(relations) != 1 or len(relations[0]) != 1:
                raise ValueError(f"{value!r} names several packages; give one package per list item")
            item = relations[0][0]
            if item.get("archqual") or item.get("arch") or item.get("restrictions"):
                raise ValueError(f"{value!r} has an architecture qualifier or restriction, which a package list "
                                 "does not take; set the source's 'architecture' instead")
        return values

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, values: list[str]) -> list[str]:
        for value in values:
            if not PACKAGE_NAME.fullmatch(value):
                raise ValueError(f"{value!r} is not a Debian package name; use lowercase letters, digits, '+', "
                                 "'.' and '-'")
        return values

    @field_validator("architecture")
    @classmethod
    def _architecture(cls, value: str | None) -> str | None:
        if value is not None and value not in {*ARCHITECTURES.values(), "all"}:
            raise ValueError(f"unknown Debian architecture {value!r}; use one of "
                             f"{', '.join(sorted(ARCHITECTURES.values()))}")
        return value

    @field_validator("paths")
    @classmethod
    def _paths(cls, values: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for target, patterns in values.items():
            _check_relative(target, "target path")
            if not patterns:
                raise ValueError(f"target path {target!r} has no source pattern; give one or a list of them")
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                _check_relative(pattern, "source pattern")
            inside = [other for other in values if other.startswith(target + "/")]
            if inside:
                raise ValueError(f"target path {target!r} contains the target {inside[0]!r}; map the folder or "
                                 "the files in it, not both")
        return values

    @model_validator(mode="after")
    def _requested_not_excluded(self) -> DebianSource:
        excluded = sorted({item["name"] for item in self.requested()} & set(self.exclude))
        if excluded:
            raise ValueError(f"{', '.join(excluded)} is both requested and excluded; remove it from one of the lists")
        return self

    def requested(self) -> list[dict[str, Any]]:
        """Return each requested package as python-debian's relation item: name and optional version."""
        return [parse_relation(value)[0][0] for value in self.packages]

    def architecture_for(self, platform: str) -> str:
        """Return the Debian architecture of `platform`, unless the source names one."""
        return self.architecture or ARCHITECTURES[platform]
