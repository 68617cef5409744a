"""Validate any project file or folder and collect every problem at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from moby_asm.assembly.model import Assembly
from moby_asm.catalog.loading import CatalogSource, entry_from_document
from moby_asm.documents import Diagnostic, Document, InvalidDocuments, load_document, validate_document
from moby_asm.linuxkit import is_linuxkit_config, validate_linuxkit

YAML_SUFFIXES = (".yml", ".yaml")


@dataclass
class ValidationReport:
    """The files that were checked, by kind, and every problem found in them."""

    checked: dict[Path, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.diagnostics


def validate_paths(paths: Iterable[Path]) -> ValidationReport:
    """Check every file named or found under the folders named; never raises for bad input."""
    report = ValidationReport()
    for path in paths:
        if not path.exists():
            report.diagnostics.append(Diagnostic(path, 1, 1, f"{str(path)!r} does not exist"))
            continue
        explicit = not path.is_dir()
        try:
            files = list(iter_project_files(path))
        except OSError as error:
            report.diagnostics.append(Diagnostic(path, 1, 1, f"cannot read folder: {error.strerror}"))
            continue
        for file in files:
            _check_file(file, report, explicit)
    report.diagnostics.extend(_duplicate_components(report))
    report.diagnostics.sort()
    return report


def _duplicate_components(report: ValidationReport) -> list[Diagnostic]:
    """Report two descriptors that define one component name in the same catalog folder."""
    from moby_asm.catalog.loading import expected_name

    seen: dict[tuple[Path, str], Path] = {}
    found = []
    for path, kind in sorted(report.checked.items()):
        if kind != "component":
            continue
        folder = path.parent.parent if path.stem == "component" else path.parent
        key = (folder, expected_name(path))
        if key in seen:
            found.append(Diagnostic(path, 1, 1, f"component {key[1]!r} is also defined in {seen[key]}; "
                                                "keep one of the two files"))
        seen.setdefault(key, path)
    return found


def iter_project_files(path: Path) -> Iterator[Path]:
    """Yield the YAML files under `path`, skipping hidden folders and template sources."""
    if not path.is_dir():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.name.startswith(".") or "{{" in child.name:
            continue
        if child.is_dir():
            yield from iter_project_files(child)
        elif child.suffix in YAML_SUFFIXES or child.name == "assembly.lock":
            yield child


def _check_file(path: Path, report: ValidationReport, explicit: bool) -> None:
    """Check one file; a YAML file of unknown kind found by walking a folder is skipped."""
    try:
        document = load_document(path)
        kind, check = _detect_kind(document)
    except InvalidDocuments as error:
        if explicit or _known_place(path):
            report.checked.setdefault(path, "unknown")
            report.diagnostics.extend(error.diagnostics)
        return
    report.checked[path] = kind
    try:
        check(document)
    except InvalidDocuments as error:
        report.diagnostics.extend(error.diagnostics)


def _known_place(path: Path) -> bool:
    return (path.parent.name == "components" or path.name in ("assembly.yml", "assembly.yaml", "assembly.lock",
                                                                "component.yml", "component.yaml", "linuxkit.yml"))


def _detect_kind(document: Document) -> tuple[str, Callable[[Document], None]]:
    """Tell the kind of a file by its place first, then by its keys."""
    path, data = document.path, document.data
    if path.parent.name == "components" or path.name in ("component.yml", "component.yaml"):
        return "component", _check_component
    if path.name in ("assembly.yml", "assembly.yaml"):
        return "assembly", _check_assembly
    if path.name == "assembly.lock":
        return "lock", _check_lock
    if is_linuxkit_config(document):
        return "linuxkit", validate_linuxkit
    if isinstance(data, dict) and "versions" in data:
        return "component", _check_component
    if isinstance(data, dict) and "requires" in data:
        return "assembly", _check_assembly
    raise InvalidDocuments([document.diagnostic((), _UNKNOWN_KIND)])


_UNKNOWN_KIND = (
    "not a moby-asm file: a component descriptor lives in a components/ folder or has a "
    "'versions' key, an assembly is named assembly.yml or has a 'requires' key, and a "
    "LinuxKit config is named linuxkit.yml or has a top-level key such as 'kernel', 'init', "
    "'onboot' or 'services'"
)


def _check_component(document: Document) -> None:
    entry_from_document(document, CatalogSource("file", document.path.parent))


def _check_lock(document: Document) -> None:
    from moby_asm.lock import read_lock

    read_lock(document.path)


def _check_assembly(document: Document) -> None:
    validate_document(document, Assembly)
