"""Look up components and versions by the NAME[@VERSION] references users type."""

from __future__ import annotations

from moby_asm.catalog.loading import Catalog, CatalogEntry
from moby_asm.catalog.model import ComponentVersion
from moby_asm.documents.diagnostics import suggest
from moby_asm.errors import InputError
from moby_asm.versions import InvalidVersion, Version


class ComponentNotFound(InputError):
    """No component or version matches a reference."""

    def __init__(self, reference: str, message: str):
        self.reference = reference
        super().__init__(message)


def find_versions(catalog: Catalog, reference: str) -> tuple[CatalogEntry, list[ComponentVersion]]:
    """Return the entry for `NAME[@VERSION]` and its matching versions, newest first."""
    name, _, version_text = reference.partition("@")
    entry = catalog.get(name)
    if entry is None:
        hint = suggest(name, catalog.entries) or "; run 'moby-asm components list' to see every component"
        raise ComponentNotFound(reference, f"component {name!r} not found in the catalog{hint}")
    versions = sorted(entry.component.versions, key=lambda v: v.parsed_version, reverse=True)
    if not version_text:
        return entry, versions
    try:
        wanted = Version.parse(version_text)
    except InvalidVersion as error:
        raise ComponentNotFound(reference, str(error)) from None
    matching = [v for v in versions if v.parsed_version == wanted]
    if not matching:
        known = ", ".join(v.version for v in versions)
        raise ComponentNotFound(reference, f"component {name!r} has no version {version_text}; known versions: {known}")
    return entry, matching
