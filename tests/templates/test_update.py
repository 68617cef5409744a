"""`moby-asm template update`: three-way merges of a newer template into a project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from moby_asm.shipped import shipped_folder


@pytest.fixture
def made(cli, tmp_path) -> tuple[Path, Path]:
    """A copy of the minimal-node template and a project made from it."""
    template = tmp_path / "template"
    shutil.copytree(shipped_folder("templates") / "minimal-node", template)
    result = cli("new", template, "--no-input", "-x", "project_name=node", "-o", tmp_path / "node", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return template, tmp_path / "node"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def template_assembly(template: Path) -> Path:
    return template / "{{cookiecutter.project_name}}" / "assembly.yml"


def update(cli, project: Path, *args):
    return cli("template", "update", project, "--json", *args, cwd=project.parent)


def test_changes_on_both_sides_merge(cli, made):
    template, project = made
    edit(project / "assembly.yml", "version: 0.1.0", "version: 0.2.0")
    edit(template_assembly(template), "outputs: [kernel+initrd]", "outputs: [kernel+initrd, tar]")

    result = update(cli, project)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["merged"] == ["assembly.yml"]
    text = (project / "assembly.yml").read_text()
    assert "version: 0.2.0" in text
    assert "outputs: [kernel+initrd, tar]" in text
    assert cli("validate", project, cwd=project).returncode == 0


def test_overlapping_changes_are_marked_and_fail(cli, made):
    template, project = made
    edit(project / "assembly.yml", "outputs: [kernel+initrd]", "outputs: [tar]")
    edit(template_assembly(template), "outputs: [kernel+initrd]", "outputs: [oci]")

    result = update(cli, project)

    assert result.returncode == 1
    assert json.loads(result.stdout)["conflicts"] == ["assembly.yml"]
    assert "conflicts in assembly.yml" in result.stderr
    text = (project / "assembly.yml").read_text()
    assert "<<<<<<< project\noutputs: [tar]\n=======\noutputs: [oci]\n>>>>>>> new template" in text


def test_new_and_removed_files_follow_the_template(cli, made):
    template, project = made
    (template / "{{cookiecutter.project_name}}" / "README.md").write_text("# {{cookiecutter.project_name}}\n")

    added = update(cli, project)
    (template / "{{cookiecutter.project_name}}" / "README.md").unlink()
    removed = update(cli, project)

    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["added"] == ["README.md"]
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["removed"] == ["README.md"]
    assert not (project / "README.md").exists()


def test_deleted_changed_file_kept_aside(cli, made):
    template, project = made
    (project / "assembly.yml").unlink()
    edit(template_assembly(template), "outputs: [kernel+initrd]", "outputs: [tar]")

    result = update(cli, project)

    assert result.returncode == 1
    assert not (project / "assembly.yml").exists()
    assert "outputs: [tar]" in (project / "assembly.yml.template-new").read_text()


def test_unchanged_template_changes_nothing(cli, made, folder_snapshot):
    _, project = made
    edit(project / "assembly.yml", "version: 0.1.0", "version: 0.3.0")
    before = folder_snapshot(project)

    result = update(cli, project)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["merged"] == report["updated"] == report["conflicts"] == []
    after = folder_snapshot(project)
    assert {name: value for name, value in after.items() if not name.startswith(".moby-asm")} == \
        {name: value for name, value in before.items() if not name.startswith(".moby-asm")}


def test_recorded_answers_are_reused(cli, made):
    template, project = made
    edit(template_assembly(template), "outputs: [kernel+initrd]",
         "outputs: [kernel+initrd]\n# project {{ cookiecutter.project_name }}")

    result = update(cli, project)

    assert result.returncode == 0, result.stderr
    assert "# project node" in (project / "assembly.yml").read_text()
    record = json.loads((project / ".moby-asm" / "template.json").read_text())
    assert record["digest"] == json.loads(result.stdout)["digest"]


def test_project_without_record_is_rejected(cli, tmp_path):
    result = cli("template", "update", tmp_path, cwd=tmp_path)

    assert result.returncode == 2
    assert "was not made by 'moby-asm new'" in result.stderr
