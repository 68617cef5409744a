"""Render a cookiecutter template into a new project folder, contained and all at once.

The answers are collected first (prompts, or defaults with `--no-input`), then every path
the template would write is rendered and checked before anything is written: no absolute
paths, no `..`, no links that leave the template or the project. The project is rendered
into a hidden staging folder beside its destination and renamed into place only when
complete, so an interrupted run leaves no half-written project.

The project records its template in `.moby-asm/template.json` (reference, digest and
answers) and keeps the files as first rendered in `.moby-asm/template-base/`, the common
ancestor that `moby-asm template update` merges against.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moby_asm.errors import InputError, MobyAsmError
from moby_asm.fileio import remove_stale_staging, replace_folder
from moby_asm.reporter import Reporter
from moby_asm.templates.sources import TemplateSource

RECORD_FOLDER = ".moby-asm"
RECORD_FILE = "template.json"
BASE_FOLDER = "template-base"
HOOK_NAMES = ("pre_prompt", "pre_gen_project", "post_gen_project")
SAFE_EXTENSION_PREFIXES = ("jinja2.", "cookiecutter.")


class TemplateError(InputError):
    """The template or an answer cannot make a project; the message names the path or key."""


class HookFailed(MobyAsmError):
    """A template hook exited with an error; nothing was written."""


@dataclass(frozen=True)
class Rendered:
    """A project written from a template: its folder, the answers used and the hooks that were skipped."""

    folder: Path
    answers: dict[str, Any]
    skipped_hooks: list[str]


def render_project(source: TemplateSource, destination: Path | None, answers: dict[str, Any], no_input: bool,
                   force: bool, reporter: Reporter) -> Rendered:
    """Render `source` into `destination` (default: the project folder name the template gives, here)."""
    context = collect_answers(source, answers, no_input)
    skipped = [] if source.trusted else template_hooks(source.folder)
    if skipped:
        reporter.warning(f"hooks of {source.reference} were not run, because the template is not trusted: "
                         f"{', '.join(skipped)}. Pass --trust or list it under trusted_templates to run them")
    with tempfile.TemporaryDirectory(prefix="moby-asm-new-") as scratch:
        project = generate(source, context, Path(scratch))
        target = (destination or Path.cwd() / project.name).absolute()
        _check_destination(target, force)
        record_template(project, source, context)
        _move_into_place(project, target)
    return Rendered(target, public_answers(context), skipped)


def collect_answers(source: TemplateSource, answers: dict[str, Any], no_input: bool) -> dict[str, Any]:
    """Return the cookiecutter context: the template's defaults, `answers` on top, then prompts unless `no_input`."""
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    try:
        context = generate_context(str(source.folder / "cookiecutter.json"), None, answers)
    except (CookiecutterException, ValueError) as error:
        raise TemplateError(f"{source.reference}: cookiecutter.json is invalid: {error}") from error
    unknown = sorted(set(answers) - set(context["cookiecutter"]))
    if unknown:
        raise TemplateError(f"{source.reference} asks no question {', '.join(map(repr, unknown))}; its questions "
                            f"are {', '.join(sorted(public_answers(context['cookiecutter'])))}")
    _check_extensions(source, context["cookiecutter"])
    context["cookiecutter"].update(prompt_for_config(context, no_input))
    context["cookiecutter"]["_template"] = source.reference
    context["_cookiecutter"] = public_answers(context["cookiecutter"])
    return context


def public_answers(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if not key.startswith("_")}


def _check_extensions(source: TemplateSource, values: dict[str, Any]) -> None:
    """Reject Jinja extensions of an untrusted template: loading one imports code from it."""
    foreign = [name for name in values.get("_extensions", []) if not name.startswith(SAFE_EXTENSION_PREFIXES)]
    if foreign and not source.trusted:
        raise TemplateError(f"{source.reference} loads the Jinja extensions {', '.join(foreign)}, which run code "
                            "from the template; pass --trust if you trust it")


