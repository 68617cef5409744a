"""Import LinuxKit configs into a new project folder and prove the round trip."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from moby_asm.catalog.loading import default_sources, load_catalog
from moby_asm.compose.importer import ImportError_, ImportResult, differences, import_config, merge_layers
from moby_asm.documents import load_document

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
HEADER = "# Imported by 'moby-asm import' from {sources}.\n"


@dataclass
class ImportReport:
    result: ImportResult
    differences: list[str]


def import_project(configs: list[Path], folder: Path, name: str, force: bool) -> ImportReport:
    """Write the project for `configs` into `folder`, then check that it composes back to them.

    Nothing is left behind when the check fails: the project is built in a staging
    folder and moved into place only after its composition matched the original.
    """
    from moby_asm.linuxkit.schema import validate_linuxkit

    if (folder / "assembly.yml").exists() and not force:
        raise ImportError_(f"{folder / 'assembly.yml'} already exists; choose another --output or pass --force")
    documents = [load_document(path) for path in configs]
    for document in documents:
        validate_linuxkit(document)
    original = merge_layers(document.data for document in documents)
    catalog = load_catalog(default_sources(None))
    sources = ", ".join(path.name for path in configs)
    folder.parent.mkdir(parents=True, exist_ok=True)
    attempts = []
    for use_catalog in (True, False):
        result = import_config(original, catalog, name, use_catalog)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.import.", dir=folder.parent))
        try:
            _write(result, staging, sources)
            found = _round_trip(staging, original)
            if not found:
                _install(staging, folder, force)
                return ImportReport(result, found)
            attempts.append("; ".join(found))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    raise ImportError_("the imported assembly does not compose back to the same config ("
                       + " / ".join(attempts) + "); please report this with the input files")


def _write(result: ImportResult, folder: Path, sources: str) -> None:
    header = HEADER.format(sources=sources)
    (folder / "assembly.yml").write_text(header + yaml.dump(result.assembly, Dumper=_Dumper, sort_keys=False))
    if result.components:
        (folder / "components").mkdir()
    for name, descriptor in result.components.items():
        text = header + yaml.dump(descriptor, Dumper=_Dumper, sort_keys=False)
        (folder / "components" / f"{name}.yml").write_text(text)


def _round_trip(folder: Path, original: dict) -> list[str]:
    """Compose the staged project and list how it differs from the original config."""
    from moby_asm.compose import compose
    from moby_asm.errors import MobyAsmError
    from moby_asm.project import lock_project, open_project

    try:
        project = open_project(folder)
        composition = compose(project, lock_project(project))
    except MobyAsmError as error:
        return [f"composing it failed: {str(error).splitlines()[0]}"]
    return differences(original, composition.config)


def _install(staging: Path, folder: Path, force: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if force:
        _remove_previous_import(folder)
    for source in sorted(staging.rglob("*")):
        target = folder / source.relative_to(staging)
        if source.is_dir():
            target.mkdir(exist_ok=True)
        else:
            os.replace(source, target)


def _remove_previous_import(folder: Path) -> None:
    """Remove descriptors an earlier import wrote, so none of them shadows the new selection."""
    components = folder / "components"
    if not components.is_dir():
        return
    for path in components.glob("*.yml"):
        if path.read_text(errors="replace").startswith("# Imported by 'moby-asm import'"):
            path.unlink()
