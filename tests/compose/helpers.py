"""Helpers shared by the compose test modules: files, positions and command output."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLES_FOLDER = REPOSITORY / "assemblies"
DATA = Path(__file__).resolve().parent / "data"

EXAMPLES = sorted(path.parent.name for path in EXAMPLES_FOLDER.glob("*/assembly.yml"))


def explain(result: subprocess.CompletedProcess) -> str:
    """Return the exit code and both output streams of a command, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_project(folder: Path, assembly: str, components: Iterable[str] = ()) -> Path:
    """Create a project folder with `assembly.yml` and copies of data/components/NAME.yml."""
    (folder / "components").mkdir(parents=True, exist_ok=True)
    for name in components:
        shutil.copyfile(DATA / "components" / f"{name}.yml", folder / "components" / f"{name}.yml")
    (folder / "assembly.yml").write_text(assembly, encoding="utf-8")
    return folder


def position_of(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """Return the 1-based line and column where `needle` starts in `text`."""
    start = -1
    for _ in range(occurrence):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def files_under(folder: Path) -> dict[str, bytes]:
    """Return every file below `folder` by relative path, including hidden ones."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}
