"""Compose a project into a build folder: `linuxkit.yml`, `plan.json` and `assembly.lock`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moby_asm.compose.parameters import parameter_values
from moby_asm.compose.plan import build_plan
from moby_asm.compose.render import ComposeError, pinned_reference, render_linuxkit
from moby_asm.deploy.stack import collect_services, render_stack
from moby_asm.documents import load_document
from moby_asm.fileio import WriteFailed, remove_stale_staging, replace_folder
from moby_asm.project import Locked, Project

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LINUXKIT_FILE = "linuxkit.yml"
PLAN_FILE = "plan.json"
STACK_FILE = "stack.yml"
STACK_HEADER = "# Rendered by 'moby-asm compose' from {assembly} for 'docker stack deploy' or 'moby-asm deploy'.\n"
LINUXKIT_HEADER = "# Rendered by 'moby-asm compose' from {assembly}. Edit the assembly, not this file.\n"


@dataclass
class Composition:
    """Everything compose writes, as bytes by file name, plus the data for the summary."""

    locked: Locked
    config: dict[str, Any]
    plan: dict[str, Any]
    files: dict[str, bytes]


def compose(project: Project, locked: Locked, built: dict[str, dict[str, str]] | None = None) -> Composition:
    """Render the builder inputs of a locked project; nothing is written.

    `built` maps components made from build contexts to the `image` reference the config
    should name (instead of the local tag) and its manifest `digest`, once they are built.
    Without it, the builds that the lock records for the current contexts are used.
    """
    if built is None:
        built = {name: {"image": pinned_reference(record["image"], record["digest"]), "digest": record["digest"]}
                 | ({"packages": len(record["packages"])} if "packages" in record else {})
                 for name, record in locked.built.items()}
    document = load_document(project.assembly_path)
    values = parameter_values(locked.resolution, document)
    config = render_linuxkit(locked.resolution, locked.order, values)
    if built:
        config = _name_built_images(config, locked, built)
    _check_rendered(config)
    packaged = {name: record["image"] for name, record in locked.built.items() if "packages" in record}
    plan = build_plan(locked.resolution, locked.order, config, packaged)
    for step in plan["steps"]:
        name = step["id"].partition(":")[2]
        if step["kind"] in ("build-image", "debian-image") and name in (built or {}):
            step["result"] = built[name]
    header = LINUXKIT_HEADER.format(assembly=project.assembly_path.name)
    files = {
        LINUXKIT_FILE: (header + yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=120)).encode(),
        PLAN_FILE: (json.dumps(plan, indent=2, sort_keys=True) + "\n").encode(),
        "assembly.lock": locked.text.encode(),
    }
    services = collect_services(locked.resolution)
    if services:
        stack = render_stack(locked.resolution.assembly.name, services)
        files[STACK_FILE] = (STACK_HEADER.format(assembly=project.assembly_path.name)
                             + yaml.dump(stack, Dumper=_Dumper, sort_keys=False, width=120)).encode()
    return Composition(locked, config, plan, files)


def _name_built_images(config: dict[str, Any], locked: Locked, built: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Replace each built component's local tag in the config by the reference it was built as."""
    from moby_asm.compose.render import image_reference

    platform = locked.resolution.assembly.platforms[0]
    renamed = {image_reference(*locked.resolution.selected[name], platform): record["image"]
               for name, record in built.items() if name in locked.resolution.selected}

    def rename(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: rename(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rename(item) for item in value]
        return renamed.get(value, value) if isinstance(value, str) else value

    return rename(config)


def _check_rendered(config: dict[str, Any]) -> None:
    from moby_asm.linuxkit.schema import check_config

    problems = check_config(config)
    if problems:
        raise ComposeError("the rendered LinuxKit config is invalid:\n" + "\n".join(f"  {p}" for p in problems))


BUILD_MARKER = ".moby-asm-build"
"""A file in every build folder; compose replaces only folders that hold it, or empty ones."""


def write_composition(composition: Composition, folder: Path, project_folder: Path | None = None) -> None:
    """Replace `folder` with the composition: a new folder is filled, then swapped into place.

    A reader sees the previous folder or the new one. `folder` must be missing, empty or
    an earlier build folder, so compose never deletes anything else.
    """
    folder = folder.absolute()
    _check_target(folder, project_folder)
    try:
        remove_stale_staging(folder.parent, folder.name)
        _write_folder(composition, folder)
    except OSError as error:
        raise WriteFailed(folder, error.strerror or str(error)) from error


def _check_target(folder: Path, project_folder: Path | None) -> None:
    if folder.exists() and not folder.is_dir():
        raise ComposeError(f"build folder {folder} is a file; choose another --output")
    if project_folder is not None and project_folder.absolute().is_relative_to(folder):
        raise ComposeError(f"build folder {folder} holds the project itself; choose a folder such as "
                           f"{project_folder / 'build'}")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / BUILD_MARKER).exists():
        raise ComposeError(f"{folder} is not empty and is not a moby-asm build folder; compose replaces "
                           "its output folder whole, so choose a new or empty folder")


def _write_folder(composition: Composition, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, data in composition.files.items():
            (staging / name).write_bytes(data)
        (staging / BUILD_MARKER).write_text("This folder is written by 'moby-asm compose' and replaced whole.\n")
        os.chmod(staging, 0o755)
        replace_folder(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
