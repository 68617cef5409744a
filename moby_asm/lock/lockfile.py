"""Render, read, write and compare `assembly.lock`.

The lock is YAML with a fixed key order and sorted lists, so the same inputs always
give the same bytes. It records, for every selected component, the version, stage,
source (with the image digest when the descriptor pins one), the descriptor it came
from, and what requires it; then the provider chosen for each capability, the boot
order of every stage, and the SHA-256 of every input file with one checksum over them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from moby_asm.catalog.loading import CatalogEntry
from moby_asm.documents import InvalidDocuments, load_document
from moby_asm.errors import MobyAsmError
from moby_asm.fileio import atomic_write_text
from moby_asm.resolve.resolution import Resolution
from moby_asm.resolve.universe import ROOT

LOCK_FILE = "assembly.lock"
LOCK_VERSION = 1
HEADER = "# Written by 'moby-asm lock'. Do not edit: run 'moby-asm lock' to update it.\n"

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class LockMismatch(MobyAsmError):
    """The lock no longer matches its inputs; `differences` lists what changed."""

    def __init__(self, path: Path, differences: list[str]):
        self.path = path
        self.differences = differences
        super().__init__(f"{path} is out of date; run 'moby-asm lock' to update it:\n"
                         + "\n".join(f"  {line}" for line in differences))


@dataclass(frozen=True)
class InputFile:
    label: str
    sha256: str


def render_lock(resolution: Resolution, order: dict[str, list[str]], assembly_path: Path,
                built: dict[str, dict[str, str]] | None = None) -> str:
    """Return the lock text for a resolution; equal inputs give equal text.

    `built` maps a component built from a Docker build context to the `image` reference
    and manifest `digest` that its last build produced.
    """
    built = built or {}
    inputs = _input_files(resolution, assembly_path)
    data = {
        "lockVersion": LOCK_VERSION,
        "assembly": {"name": resolution.assembly.name, "version": resolution.assembly.version},
        "platforms": list(resolution.assembly.platforms),
        "inputs": {
            "checksum": _checksum(inputs),
            "files": [{"path": f.label, "sha256": f.sha256} for f in inputs],
        },
        "components": [_component(resolution, name, built.get(name)) for name in resolution.selected],
        "capabilities": dict(resolution.capabilities),
        "order": order,
    }
    return HEADER + yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def write_lock(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def read_lock(path: Path) -> dict[str, Any] | None:
    """Return the lock's data, or None when there is no lock file."""
    if not path.exists():
        return None
    try:
        document = load_document(path)
    except InvalidDocuments as error:
        hint = "; the lock is written by moby-asm, so delete it and run 'moby-asm lock' to write it again"
        raise InvalidDocuments([replace(d, message=d.message + hint) for d in error.diagnostics]) from None
    data = document.data
    if not isinstance(data, dict) or data.get("lockVersion") != LOCK_VERSION:
        raise InvalidDocuments([document.diagnostic(("lockVersion",), f"unsupported lock format; expected "
                                                    f"lockVersion {LOCK_VERSION}. Delete the file and run 'moby-asm lock'")])
    return data


def locked_versions(lock: dict[str, Any] | None) -> dict[str, str]:
    if not lock:
        return {}
    return {item["name"]: item["version"] for item in lock.get("components", ()) if isinstance(item, dict)}


