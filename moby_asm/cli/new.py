"""`moby-asm new`: scaffold an assembly project from a template."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.output import ConsoleReporter, console, escape, interruptible, print_json


def new(
    template: str = typer.Argument(None, help="A shipped template name (default: minimal-node), a folder, "
                                              "a git URL or oci://HOST/REPOSITORY:TAG."),
    output: Path = typer.Option(None, "--output", "-o", help="Project folder to create; default: the folder "
                                                            "name the template gives, in the current folder."),
    no_input: bool = typer.Option(False, "--no-input", help="Ask nothing: take the defaults and -x answers."),
    extra: list[str] = typer.Option(None, "--extra", "-x", metavar="KEY=VALUE", help="Answer a question; repeat."),
    trust: bool = typer.Option(False, "--trust", help="Run the hooks of a template from git or a registry."),
    force: bool = typer.Option(False, "--force", help="Replace the project folder if it exists."),
    insecure: list[str] = typer.Option(None, "--insecure-registry", metavar="HOST[:PORT]",
                                       help="Allow plain HTTP to this registry (loopback hosts always are)."),
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Create an assembly project from a template and record the template and answers in it."""
    from moby_asm.templates.scaffold import render_project
    from moby_asm.templates.sources import open_template

    answers = parse_answers(extra or [])
    reporter = ConsoleReporter()
    quiet_cookiecutter()
    with interruptible("interrupted; no project was written"), open_template(template, trust, set(insecure or ())) \
            as source:
        rendered = render_project(source, output, answers, no_input, force, reporter)
    if json:
        print_json({"project": str(rendered.folder), "template": source.reference, "digest": source.digest,
                    "answers": rendered.answers, "skippedHooks": rendered.skipped_hooks})
        return
    console().print(f"created {escape(str(rendered.folder))} from {escape(source.reference)} ({source.digest[:19]})")
    console().print(f"next: moby-asm build {escape(str(rendered.folder))}")


def quiet_cookiecutter() -> None:
    """Keep cookiecutter's log records (with tracebacks of failed hooks) off the terminal; moby-asm reports errors."""
    import logging

    logging.getLogger("cookiecutter").setLevel(logging.CRITICAL)


def parse_answers(values: list[str]) -> dict[str, str]:
    """Turn KEY=VALUE options into answers; raise InputError naming a malformed one."""
    from moby_asm.errors import InputError

    answers = {}
    for value in values:
        key, separator, answer = value.partition("=")
        if not separator or not key.strip():
            raise InputError(f"invalid -x {value!r}: expected KEY=VALUE, for example -x project_name=edge-1")
        answers[key.strip()] = answer
    return answers


def update(
    project: Path = typer.Argument(Path("."), help="The project folder made by 'moby-asm new'."),
    template: str = typer.Option(None, "--template", metavar="REFERENCE",
                                 help="The newer template; default: the recorded one, fetched again."),
    trust: bool = typer.Option(False, "--trust", help="Run the hooks of a template from git or a registry."),
    insecure: list[str] = typer.Option(None, "--insecure-registry", metavar="HOST[:PORT]",
                                       help="Allow plain HTTP to this registry (loopback hosts always are)."),
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Merge a newer version of the project's template into it, keeping your edits."""
    from moby_asm.templates.update import UpdateConflicts, update_project

    quiet_cookiecutter()
    with interruptible("interrupted; run the update again to finish it"):
        result = update_project(project, template, trust, set(insecure or ()), ConsoleReporter())
    if json:
        print_json(vars(result))
    else:
        for label, names in (("updated", result.updated), ("added", result.added), ("removed", result.removed),
                             ("merged", result.merged), ("conflict", result.conflicts)):
            for name in names:
                console().print(f"{label:<9} {escape(name)}")
        console().print(f"now at {escape(result.template)} ({result.digest[:19]})")
    if result.conflicts:
        raise UpdateConflicts(result.conflicts)
