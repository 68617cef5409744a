"""Component images built from Docker build contexts by a real Docker Engine.

Each test builds a project whose only component is a busybox image made FROM scratch
from the host's static busybox, so no base image is pulled from anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from fixtures_engine import busybox_context
from fixtures_registry import manifest_digest, run_registry, skip_unless_tools

MISSING_ENGINE = "unix:///nonexistent/docker.sock"


def make_project(folder: Path, extra_steps: str = "") -> Path:
    components = folder / "components"
    busybox_context(components / "hello", ["/bin/cat", "/greeting"],
                    'RUN ["/bin/sh", "-c", "echo hello from the engine > /greeting"]\n' + extra_steps)
    (components / "hello.yml").write_text(
        "name: hello\nversions:\n  - version: 1.0.0\n    stage: onboot\n"
        "    source:\n      build:\n        context: hello\n")
    (folder / "assembly.yml").write_text("name: built\nversion: 1.0.0\nrequires: [hello]\noutputs: [tar]\n")
    return folder


def build(cli, project: Path, engine: str, *args):
    env = {"DOCKER_HOST": engine, "MOBY_ASM_CONFIG": str(project / "no-config.yml")}
    return cli("build", ".", "--json", "--build-network", "none", *args, cwd=project, env=env)


def report(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def greeting(tar_path: Path) -> bytes:
    with tarfile.open(tar_path) as archive:
        return archive.extractfile("containers/onboot/000-hello/lower/greeting").read()


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "project")


def test_built_image_in_tar_and_lock(cli, docker_engine, project, tmp_path):
    cache = tmp_path / "store"

    first = report(build(cli, project, docker_engine, "--cache", cache))

    [built] = first["built"]
    assert (built["component"], built["how"]) == ("hello", "built")
    assert built["image"].startswith("moby-asm.local/hello:")
    assert greeting(project / "dist" / "built.tar") == b"hello from the engine\n"
    lock = yaml.safe_load((project / "build" / "assembly.lock").read_text())
    [component] = lock["components"]
    assert component["source"]["digest"] == built["digest"]
    plan = json.loads((project / "build" / "plan.json").read_text())
    [step] = [step for step in plan["steps"] if step["kind"] == "build-image"]
    assert step["result"] == {"image": built["image"], "digest": built["digest"]}


def test_unchanged_context_is_not_rebuilt(cli, docker_engine, project, tmp_path):
    cache = tmp_path / "store"
    first = report(build(cli, project, docker_engine, "--cache", cache))

    # No engine responds here, so the second build can only succeed from the cache.
    second = report(build(cli, project, MISSING_ENGINE, "--cache", cache))

    assert second["built"][0]["how"] == "cached"
    assert second["built"][0]["digest"] == first["built"][0]["digest"]
    assert second["outputs"][0]["digest"] == first["outputs"][0]["digest"]


def test_changed_context_is_rebuilt_under_a_new_tag(cli, docker_engine, project, tmp_path):
    cache = tmp_path / "store"
    first = report(build(cli, project, docker_engine, "--cache", cache))
    (project / "components" / "hello" / "extra.txt").write_text("new file\n")

    second = report(build(cli, project, docker_engine, "--cache", cache))

    assert second["built"][0]["how"] == "built"
    assert second["built"][0]["image"] != first["built"][0]["image"]


def test_fresh_cache_finds_pushed_image(cli, docker_engine, project, tmp_path):
    skip_unless_tools()
    registry = run_registry(tmp_path / "registry")
    try:
        first = report(build(cli, project, docker_engine, "--cache", tmp_path / "a", "--registry",
                             f"{registry.host}/platform"))
        [built] = first["built"]
        repository, _, tag = built["image"].removeprefix(f"{registry.host}/").rpartition(":")
        assert manifest_digest(registry.url, repository, tag) == built["digest"]
        config = yaml.safe_load((project / "build" / "linuxkit.yml").read_text())
        assert config["onboot"][0]["image"] == f"{built['image']}@{built['digest']}"

        second = report(build(cli, project, MISSING_ENGINE, "--cache", tmp_path / "b", "--registry",
                              f"{registry.host}/platform"))
    finally:
        registry.stop()

    assert second["built"][0]["how"] == "pulled"
    assert second["built"][0]["digest"] == built["digest"]
    assert second["outputs"][0]["digest"] == first["outputs"][0]["digest"]


def test_failed_build_keeps_outputs(cli, docker_engine, project, tmp_path):
    cache = tmp_path / "store"
    report(build(cli, project, docker_engine, "--cache", cache))
    before = {path.name: path.read_bytes() for path in (project / "dist").iterdir()}
    lock_before = (project / "build" / "assembly.lock").read_bytes()
    with open(project / "components" / "hello" / "Dockerfile", "a") as dockerfile:
        dockerfile.write('RUN ["/bin/sh", "-c", "echo the step says why >&2; exit 7"]\n')

    result = build(cli, project, docker_engine, "--cache", cache)

    assert result.returncode == 1
    assert "component 'hello': docker build of " in result.stderr
    assert "hello/Dockerfile failed" in result.stderr
    assert "returned a non-zero code: 7" in result.stderr
    assert "the step says why" in result.stderr
    assert {path.name: path.read_bytes() for path in (project / "dist").iterdir()} == before
    assert (project / "build" / "assembly.lock").read_bytes() == lock_before


def test_engine_not_running_is_explained(cli, project, tmp_path):
    result = build(cli, project, MISSING_ENGINE, "--cache", tmp_path / "store")

    assert result.returncode == 1
    assert "cannot reach the Docker Engine at unix:///nonexistent/docker.sock" in result.stderr
    assert "start dockerd" in result.stderr
    assert not (project / "dist").exists()


def test_push_refused_names_component_and_reference(cli, docker_engine, project, tmp_path):
    skip_unless_tools()
    registry = run_registry(tmp_path / "registry", read_only=True)
    try:
        result = build(cli, project, docker_engine, "--cache", tmp_path / "store", "--registry", registry.host)
    finally:
        registry.stop()

    assert result.returncode == 1
    assert f"component 'hello': pushing {registry.host}/hello:" in result.stderr
    assert not (project / "dist").exists()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_permission_denied_on_the_socket_is_explained(project, tmp_path):
    # Without CAP_DAC_OVERRIDE even root may not enter a folder of mode 000, so opening
    # the socket inside it fails with EACCES, as it does for a user outside the docker group.
    denied = tmp_path / "denied"
    denied.mkdir(mode=0)
    environment = {**os.environ, "DOCKER_HOST": f"unix://{denied}/docker.sock", "NO_COLOR": "1",
                   "MOBY_ASM_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m",
                             "moby_asm", "build", "."], cwd=project, env=environment, capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 1, result.stderr
    assert "permission denied" in result.stderr
    assert "'docker' group" in result.stderr


def test_project_lock_records_new_digest_only_when_current(cli, docker_engine, project, tmp_path):
    cache = tmp_path / "store"
    assert cli("lock", ".", cwd=project).returncode == 0
    (project / "components" / "hello" / "note.txt").write_text("changes the context\n")

    built = report(build(cli, project, docker_engine, "--cache", cache))["built"][0]

    lock = yaml.safe_load((project / "assembly.lock").read_text())
    assert lock["components"][0]["source"]["image"] == built["image"]
    assert cli("lock", "--check", ".", cwd=project).returncode == 0
    (project / "assembly.yml").write_text((project / "assembly.yml").read_text() + "description: changed\n")
    lock_before = (project / "assembly.lock").read_bytes()
    (project / "components" / "hello" / "note.txt").write_text("changes it again\n")
    report(build(cli, project, docker_engine, "--cache", cache))
    assert (project / "assembly.lock").read_bytes() == lock_before


def context_image(cli, project: Path) -> str:
    result = cli("build", ".", "--dry-run", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    [reference] = json.loads(result.stdout)["contextImages"]
    return reference


def test_context_tag_covers_modes_links_and_folders(cli, project):
    context = project / "components" / "hello"
    tags = [context_image(cli, project)]
    (context / "busybox").chmod(0o700)
    tags.append(context_image(cli, project))
    (context / "empty").mkdir()
    tags.append(context_image(cli, project))
    (context / "link").symlink_to("busybox")
    tags.append(context_image(cli, project))
    (context / "link").unlink()
    (context / "link").symlink_to("Dockerfile")
    tags.append(context_image(cli, project))

    assert len(set(tags)) == len(tags)


def test_registry_down_names_the_component(cli, docker_engine, project, tmp_path):
    result = build(cli, project, docker_engine, "--cache", tmp_path / "store", "--registry", "127.0.0.1:9/platform")

    assert result.returncode == 1
    assert "component 'hello': looking up 127.0.0.1:9/platform/hello:" in result.stderr
    assert not (project / "dist").exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--registry", "127.0.0.1:99999/platform", "--registry: invalid registry '127.0.0.1:99999/platform'"),
    ("--registry", "-x", "--registry: invalid registry '-x'"),
    ("--engine", "foo://bar", "invalid Docker Engine address 'foo://bar' (from --engine)"),
    ("--engine", "/tmp/docker.sock", "invalid Docker Engine address '/tmp/docker.sock' (from --engine)"),
])
def test_invalid_option_values_exit_2(cli, project, tmp_path, option, value, message):
    result = cli("build", ".", "--cache", tmp_path / "store", option, value, cwd=project)

    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (project / "dist").exists()
