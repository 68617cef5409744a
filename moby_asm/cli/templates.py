"""`moby-asm publish template`, `moby-asm pull` and `moby-asm template list`: templates in OCI registries."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.output import console, escape, print_json, table

publish_app = typer.Typer(help="Publish content to an OCI registry.", no_args_is_help=True)
template_app = typer.Typer(help="List templates in registries; update projects made from templates.",
                            no_args_is_help=True)

InsecureOption = typer.Option(None, "--insecure-registry", metavar="HOST[:PORT]",
                              help="Allow plain HTTP to this registry (loopback hosts always are).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


@publish_app.command("template")
def publish_template(
    folder: Path = typer.Argument(..., help="The cookiecutter template: a folder with cookiecutter.json."),
    reference: str = typer.Argument(..., metavar="oci://HOST/REPOSITORY:TAG", help="Where to push the template."),
    insecure: list[str] = InsecureOption,
    json: bool = JsonOption,
) -> None:
    """Push a cookiecutter template to a registry as an OCI artifact."""
    from moby_asm.templates.artifacts import publish_template as publish

    artifact = publish(folder, reference, insecure=set(insecure or ()))
    if json:
        print_json(_artifact_json(artifact))
        return
    console().print(f"published {escape(artifact.reference)} {artifact.digest}")


def pull(
    reference: str = typer.Argument(..., metavar="oci://HOST/REPOSITORY[:TAG|@DIGEST]",
                                    help="The template to download."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="Folder to create; default: the repository's last path component."),
    insecure: list[str] = InsecureOption,
    json: bool = JsonOption,
) -> None:
    """Download a template from a registry into a new folder."""
    from moby_asm.registry import parse_reference
    from moby_asm.templates.artifacts import pull_template
    from moby_asm.templates.sources import check_signature

    folder = output or Path(parse_reference(reference.removeprefix("oci://")).path.rsplit("/", 1)[-1])
    check_signature(reference, set(insecure or ()))
    artifact = pull_template(reference, folder, insecure=set(insecure or ()))
    if json:
        print_json({**_artifact_json(artifact), "folder": str(folder)})
        return
    console().print(f"pulled {escape(artifact.reference)} {artifact.digest} into {escape(str(folder))}")


@template_app.command("list")
def list_templates(
    repository: str = typer.Argument(..., metavar="oci://HOST/REPOSITORY", help="The repository to list."),
    insecure: list[str] = InsecureOption,
    json: bool = JsonOption,
) -> None:
    """List the tags of a repository that contain moby-asm templates, with their annotations."""
    from moby_asm.templates.artifacts import ANNOTATION_KEYS
    from moby_asm.templates.artifacts import list_templates as list_artifacts

    templates = list_artifacts(repository, insecure=set(insecure or ()))
    if json:
        print_json([{"tag": tag, **_artifact_json(artifact)} for tag, artifact in templates])
        return
    rows = table("tag", "version", "title", "description", "digest")
    for tag, artifact in templates:
        values = [artifact.annotations.get(ANNOTATION_KEYS[key], "") for key in ("version", "name", "description")]
        rows.add_row(escape(tag), *map(escape, values), artifact.digest)
    console().print(rows)


def _artifact_json(artifact) -> dict:
    return {"reference": artifact.reference, "digest": artifact.digest, "annotations": artifact.annotations}
