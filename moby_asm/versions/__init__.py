"""Semantic versions and npm-style version ranges."""

from moby_asm.versions.semver import InvalidVersion, Range, Version

__all__ = ["InvalidVersion", "Range", "Version"]
