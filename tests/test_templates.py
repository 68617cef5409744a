"""The shipped cookiecutter templates render projects that validate and compose."""

import json

import pytest
from cookiecutter.main import cookiecutter

from moby_asm.shipped import shipped_folder

TEMPLATE = shipped_folder("templates") / "minimal-node"
ANSWERS = [
    {},
    {"project_name": "edge-1", "console_login": "no console login", "authorized_key": "ssh-ed25519 AAAA admin@x"},
]


@pytest.mark.parametrize("answers", ANSWERS, ids=["defaults", "ssh-only"])
def test_minimal_node_composes(tmp_path, cli, answers):
    project = cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(tmp_path))

    validated = cli("validate", project, cwd=tmp_path)
    composed = cli("compose", project, "-o", tmp_path / "build", "--json", cwd=tmp_path)

    assert validated.returncode == 0, validated.stderr
    assert composed.returncode == 0, composed.stderr
    services = [item["name"] for item in json.loads(composed.stdout)["stages"]["service"]]
    assert ("getty" in services) == ("console_login" not in answers)
    assert ("sshd" in services) == ("authorized_key" in answers)