def template_hooks(folder: Path) -> list[str]:
    """Return the hook scripts of a template, as hooks/NAME paths."""
    hooks = folder / "hooks"
    if not hooks.is_dir():
        return []
    return sorted(f"hooks/{path.name}" for path in hooks.iterdir() if path.stem in HOOK_NAMES)


def generate(source: TemplateSource, context: dict[str, Any], scratch: Path) -> Path:
    """Check every path the template writes, then render it under `scratch`; return the project folder."""
    from cookiecutter.exceptions import CookiecutterException, FailedHookException
    from cookiecutter.generate import generate_files

    check_template_paths(source, context)
    output = scratch / "output"
    output.mkdir()
    try:
        project = Path(generate_files(str(source.folder), context, str(output), accept_hooks=source.trusted))
    except FailedHookException as error:
        raise HookFailed(f"a hook of {source.reference} failed, so no project was written: {error}") from error
    except CookiecutterException as error:
        raise TemplateError(f"{source.reference} cannot be rendered: {error}") from error
    _check_links(project, project, source.reference)
    return project


def check_template_paths(source: TemplateSource, context: dict[str, Any]) -> None:
    """Render every path of the template with the answers; reject any that would leave the project folder."""
    from cookiecutter.environment import StrictEnvironment
    from jinja2 import TemplateError as JinjaError

    _check_links(source.folder, source.folder, source.reference)
    environment = StrictEnvironment(context=context, keep_trailing_newline=True)
    for path in sorted(source.folder.rglob("*")):
        relative = path.relative_to(source.folder).as_posix()
        if "{{" not in relative:
            continue
        try:
            rendered = environment.from_string(relative).render(**context)
        except JinjaError as error:
            raise TemplateError(f"{source.reference}: path {relative!r} cannot be rendered: {error}") from error
        parts = Path(rendered).parts
        if not rendered.strip() or Path(rendered).is_absolute() or ".." in parts or "\\" in rendered:
            raise TemplateError(f"{source.reference}: path {relative!r} renders to {rendered!r}, which leaves the "
                                "project folder; change the answer it uses")


def _check_links(root: Path, folder: Path, reference: str) -> None:
    for path in folder.rglob("*"):
        if path.is_symlink():
            target = (path.parent / os.readlink(path)).resolve()
            if not target.is_relative_to(root.resolve()):
                raise TemplateError(f"{reference}: {path.relative_to(root)} links to {os.readlink(path)!r}, "
                                    "outside the template or project; templates may only link inside themselves")


def record_template(project: Path, source: TemplateSource, context: dict[str, Any]) -> None:
    """Write the template record and keep a copy of the rendered files as the base of later updates."""
    record = project / RECORD_FOLDER
    base = record / BASE_FOLDER
    files = [path for path in project.rglob("*") if not path.is_relative_to(record)]
    base.mkdir(parents=True)
    for path in files:
        copy = base / path.relative_to(project)
        if path.is_dir() and not path.is_symlink():
            copy.mkdir(exist_ok=True)
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy, follow_symlinks=False)
    data = {"template": source.reference, "kind": source.kind, "digest": source.digest,
            "answers": public_answers(context["cookiecutter"])}
    (record / RECORD_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_record(project: Path) -> dict[str, Any]:
    """Return a project's template record; raise TemplateError when it has none."""
    path = project / RECORD_FOLDER / RECORD_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TemplateError(f"{project} was not made by 'moby-asm new': {path} not found") from None
    except ValueError as error:
        raise TemplateError(f"{path} is not valid JSON ({error}); restore it from version control") from error
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict) or "template" not in data:
        raise TemplateError(f"{path} lacks 'template' or 'answers'; restore it from version control")
    return data


def _check_destination(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise TemplateError(f"{target} already exists; choose another folder with -o, or pass --force to "
                            "replace it")
    if target.exists() and not target.is_dir():
        raise TemplateError(f"{target} is a file; choose another folder with -o")


def _move_into_place(project: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent, target.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(project, staging / "project", symlinks=True)
        os.chmod(staging / "project", 0o755)
        replace_folder(staging / "project", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