def built_images(lock: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """Return the image and digest recorded for each component, built from a context or pinned, by name."""
    result = {}
    for item in (lock or {}).get("components", ()):
        source = item.get("source") if isinstance(item, dict) else None
        if isinstance(source, dict) and source.get("image") and source.get("digest"):
            result[item["name"]] = {"image": str(source["image"]), "digest": str(source["digest"])}
        if isinstance(source, dict) and source.get("image") and isinstance(source.get("packages"), list):
            result[item["name"]] = {"image": str(source["image"]), "digest": source.get("digest"),
                                    "packages": source["packages"]}
    return result


def compare_locks(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """List the differences between two locks in words, inputs first."""
    differences = []
    old_files = {f["path"]: f["sha256"] for f in old.get("inputs", {}).get("files", [])}
    new_files = {f["path"]: f["sha256"] for f in new.get("inputs", {}).get("files", [])}
    for label in sorted(old_files.keys() | new_files.keys()):
        if label not in new_files:
            differences.append(f"input {label} is no longer used")
        elif label not in old_files:
            differences.append(f"input {label} is new")
        elif old_files[label] != new_files[label]:
            differences.append(f"input {label} changed")
    old_versions, new_versions = locked_versions(old), locked_versions(new)
    for name in sorted(old_versions.keys() | new_versions.keys()):
        before, after = old_versions.get(name), new_versions.get(name)
        if before != after:
            differences.append(f"component {name}: {before or 'not selected'} -> {after or 'not selected'}")
    differences += _source_changes(old, new) if not differences else []
    for key in ("capabilities", "order", "platforms", "assembly"):
        if old.get(key) != new.get(key) and not differences:
            differences.append(f"{key} differs")
    if not differences and old != new:
        differences.append("the lock's content differs from a fresh resolution")
    return differences


def _source_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    def sources(lock: dict[str, Any]) -> dict[str, Any]:
        return {item.get("name"): item.get("source") for item in lock.get("components", ()) if isinstance(item, dict)}

    before, after = sources(old), sources(new)
    changes = []
    for name in sorted(before.keys() & after.keys()):
        if before[name] != after[name]:
            rebuilt = isinstance(before[name], dict) and "build" in before[name]
            repackaged = isinstance(before[name], dict) and "debian" in before[name]
            changes.append(f"component {name}: " + ("its build context changed since its image was built"
                                                    if rebuilt else "its Debian packages changed" if repackaged
                                                    else "its source changed"))
    return changes


def _component(resolution: Resolution, name: str, built: dict[str, str] | None) -> dict[str, Any]:
    entry, version = resolution.selected[name]
    required_by = sorted({"assembly" if e.parent == ROOT else e.parent for e in resolution.edges if e.child == name})
    item: dict[str, Any] = {"name": name, "version": version.version, "stage": version.stage}
    if version.source is not None:
        item["source"] = _source(version.source, built)
    item["descriptor"] = descriptor_label(entry)
    item["requiredBy"] = required_by
    return item


def _source(source, built: dict[str, str] | None) -> dict[str, Any]:
    if source.image is not None:
        reference, _, digest = source.image.partition("@")
        # A tag-only image is pinned to the digest its last pull or `moby-asm lock` found.
        # NOTE: until then (a lock made offline, before any build) the digest is null.
        if not digest and built and built["image"] == reference:
            digest = built["digest"]
        return {"image": reference, "digest": digest or None}
    if source.build is not None:
        item = {"build": source.build.model_dump(exclude_defaults=True)}
        if built:
            item.update(image=built["image"], digest=built["digest"])
        return item
    if source.debian is not None:
        item = {"debian": source.debian.model_dump(exclude_defaults=True)}
        if built:
            item.update(image=built["image"], digest=built.get("digest"), packages=built["packages"])
        return item
    return {"path": source.path}


def descriptor_label(entry: CatalogEntry) -> str:
    """Name a descriptor by its catalog source and path inside it, the same on every machine."""
    relative = entry.path.relative_to(entry.source.path).as_posix()
    return f"{entry.source.label}:{relative}"


def _input_files(resolution: Resolution, assembly_path: Path) -> list[InputFile]:
    files = [InputFile(assembly_path.name, _sha256(assembly_path))]
    for entry, _ in resolution.selected.values():
        files.append(InputFile(descriptor_label(entry), _sha256(entry.path)))
    return sorted(set(files), key=lambda f: f.label)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checksum(files: list[InputFile]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.label}\0{file.sha256}\n".encode())
    return "sha256:" + digest.hexdigest()
