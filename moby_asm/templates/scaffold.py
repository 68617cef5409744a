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

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from moby_asm.errors import InputError
from moby_asm.fileio import WriteFailed, remove_stale_staging, replace_folder
from moby_asm.reporter import Reporter
from moby_asm.templates.sources import TemplateSource

RECORD_FOLDER = ".moby-asm"
RECORD_FILE = "template.json"
BASE_FOLDER = "template-base"
HOOK_NAMES = ("pre_prompt", "pre_gen_project", "post_gen_project")
SAFE_EXTENSION_PREFIXES = ("jinja2.", "cookiecutter.")


class TemplateError(InputError):
    """The template or an answer cannot make a project; the message names the path or key."""


class HookFailed(InputError):
    """A template hook exited with an error, usually because it rejected an answer; nothing was written."""


@dataclass(frozen=True)
class Rendered:
    """A project written from a template: its folder, the answers used and the hooks that were skipped."""

    folder: Path
    answers: dict[str, Any]
    skipped_hooks: list[str]


def render_project(source: TemplateSource, destination: Path | None, answers: dict[str, Any], no_input: bool,
                   force: bool, reporter: Reporter) -> Rendered:
    """Render `source` into `destination` (default: the project folder name the template gives, here)."""
    skipped = [] if source.trusted else template_hooks(source.folder)
    if skipped:
        reporter.warning(f"hooks of {source.reference} were not run, because the template is not trusted: "
                         f"{', '.join(skipped)}. Pass --trust or list it under trusted_templates to run them")
    with tempfile.TemporaryDirectory(prefix="moby-asm-new-") as scratch:
        source = prepared(source, Path(scratch))
        context = collect_answers(source, answers, no_input)
        project = generate(source, context, Path(scratch))
        target = (destination or Path.cwd() / project.name).absolute()
        _check_destination(target, force)
        check_project(project, target)
        record_template(project, source, context)
        _move_into_place(project, target)
    return Rendered(target, public_answers(context), skipped)


def prepared(source: TemplateSource, scratch: Path) -> TemplateSource:
    """Run a trusted template's pre_prompt hook, which cookiecutter runs on a copy of the template."""
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.hooks import run_pre_prompt_hook

    if not source.trusted or not any(name.startswith("hooks/pre_prompt") for name in template_hooks(source.folder)):
        return source
    try:
        folder = Path(run_pre_prompt_hook(str(source.folder)))
    except FailedHookException as error:
        raise HookFailed(f"the pre_prompt hook of {source.reference} failed, so no project was written: "
                         f"{error}") from error
    copy = scratch / "template"
    shutil.move(folder, copy)
    return replace(source, folder=copy)


def check_project(project: Path, target: Path) -> None:
    """Validate the rendered project as `moby-asm validate` would; report problems under the final path."""
    from moby_asm.validate import validate_paths

    report = validate_paths([project])
    if not report.ok:
        lines = [str(diagnostic).replace(str(project), str(target)) for diagnostic in report.diagnostics]
        raise TemplateError("the rendered project is invalid, so it was not written; change the answers "
                            "these lines name:\n" + "\n".join(f"  {line}" for line in lines))


def collect_answers(source: TemplateSource, answers: dict[str, Any], no_input: bool) -> dict[str, Any]:
    """Return the cookiecutter context: the template's defaults, `answers` on top, then prompts unless `no_input`."""
    import click
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config
    from jinja2 import TemplateError as JinjaError

    questions = _questions(source)
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise TemplateError(f"{source.reference} asks no question {', '.join(map(repr, unknown))}; its questions "
                            f"are {', '.join(sorted(public_answers(questions)))}")
    _check_extensions(source, questions)
    try:
        context = generate_context(str(source.folder / "cookiecutter.json"), None, answers)
        with rendering(source):
            context["cookiecutter"].update(prompt_for_config(context, no_input))
    except (CookiecutterException, ValueError, JinjaError) as error:
        raise TemplateError(f"{source.reference}: an answer or default is invalid: {error}") from error
    except (EOFError, click.exceptions.Abort) as error:
        raise TemplateError("standard input ended before every question was answered; answer with "
                            "-x KEY=VALUE and pass --no-input to take the defaults for the rest") from error
    context["cookiecutter"]["_template"] = source.reference
    context["_cookiecutter"] = public_answers(context["cookiecutter"])
    return context


def _questions(source: TemplateSource) -> dict[str, Any]:
    path = source.folder / "cookiecutter.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise TemplateError(f"{source.reference}: cookiecutter.json cannot be read: {error}") from error
    if not isinstance(data, dict):
        raise TemplateError(f"{source.reference}: cookiecutter.json must be a JSON object of questions and defaults")
    return data


