"""Locate the folders shipped with the package: components, assemblies and templates."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_folder(name: str) -> Path:
    """Return the shipped folder `name`, from an installed wheel or a source checkout."""
    installed = _PACKAGE / "shipped" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name
