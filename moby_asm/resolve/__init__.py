"""Resolve an assembly against the catalog into one consistent selection."""

from moby_asm.resolve.resolution import Resolution, UnknownRequirement, Unresolvable, resolve

__all__ = ["Resolution", "Unresolvable", "UnknownRequirement", "resolve"]
