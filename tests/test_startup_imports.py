"""Check that fast commands import none of docker, networkx, cookiecutter and oras.

Each command runs in a fresh interpreter through the same entry point as `moby-asm`.
Afterwards the script writes the names in `sys.modules` to a file that the test reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY_MODULES = ("docker", "networkx", "cookiecutter", "oras")

SCRIPT = """
import json, sys
{preamble}
output, sys.argv = sys.argv[1], ["moby-asm", *sys.argv[2:]]
from moby_asm.cli.main import run
try:
    run()
    code = 0
except SystemExit as stop:
    code = stop.code or 0
with open(output, "w") as handle:
    json.dump({{"code": code, "modules": sorted(sys.modules)}}, handle)
"""

DESCRIPTOR = """\
name: demo
versions:
  - version: 1.0.0
    stage: service
    source:
      image: linuxkit/getty:v1.0.0
"""


def imported_modules(tmp_path: Path, args: list[str], preamble: str = "") -> tuple[int, list[str]]:
    """Run the command in a new interpreter and return its exit code and the modules it imported."""
    output = tmp_path / "modules.json"
    command = [sys.executable, "-c", SCRIPT.format(preamble=preamble), str(output), *args]
    env = {key: value for key, value in os.environ.items() if key != "MOBY_ASM_CATALOG_PATH"}
    env["MOBY_ASM_CACHE_DIR"] = str(tmp_path / "cache")
    subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(output.read_text())
    return result["code"], result["modules"]


def heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in HEAVY_MODULES]


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "demo.yml").write_text(DESCRIPTOR)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["components", "--help"],
        ["components", "list"],
        ["components", "list", "--json"],
        ["validate", "components"],
    ],
    ids=" ".join,
)
def test_command_skips_heavy_imports(project, args):
    code, modules = imported_modules(project, args)

    assert code == 0
    assert "moby_asm.cli.main" in modules
    assert heavy(modules) == []


def test_heavy_import_detected(project):
    code, modules = imported_modules(project, ["--help"], preamble="import networkx")

    assert code == 0
    assert "networkx" in heavy(modules)
