"""The component catalog: descriptors found in ordered sources, earlier ones shadowing later ones."""

from moby_asm.catalog.loading import Catalog, CatalogEntry, CatalogSource, default_sources, load_catalog
from moby_asm.catalog.model import Component, ComponentVersion, Requirement

__all__ = [
    "Catalog",
    "CatalogEntry",
    "CatalogSource",
    "Component",
    "ComponentVersion",
    "Requirement",
    "default_sources",
    "load_catalog",
]
