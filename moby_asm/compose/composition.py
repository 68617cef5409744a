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
from moby_asm.compose.render import ComposeError, render_linuxkit
from moby_asm.documents import load_document
from moby_asm.fileio import WriteFailed
from moby_asm.project import Locked, Project

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LINUXKIT_FILE = "linuxkit.yml"
PLAN_FILE = "plan.json"
LINUXKIT_HEADER = "# Rendered by 'moby-asm compose' from {assembly}. Edit the assembly, not this file.\n"


@dataclass
class Composition:
    """Everything compose writes, as bytes by file name, plus the data for the summary."""

    locked: Locked
    config: dict[str, Any]
    plan: dict[str, Any]
    files: dict[str, bytes]


def compose(project: Project, locked: Locked) -> Composition:
    """Render the builder inputs of a locked project; nothing is written."""
    document = load_document(project.assembly_path)
    values = parameter_values(locked.resolution, document)
    config = render_linuxkit(locked.resolution, locked.order, values)
    _check_rendered(config)
    plan = build_plan(locked.resolution, locked.order, config)
    header = LINUXKIT_HEADER.format(assembly=project.assembly_path.name)
    files = {
        LINUXKIT_FILE: (header + yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=120)).encode(),
        PLAN_FILE: (json.dumps(plan, indent=2, sort_keys=True) + "\n").encode(),
        "assembly.lock": locked.text.encode(),
    }
    return Composition(locked, config, plan, files)


def _check_rendered(config: dict[str, Any]) -> None:
    from moby_asm.linuxkit.schema import check_config

    problems = check_config(config)
    if problems:
        raise ComposeError("the rendered LinuxKit config is invalid:\n" + "\n".join(f"  {p}" for p in problems))


def write_composition(composition: Composition, folder: Path) -> None:
    """Replace `folder` with the composition: a new folder is filled, then renamed into place.

    A reader sees the previous folder or the new one; an interrupted compose leaves the
    previous result intact and at most a hidden staging folder beside it.
    """
    folder = folder.resolve()
    if folder.exists() and not folder.is_dir():
        raise ComposeError(f"build folder {folder} is a file; choose another --output")
    if folder == Path(folder.anchor) or folder == Path.home():
        raise ComposeError(f"refusing to replace {folder} with the build folder; choose a dedicated --output")
    try:
        _write_folder(composition, folder)
    except OSError as error:
        raise WriteFailed(folder, error.strerror or str(error)) from error


def _write_folder(composition: Composition, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, data in composition.files.items():
            (staging / name).write_bytes(data)
        os.chmod(staging, 0o755)
        _swap(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.replace(staging, folder)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
    os.replace(folder, retired / "previous")
    try:
        os.replace(staging, folder)
    except BaseException:
        os.replace(retired / "previous", folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)