@contextmanager
def rendering(source: TemplateSource) -> Iterator[None]:
    """Render an untrusted template in Jinja's sandbox, where templates cannot reach Python objects.

    Cookiecutter makes its Jinja environments in one function; it is replaced while the
    block runs, in every module that calls it.
    """
    if source.trusted:
        yield
        return
    from unittest import mock

    modules = ("cookiecutter.utils", "cookiecutter.prompt", "cookiecutter.generate", "cookiecutter.hooks")
    with contextlib.ExitStack() as stack:
        for module in modules:
            stack.enter_context(mock.patch(f"{module}.create_env_with_context", sandboxed_environment))
        yield


def sandboxed_environment(context: dict[str, Any]):
    """Return a strict, sandboxed Jinja environment with cookiecutter's extensions and settings."""
    from cookiecutter.environment import ExtensionLoaderMixin
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class SandboxedStrictEnvironment(ExtensionLoaderMixin, SandboxedEnvironment):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(undefined=StrictUndefined, **kwargs)

    settings = context.get("cookiecutter", {}).get("_jinja2_env_vars", {})
    return SandboxedStrictEnvironment(context=context, keep_trailing_newline=True, **settings)


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
    from jinja2 import TemplateError as JinjaError

    check_template_paths(source, context)
    output = scratch / "output"
    output.mkdir()
    try:
        with rendering(source):
            project = Path(generate_files(str(source.folder), context, str(output), accept_hooks=source.trusted))
    except FailedHookException as error:
        raise HookFailed(f"a hook of {source.reference} failed: {error or 'see its messages above'}") from error
    except (CookiecutterException, JinjaError) as error:
        raise TemplateError(f"{source.reference} cannot be rendered: {_describe(error)}") from error
    except UnicodeDecodeError as error:
        raise TemplateError(f"{source.reference} has a file that is not UTF-8 text ({error}); list it under "
                            "_copy_without_render in cookiecutter.json") from error
    _check_links(project, project, source.reference)
    return project


def _describe(error: Exception) -> str:
    from cookiecutter.exceptions import NonTemplatedInputDirException

    if isinstance(error, NonTemplatedInputDirException):
        return "it needs one top folder whose name uses a question, such as {{cookiecutter.project_name}}"
    return str(error) or type(error).__name__


def check_template_paths(source: TemplateSource, context: dict[str, Any]) -> None:
    """Render every path of the template with the answers; reject any that would leave the project folder."""
    from cookiecutter.environment import StrictEnvironment

    _check_links(source.folder, source.folder, source.reference)
    environment = StrictEnvironment(context=context) if source.trusted else sandboxed_environment(context)
    for path in sorted(source.folder.rglob("*")):
        relative = path.relative_to(source.folder)
        for part in relative.parts:
            if "{{" in part or "{%" in part:
                _check_part(source, environment, context, relative.as_posix(), part)


def _check_part(source: TemplateSource, environment, context: dict[str, Any], relative: str, part: str) -> None:
    """Reject a path part that renders to nothing, `..` or a path; cookiecutter renders parts one by one."""
    from jinja2 import TemplateError as JinjaError

    try:
        rendered = environment.from_string(part).render(**context)
    except JinjaError as error:
        raise TemplateError(f"{source.reference}: path {relative!r} cannot be rendered: {error}") from error
    if rendered.strip() in ("", ".", "..") or "/" in rendered or "\\" in rendered or "\0" in rendered:
        raise TemplateError(f"{source.reference}: path {relative!r} renders {part!r} to {rendered!r}, which is "
                            "not a plain file or folder name inside the project; change the answer it uses")


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
    if record.exists():
        raise TemplateError(f"{source.reference} writes {RECORD_FOLDER}/ itself, where moby-asm records the "
                            "template; remove that folder from the template")
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
    if not project.is_dir():
        raise TemplateError(f"{project} is not a folder; give the folder of a project made by 'moby-asm new'")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TemplateError(f"{project} was not made by 'moby-asm new': {path} not found") from None
    except ValueError as error:
        raise TemplateError(f"{path} is not valid JSON ({error}); restore it from version control") from error
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict) or \
            not isinstance(data.get("template"), str):
        raise TemplateError(f"{path} needs a 'template' string and an 'answers' object; restore it from version "
                            "control")
    return data


def _check_destination(target: Path, force: bool) -> None:
    if force and Path.cwd().resolve().is_relative_to(target.resolve()):
        raise TemplateError(f"--force would replace {target}, which contains the current folder; choose another -o")
    if target.exists() and not force:
        raise TemplateError(f"{target} already exists; choose another folder with -o, or pass --force to "
                            "replace it")
    if target.exists() and not target.is_dir():
        raise TemplateError(f"{target} is a file; choose another folder with -o")


def _move_into_place(project: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(target.parent, target.name)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as error:
        raise WriteFailed(Path(error.filename or target.parent), error.strerror or str(error)) from error
    try:
        shutil.copytree(project, staging / "project", symlinks=True)
        os.chmod(staging / "project", 0o755)
        replace_folder(staging / "project", target)
    except OSError as error:
        raise WriteFailed(Path(error.filename or target), error.strerror or str(error)) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
