"""Import LinuxKit configs into a new project folder and prove the round trip."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from moby_asm.catalog.loading import default_sources, load_catalog
from moby_asm.catalog.model import NAME_PATTERN
from moby_asm.compose.importer import ImportError_, ImportResult, differences, import_config, merge_layers
from moby_asm.documents import load_document
from moby_asm.fileio import WriteFailed, remove_stale_staging

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
    from moby_asm.linuxkit.schema import check_config, validate_linuxkit

    folder = folder.absolute()
    if folder == Path(folder.anchor) or folder == Path.home():
        raise ImportError_(f"refusing to import into {folder}; choose a project folder with --output")
    if folder.exists() and not folder.is_dir():
        raise ImportError_(f"{folder} is a file; choose a project folder with --output")
    if not NAME_PATTERN.fullmatch(name):
        _invalid_name(name)
    documents = [load_document(path) for path in configs]
    for document in documents:
        validate_linuxkit(document)
    original = merge_layers(document.data for document in documents)
    problems = check_config(original)
    if problems:
        raise ImportError_("the combined LinuxKit config is invalid: " + "; ".join(problems))
    catalog = load_catalog(default_sources(None))
    sources = ", ".join(path.name for path in configs)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(folder.parent, folder.name)
    except OSError as error:
        raise WriteFailed(folder, error.strerror or str(error)) from error
    attempts = []
    for use_catalog in (True, False):
        result = import_config(original, catalog, name, use_catalog)
        _check_conflicts(result, folder, force)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.import.", dir=folder.parent))
        try:
            _write(result, staging, sources)
            found = _round_trip(staging, original)
            if not found:
                _install(staging, folder, force)
                return ImportReport(result, found)
            attempts.append("; ".join(found))
        except OSError as error:
            raise WriteFailed(folder, error.strerror or str(error)) from error
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


def _check_conflicts(result: ImportResult, folder: Path, force: bool) -> None:
    """Refuse to overwrite files unless forced, and never a descriptor the user wrote."""
    targets = [folder / "assembly.yml"] + [folder / "components" / f"{name}.yml" for name in result.components]
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        shown = ", ".join(str(path) for path in existing)
        raise ImportError_(f"files already exist: {shown}; choose another --output or pass --force to replace them")
    for name in result.components:
        for path in (folder / "components" / f"{name}.yml", folder / "components" / name / "component.yml"):
            if path.exists() and not _written_by_import(path):
                raise ImportError_(f"{path} was not written by 'moby-asm import'; move it away or choose "
                                   "another --output, since import never replaces your own descriptors")


def _install(staging: Path, folder: Path, force: bool) -> None:
    if not folder.exists():
        os.replace(staging, folder)
        return
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
        if _written_by_import(path):
            path.unlink()


def _written_by_import(path: Path) -> bool:
    try:
        return path.is_file() and path.read_text(errors="replace").startswith("# Imported by 'moby-asm import'")
    except OSError:
        return False


def _invalid_name(name: str) -> None:
    raise ImportError_(f"invalid assembly name {name!r}: use lowercase letters, digits and '-', "
                       "for example --name my-platform")
