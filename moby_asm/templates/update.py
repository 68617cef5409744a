"""Re-render a project from a newer template with its recorded answers and merge it in three ways.

The three versions of each file are the one first rendered (`.moby-asm/template-base/`),
the project's current one, and the new rendering. A file changed on one side only takes
that side; a file changed on both is merged line by line with `git merge-file`, and
overlapping changes are written with conflict markers and listed. A file deleted on one
side and changed on the other keeps the project's state and gets the new rendering
beside it as NAME.template-new. The base and the record are replaced last, so running the
update again after an interruption finishes it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from moby_asm.errors import MobyAsmError
from moby_asm.fileio import atomic_write_bytes, replace_folder
from moby_asm.reporter import Reporter
from moby_asm.templates.scaffold import (
    BASE_FOLDER,
    RECORD_FILE,
    RECORD_FOLDER,
    collect_answers,
    generate,
    public_answers,
    read_record,
    record_template,
)
from moby_asm.templates.sources import open_template

NEW_SUFFIX = ".template-new"


class UpdateConflicts(MobyAsmError):
    """Some files changed both in the project and in the template; they hold conflict markers now."""

    def __init__(self, names: list[str]):
        self.names = names
        super().__init__(f"conflicts in {', '.join(names)}: resolve the <<<<<<< markers, compare "
                         f"NAME{NEW_SUFFIX} files with their projects' versions, or decide whether to keep a file "
                         "that the template removed; then commit the result")


@dataclass
class UpdateResult:
    """The files an update changed, by path relative to the project, and the answers it dropped."""

    template: str = ""
    digest: str = ""
    updated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    dropped_answers: list[str] = field(default_factory=list)


def update_project(project: Path, reference: str | None, trust: bool, insecure: set[str],
                   reporter: Reporter) -> UpdateResult:
    """Merge the rendering of `reference` (default: the recorded template) into `project`."""
    project = project.absolute()
    record = read_record(project)
    with open_template(reference or record["template"], trust, insecure, project) as source:
        probe = collect_answers(source, {}, no_input=True)
        known = public_answers(probe["cookiecutter"])
        answers = {key: value for key, value in record["answers"].items() if key in known}
        dropped = sorted(set(record["answers"]) - set(known))
        result = UpdateResult(source.reference, source.digest, dropped_answers=dropped)
        if dropped:
            reporter.warning(f"the template no longer asks {', '.join(dropped)}, so those answers are dropped")
        context = collect_answers(source, answers, no_input=True)
        with tempfile.TemporaryDirectory(prefix="moby-asm-update-") as scratch:
            rendered = generate(source, context, Path(scratch))
            _merge_tree(project, project / RECORD_FOLDER / BASE_FOLDER, rendered, result)
            record_template(rendered, source, context)
            _replace_record(project, rendered / RECORD_FOLDER)
    return result


def _merge_tree(project: Path, base: Path, theirs: Path, result: UpdateResult) -> None:
    names = sorted(_files(base) | _files(theirs))
    for name in names:
        _merge_file(name, base / name, project / name, theirs / name, result)


def _files(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    return {path.relative_to(root).as_posix() for path in root.rglob("*")
            if (path.is_file() or path.is_symlink()) and not path.relative_to(root).parts[0] == RECORD_FOLDER}


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _merge_file(name: str, base: Path, ours: Path, theirs: Path, result: UpdateResult) -> None:
    old, mine, new = _read(base), _read(ours), _read(theirs)
    if mine == new or old == new:
        return
    if old == mine:
        _take_theirs(name, ours, theirs, new, result)
    elif mine is None or new is None or old is None:
        _keep_both(name, ours, theirs, new, result)
    else:
        _merge_lines(name, base, ours, theirs, result)


def _take_theirs(name: str, ours: Path, theirs: Path, new: bytes | None, result: UpdateResult) -> None:
    if new is None:
        ours.unlink()
        result.removed.append(name)
        return
    (result.updated if ours.exists() else result.added).append(name)
    ours.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(ours, new, theirs.stat().st_mode & 0o7777)


def _keep_both(name: str, ours: Path, theirs: Path, new: bytes | None, result: UpdateResult) -> None:
    if new is not None:
        side = ours.with_name(ours.name + NEW_SUFFIX)
        side.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(side, new, theirs.stat().st_mode & 0o7777)
    result.conflicts.append(name)


def _merge_lines(name: str, base: Path, ours: Path, theirs: Path, result: UpdateResult) -> None:
    merged, conflicts = merge_file(ours, base, theirs)
    atomic_write_bytes(ours, merged, ours.stat().st_mode & 0o7777)
    (result.conflicts if conflicts else result.merged).append(name)


def merge_file(ours: Path, base: Path, theirs: Path) -> tuple[bytes, int]:
    """Return the three-way merge of a file by `git merge-file` and its number of conflicts."""
    import subprocess

    from moby_asm.tools.command import ToolFailed, ToolMissing

    if shutil.which("git") is None:
        raise ToolMissing("git", "install git (Debian package git)")
    command = ["git", "merge-file", "-p", "-L", "project", "-L", "template base", "-L", "new template",
               str(ours), str(base), str(theirs)]
    completed = subprocess.run(command, capture_output=True, check=False)
    # git merge-file exits with the number of conflicts (capped at 127), or a negative code on error.
    if not 0 <= completed.returncode <= 127:
        raise ToolFailed(command, completed.returncode, completed.stderr.decode("utf-8", "replace"))
    return completed.stdout, completed.returncode


def _replace_record(project: Path, record: Path) -> None:
    """Put the new base folder in place, then the new record file, the step that completes an update."""
    staging = Path(tempfile.mkdtemp(prefix=".record.", dir=project / RECORD_FOLDER))
    try:
        shutil.copytree(record / BASE_FOLDER, staging / BASE_FOLDER, symlinks=True)
        replace_folder(staging / BASE_FOLDER, project / RECORD_FOLDER / BASE_FOLDER)
        atomic_write_bytes(project / RECORD_FOLDER / RECORD_FILE, (record / RECORD_FILE).read_bytes())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
