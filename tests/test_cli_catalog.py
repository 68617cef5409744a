"""`moby-asm components list|show|search` on a temporary project, and the shipped catalog.

The project has its own components/ folder and two MOBY_ASM_CATALOG_PATH folders, so
every level of precedence is exercised: project, first path folder, second path folder,
shipped catalog. The shipped catalog changes often, so only its relation to the files in
its folder is checked, never its exact contents.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from moby_asm.catalog.loading import expected_name, iter_descriptor_files
from moby_asm.shipped import shipped_folder

SHIPPED = shipped_folder("components")
ESCAPE = "\x1b["


def descriptor(name: str, description: str, *versions: str, extra: str = "") -> str:
    """Return the YAML of a service component with the given versions."""
    entries = "".join(
        f"  - version: {version}\n"
        f"    stage: service\n"
        f"    source:\n"
        f"      image: example/{name}:v{version}\n"
        for version in versions
    )
    return f"name: {name}\ndescription: {description}\n{extra}versions:\n{entries}"


def shipped_names() -> list[str]:
    return sorted(expected_name(path) for path in iter_descriptor_files(SHIPPED))


@dataclass
class Project:
    """A project folder and the environment that adds its two catalog path folders."""

    root: Path
    path_a: Path
    path_b: Path
    env: dict[str, str]


@pytest.fixture
def project(tmp_path) -> Project:
    root, path_a, path_b = tmp_path / "project", tmp_path / "path-a", tmp_path / "path-b"
    for folder in (root / "components", path_a, path_b):
        folder.mkdir(parents=True)
    (root / "components" / "fixture-shell.yml").write_text(
        descriptor(
            "fixture-shell",
            "Debug shell from the project",
            "1.2.0",
            "1.10.0",
            extra="labels:\n  area: troubleshooting\n",
        )
    )
    (path_a / "fixture-shell.yml").write_text(
        descriptor("fixture-shell", "Shell from path A", "0.1.0")
    )
    (path_a / "fixture-extra.yml").write_text(
        descriptor("fixture-extra", "Extra from path A with [bold]brackets[/bold]", "2.0.0")
    )
    (path_b / "fixture-extra.yml").write_text(
        descriptor("fixture-extra", "Extra from path B", "3.0.0")
    )
    (path_b / "fixture-only-b.yml").write_text(
        descriptor("fixture-only-b", "Only in path B", "0.0.1")
    )
    env = {"MOBY_ASM_CATALOG_PATH": os.pathsep.join([str(path_a), str(path_b)])}
    return Project(root, path_a, path_b, env)


def components(cli, project: Project, *args: str) -> subprocess.CompletedProcess:
    return cli("components", *args, "--project", project.root, cwd=project.root, env=project.env)


def json_rows(cli, project: Project, *args: str) -> dict[str, dict]:
    result = components(cli, project, *args, "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def output_line(text: str, name: str) -> str:
    """Return the one table row of `text` that starts with component `name`."""
    lines = [line for line in text.splitlines() if line.strip().split(" ")[0] == name]
    assert len(lines) == 1, text
    return lines[0]


def run_in_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the command with a pseudo-terminal as stdout and stderr and return its output."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "moby_asm", *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # Linux raises EIO once the child has closed the terminal.
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def terminal_env(project: Project, no_color: bool) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR")
    }
    cache = project.root.parent / "cache"
    env.update(project.env, TERM="xterm-256color", COLUMNS="400", MOBY_ASM_CACHE_DIR=str(cache))
    if no_color:
        env["NO_COLOR"] = "1"
    return env


# list


def test_list_json_precedence(cli, project):
    rows = json_rows(cli, project, "list")

    assert rows["fixture-shell"]["source"] == "project"
    assert rows["fixture-shell"]["path"] == str(project.root / "components" / "fixture-shell.yml")
    assert rows["fixture-extra"]["source"] == "path"
    assert rows["fixture-extra"]["path"] == str(project.path_a / "fixture-extra.yml")
    assert rows["fixture-only-b"]["path"] == str(project.path_b / "fixture-only-b.yml")


def test_list_json_shows_shadowed_entries(cli, project):
    rows = json_rows(cli, project, "list")

    assert rows["fixture-shell"]["shadows"] == [str(project.path_a / "fixture-shell.yml")]
    assert rows["fixture-extra"]["shadows"] == [str(project.path_b / "fixture-extra.yml")]
    assert rows["fixture-only-b"]["shadows"] == []


def test_list_json_versions_newest_first(cli, project):
    rows = json_rows(cli, project, "list")

    assert rows["fixture-shell"]["versions"] == ["1.10.0", "1.2.0"]
    assert rows["fixture-shell"]["stages"] == ["service"]
    assert rows["fixture-shell"]["description"] == "Debug shell from the project"


def test_list_json_includes_shipped_components(cli, project):
    rows = json_rows(cli, project, "list")

    for name in shipped_names():
        assert name in rows
        assert rows[name]["source"] == "shipped"
        assert Path(rows[name]["path"]).is_relative_to(SHIPPED)


def test_project_shadows_shipped_component(cli, project):
    names = shipped_names()
    if not names:
        pytest.skip("the shipped catalog is empty")
    name = names[0]
    (project.root / "components" / f"{name}.yml").write_text(
        descriptor(name, "Project copy", "99.0.0")
    )

    row = json_rows(cli, project, "list")[name]

    assert row["source"] == "project"
    assert row["versions"] == ["99.0.0"]
    assert len(row["shadows"]) == 1
    assert Path(row["shadows"][0]).parent == SHIPPED


def test_list_table(cli, project):
    result = components(cli, project, "list")

    assert result.returncode == 0, result.stderr
    shell = output_line(result.stdout, "fixture-shell")
    assert "1.10.0, 1.2.0" in shell
    assert f"project (shadows {project.path_a / 'fixture-shell.yml'})" in shell
    extra = output_line(result.stdout, "fixture-extra")
    assert f"path (shadows {project.path_b / 'fixture-extra.yml'})" in extra
    assert "Extra from path A with [bold]brackets[/bold]" in extra


def test_list_without_project_components_folder(cli, tmp_path):
    result = cli("components", "list", "--json", "--project", tmp_path, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert sorted(row["name"] for row in json.loads(result.stdout)) == shipped_names()


def test_list_reports_invalid_path_descriptor(cli, project):
    broken = project.path_b / "fixture-broken.yml"
    broken.write_text("name: fixture-broken\nversions:\n  - version: 1.0\n    stage: service\n")

    result = components(cli, project, "list")

    assert result.returncode == 2
    assert f"{broken}:3:14: expected a string, got 1.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_reports_missing_catalog_folder(cli, project):
    missing = project.root / "no-such-folder"
    env = {"MOBY_ASM_CATALOG_PATH": str(missing)}

    result = cli("components", "list", "--project", project.root, cwd=project.root, env=env)

    assert result.returncode == 2
    assert f"catalog folder {str(missing)!r} does not exist" in result.stderr


# show


def test_show_text_names_shadowed_file(cli, project):
    result = components(cli, project, "show", "fixture-shell")

    assert result.returncode == 0, result.stderr
    assert (
        f"from {project.root / 'components' / 'fixture-shell.yml'} (project catalog)"
        in result.stdout
    )
    assert f"shadows {project.path_a / 'fixture-shell.yml'} (path catalog)" in result.stdout
    assert "version: 1.10.0" in result.stdout
    assert "version: 1.2.0" in result.stdout


def test_show_json(cli, project):
    result = components(cli, project, "show", "fixture-shell", "--json")

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["source"] == "project"
    assert output["path"] == str(project.root / "components" / "fixture-shell.yml")
    assert output["component"]["labels"] == {"area": "troubleshooting"}
    assert [v["version"] for v in output["component"]["versions"]] == ["1.10.0", "1.2.0"]


def test_show_name_at_version(cli, project):
    result = components(cli, project, "show", "fixture-shell@1.2.0", "--json")

    assert result.returncode == 0, result.stderr
    versions = json.loads(result.stdout)["component"]["versions"]
    assert [v["version"] for v in versions] == ["1.2.0"]
    assert versions[0]["source"] == {"image": "example/fixture-shell:v1.2.0"}


def test_show_name_at_version_text(cli, project):
    result = components(cli, project, "show", "fixture-shell@1.10.0")

    assert result.returncode == 0, result.stderr
    assert "version: 1.10.0" in result.stdout
    assert "version: 1.2.0" not in result.stdout


def test_show_unknown_name_suggests(cli, project):
    result = components(cli, project, "show", "fixture-shel")

    assert result.returncode == 2
    assert (
        "component 'fixture-shel' not found in the catalog; did you mean 'fixture-shell'?"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_show_unknown_name_lists_hint(cli, project):
    result = components(cli, project, "show", "qqqqqqqqqq")

    assert result.returncode == 2
    assert "run 'moby-asm components list' to see every component" in result.stderr


def test_show_unknown_version(cli, project):
    result = components(cli, project, "show", "fixture-shell@9.9.9")

    assert result.returncode == 2
    assert (
        "component 'fixture-shell' has no version 9.9.9; known versions: 1.10.0, 1.2.0"
        in result.stderr
    )


def test_show_invalid_version_text(cli, project):
    result = components(cli, project, "show", "fixture-shell@latest")

    assert result.returncode == 2
    assert "invalid version 'latest'" in result.stderr
    assert "Traceback" not in result.stderr


# search


def test_search_matches_label(cli, project):
    rows = json_rows(cli, project, "search", "TROUBLESHOOT")

    assert "fixture-shell" in rows
    assert rows["fixture-shell"]["shadows"] == [str(project.path_a / "fixture-shell.yml")]


def test_search_ignores_shadowed_description(cli, project):
    assert "fixture-extra" in json_rows(cli, project, "search", "extra from path a")
    assert "fixture-extra" not in json_rows(cli, project, "search", "extra from path b")


def test_search_matches_capability(cli, project):
    capability = "  - version: 4.0.0\n    stage: files\n    provides: [fixture-capability 1.0.0]\n"
    text = descriptor("fixture-provider", "Provider", "1.0.0") + capability
    (project.root / "components" / "fixture-provider.yml").write_text(text)

    rows = json_rows(cli, project, "search", "fixture-capability")

    assert list(rows) == ["fixture-provider"]
    assert rows["fixture-provider"]["stages"] == ["files", "service"]


def test_search_text_output(cli, project):
    result = components(cli, project, "search", "path b")

    assert result.returncode == 0, result.stderr
    assert "fixture-only-b" in output_line(result.stdout, "fixture-only-b")
    assert "1 component matching 'path b'" in result.stdout


def test_search_without_match(cli, project):
    result = components(cli, project, "search", "no-component-has-this-text")

    assert result.returncode == 0
    assert result.stdout.strip() == "No component matches 'no-component-has-this-text'."
    assert json_rows(cli, project, "search", "no-component-has-this-text") == {}


# colors


def test_piped_output_has_no_escape_codes(cli, project):
    for args in (["list"], ["show", "fixture-shell"], ["search", "fixture"]):
        result = components(cli, project, *args)
        assert result.returncode == 0, result.stderr
        assert ESCAPE not in result.stdout + result.stderr, args


def test_terminal_output_has_escape_codes(project):
    output = run_in_terminal(
        ["components", "list", "--project", str(project.root)],
        terminal_env(project, no_color=False),
    )

    assert ESCAPE in output


@pytest.mark.parametrize(
    "args",
    [
        ["components", "list"],
        ["components", "show", "fixture-shell"],
        ["components", "search", "fixture-shell"],
    ],
    ids=["list", "show", "search"],
)
def test_no_color_terminal_output_plain(project, args):
    output = run_in_terminal(
        [*args, "--project", str(project.root)], terminal_env(project, no_color=True)
    )

    assert "fixture-shell" in output
    assert ESCAPE not in output


# shipped catalog


def test_shipped_catalog_validates(cli, tmp_path):
    result = cli("validate", SHIPPED, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    summary = re.search(r"(\d+) files checked, 0 problems", result.stdout)
    assert summary, result.stdout
    assert int(summary.group(1)) >= len(shipped_names())
