"""Typed component parameters: values in the rendered config, and every invalid value reported.

The project's `app` component (data/components/app.yml) declares one parameter of each
type, a parameter with choices and a required one. Every failing compose must exit 2,
point at the assembly's FILE:LINE:COLUMN and leave the build folder and lock alone.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import explain, position_of, read_yaml, write_project

HEAD = """\
name: parameters
requires:
  - kernel ^6.6
  - init ^1.2
  - runc
  - containerd
  - app
"""

VALID = HEAD + """\
parameters:
  app:
    greeting: hi there
    port: 9000
    ratio: 0.25
    verbose: true
    args: ["--one", "--two words"]
    level: debug
    token: s3cret
"""

MINIMAL = HEAD + """\
parameters:
  app:
    token: s3cret
"""


@dataclass(frozen=True)
class Invalid:
    """An assembly with one mistake, the text the report must point at, and parts of its message."""

    assembly: str
    marker: str
    fragments: tuple[str, ...]


INVALID = {
    "string-for-integer": Invalid(
        HEAD + "parameters:\n  app:\n    token: t\n    port: \"9000\"\n",
        '"9000"', ("'port'", "'app'", "(type integer)")),
    "integer-for-string": Invalid(
        HEAD + "parameters:\n  app:\n    token: 42\n",
        "42", ("'token'", "'app'", "(type string)")),
    "boolean-for-integer": Invalid(
        HEAD + "parameters:\n  app:\n    token: t\n    port: true\n",
        "true", ("'port'", "'app'", "(type integer)")),
    "string-for-boolean": Invalid(
        HEAD + "parameters:\n  app:\n    token: t\n    verbose: \"yes\"\n",
        '"yes"', ("'verbose'", "'app'", "(type boolean)")),
    "numbers-in-list": Invalid(
        HEAD + "parameters:\n  app:\n    token: t\n    args: [1, 2]\n",
        "[1, 2]", ("'args'", "'app'", "(type list)")),
    "value-outside-choices": Invalid(
        HEAD + "parameters:\n  app:\n    token: t\n    level: trace\n",
        "trace", ("'level'", "'app'", "(type string)", "'trace' is not one of")),
    "unknown-parameter": Invalid(
        HEAD + "parameters:\n  app:\n    token: t\n    verbos: true\n",
        "verbos", ("'verbos'", "'app'", "did you mean 'verbose'", "verbose (boolean)")),
    "unselected-component": Invalid(
        HEAD + "parameters:\n  app:\n    token: t\n  getty:\n    insecure: true\n",
        "getty", ("'getty'", "not selected")),
    "missing-required": Invalid(
        HEAD + "parameters:\n  app:\n    port: 8081\n",
        "port: 8081", ("'token'", "'app'", "(type string)", "parameters.app.token")),
}


@pytest.fixture(scope="module")
def valid_build(tmp_path_factory, moby) -> Path:
    """Compose the project with a value for every parameter and return the build folder."""
    project = write_project(tmp_path_factory.mktemp("valid") / "project", VALID, ["app"])
    result = moby("compose", project, "-o", project / "build", cwd=project.parent)
    assert result.returncode == 0, explain(result)
    return project / "build"


@pytest.fixture(scope="module")
def invalid_runs(tmp_path_factory, valid_build, run_all) -> dict:
    """Compose every invalid assembly into a copy of a valid build and return folders and results."""
    root = tmp_path_factory.mktemp("invalid")
    calls, folders = [], []
    for case, invalid in INVALID.items():
        project = write_project(root / case, invalid.assembly, ["app"])
        shutil.copytree(valid_build, project / "build")
        calls.append((("compose", ".", "-o", "build"), project))
        folders.append(project)
    return {case: (folder, result) for case, folder, result in zip(INVALID, folders, run_all(calls), strict=True)}


def service(build: Path, name: str) -> dict:
    config = read_yaml(build / "linuxkit.yml")
    return next(entry for entry in config["services"] if entry["name"] == name)


def test_values_fill_command(valid_build):
    assert service(valid_build, "app")["command"] == [
        "/bin/app", "--port=9000", "--one", "--two words", "--verbose=true", "--level", "debug"]


def test_values_fill_environment(valid_build):
    assert service(valid_build, "app")["env"] == [
        "GREETING=hi there", "SAMPLE=0.25", "LITERAL=${greeting}", "ARGS=--one --two words"]


def test_values_fill_files(valid_build):
    files = read_yaml(valid_build / "linuxkit.yml")["files"]

    assert {"path": "etc/app/token", "contents": "s3cret", "mode": "0600"} in files


def test_defaults_fill_unset_parameters(tmp_path, moby):
    project = write_project(tmp_path / "project", MINIMAL, ["app"])

    result = moby("compose", ".", "-o", "build", cwd=project)

    app = service(project / "build", "app")
    assert result.returncode == 0, explain(result)
    assert app["command"] == ["/bin/app", "--port=8080", "--verbose=false", "--level", "info"]
    assert app["env"] == ["GREETING=hello", "SAMPLE=0.5", "LITERAL=${greeting}", "ARGS="]


@pytest.mark.parametrize("case", INVALID)
def test_invalid_parameter_exits_2(invalid_runs, case):
    _, result = invalid_runs[case]

    assert result.returncode == 2, explain(result)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", INVALID)
def test_invalid_parameter_points_at_assembly(invalid_runs, case):
    _, result = invalid_runs[case]
    invalid = INVALID[case]
    # The marker's last occurrence is the mistake, because earlier ones are requirements. A
    # missing value is reported at the start of the component's mapping of values.
    count = invalid.assembly.count(invalid.marker)
    line, column = position_of(invalid.assembly, invalid.marker, count)

    assert f"assembly.yml:{line}:{column}:" in result.stderr


@pytest.mark.parametrize("case", INVALID)
def test_invalid_parameter_message_names_parts(invalid_runs, case):
    _, result = invalid_runs[case]

    for fragment in INVALID[case].fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize("case", INVALID)
def test_invalid_parameter_writes_nothing(invalid_runs, valid_build, case):
    project, _ = invalid_runs[case]

    assert not (project / "assembly.lock").exists()
    for name in ("linuxkit.yml", "plan.json", "assembly.lock"):
        assert (project / "build" / name).read_bytes() == (valid_build / name).read_bytes()
    assert sorted(p.name for p in project.iterdir()) == ["assembly.yml", "build", "components"]


def test_missing_required_without_parameters_section(tmp_path, moby):
    project = write_project(tmp_path / "project", HEAD, ["app"])

    result = moby("compose", ".", "-o", "build", cwd=project)

    line, _ = position_of(HEAD, "- app")
    assert result.returncode == 2, explain(result)
    assert f"assembly.yml:{line}:" in result.stderr
    assert "parameter 'token' (type string)" in result.stderr
    assert not (project / "build").exists()


def test_every_problem_reported_at_once(tmp_path, moby):
    assembly = HEAD + "parameters:\n  app:\n    port: \"80\"\n    level: trace\n    verbos: true\n"
    project = write_project(tmp_path / "project", assembly, ["app"])

    result = moby("compose", ".", "-o", "build", cwd=project)

    assert result.returncode == 2, explain(result)
    for marker in ('"80"', "trace", "verbos"):
        line, column = position_of(assembly, marker, assembly.count(marker))
        assert f"assembly.yml:{line}:{column}:" in result.stderr, marker
    assert "parameters.app.token" in result.stderr
    assert not (project / "build").exists()
