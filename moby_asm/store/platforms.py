"""Platforms (OS, architecture, variant) as written in image indexes and image configs.

Architecture names follow Go's GOARCH, as OCI images do. Common kernel names are
accepted as aliases (x86_64 for amd64, aarch64 for arm64). A missing variant means
the usual one, v8 for arm64 and v7 for arm, so that `linux/arm64` matches an index entry
with `variant: v8` and one without a variant alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from moby_asm.store.errors import InvalidPlatform
from moby_asm.store.model import Descriptor

ARCHITECTURE_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "armhf": "arm"}
DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}

_PART = re.compile(r"[a-z0-9_.-]+")


def parse_platform(platform: str) -> dict[str, str]:
    """Parse `OS/ARCHITECTURE[/VARIANT]` into OCI platform fields with normalised names."""
    parts = platform.lower().split("/") if isinstance(platform, str) else []
    if len(parts) not in (2, 3) or not all(_PART.fullmatch(part) for part in parts):
        raise InvalidPlatform(str(platform))
    fields = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        fields["variant"] = parts[2]
    return normalize(fields)


def normalize(fields: dict) -> dict[str, str]:
    """Return os, architecture and variant with aliases resolved and the default variant filled in."""
    architecture = str(fields.get("architecture", "")).lower()
    architecture = ARCHITECTURE_ALIASES.get(architecture, architecture)
    normalized = {"os": str(fields.get("os", "")).lower(), "architecture": architecture}
    variant = str(fields.get("variant") or DEFAULT_VARIANTS.get(architecture, "")).lower()
    if variant:
        normalized["variant"] = variant
    return normalized


def format_platform(fields: dict) -> str:
    """Return the `os/architecture[/variant]` form of platform fields."""
    parts = [fields.get("os") or "?", fields.get("architecture") or "?"]
    if fields.get("variant"):
        parts.append(fields["variant"])
    return "/".join(parts)


def matches(requested: dict[str, str], candidate: dict | None) -> bool:
    """Return whether `candidate` (platform fields from an index or config) is the requested platform."""
    if not candidate:
        return False
    return normalize(candidate) == requested


def config_matches(requested: dict[str, str], config: dict) -> bool:
    """Return whether an image config is for the requested platform.

    A config that names no architecture is accepted, because nothing contradicts the request.
    """
    if not config.get("architecture"):
        return True
    fields = {key: config.get(key) for key in ("os", "architecture", "variant")}
    return matches(requested, fields)


def select_manifest(manifests: Iterable[Descriptor], requested: dict[str, str]) -> Descriptor | None:
    """Return the first manifest of an index whose platform matches, or None."""
    for descriptor in manifests:
        if matches(requested, descriptor.platform):
            return descriptor
    return None


def available_platforms(manifests: Iterable[Descriptor]) -> list[str]:
    """Return the platforms an index offers, for error messages; entries without one are left out."""
    return sorted({format_platform(d.platform) for d in manifests if d.platform})
