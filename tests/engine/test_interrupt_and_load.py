"""Ctrl-C during a real engine build, and the docker builder loading a platform into the engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import docker
import pytest

from tests.builders.test_linuxkit_builder import fake_bin, recorded_arguments  # noqa: F401 (fixture)
from tests.engine.test_context_builds import build, make_project, report

WAIT_SECONDS = 60


def wait_for(condition, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_ctrl_c_keeps_previous_outputs(cli, docker_engine, tmp_path):
    project = make_project(tmp_path / "project")
    cache = tmp_path / "store"
    report(build(cli, project, docker_engine, "--cache", cache))
    outputs_before = {path.name: path.read_bytes() for path in (project / "dist").iterdir()}
    build_folder_before = {path.name: path.read_bytes() for path in (project / "build").iterdir()}
    with open(project / "components" / "hello" / "Dockerfile", "a") as dockerfile:
        dockerfile.write('RUN ["/bin/sleep", "120"]\n')
    engine = docker.DockerClient(base_url=docker_engine, version="auto")
    environment = {**os.environ, "DOCKER_HOST": docker_engine, "NO_COLOR": "1"}
    running = subprocess.Popen([sys.executable, "-m", "moby_asm", "build", ".", "--cache", str(cache)],
                               cwd=project, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: engine.containers.list(), "the sleeping RUN step to start")
        running.send_signal(signal.SIGINT)
        stderr = running.communicate(timeout=30)[1]
    finally:
        running.kill()

    assert running.returncode == 130, stderr
    assert "build interrupted" in stderr
    assert {path.name: path.read_bytes() for path in (project / "dist").iterdir()} == outputs_before
    assert {path.name: path.read_bytes() for path in (project / "build").iterdir()} == build_folder_before
    assert not [path for path in cache.rglob("*") if path.name.startswith((".tmp", ".staging-"))]
    wait_for(lambda: not engine.containers.list(all=True), "the engine to remove the cancelled build container")


def test_docker_builder_loads_the_platform_into_the_engine(cli, docker_engine, tmp_path):
    project = make_project(tmp_path / "project")

    result = report(build(cli, project, docker_engine, "--cache", tmp_path / "store", "--builder", "docker",
                          "--format", "docker"))

    [output] = result["outputs"]
    assert output["format"] == "docker"
    tag, _, image_id = output["image"].partition("@")
    assert tag == "built:1.0.0"
    image = docker.DockerClient(base_url=docker_engine, version="auto").images.get(tag)
    assert image.id == image_id
    assert image.attrs["Config"]["Entrypoint"] == ["/bin/rc.init"]
    files = image.attrs["RootFS"]["Layers"]
    assert len(files) == 1
    exported = _export_paths(docker_engine, tag)
    assert "containers/onboot/000-hello/lower/greeting" in exported


def _export_paths(engine_url: str, tag: str) -> set[str]:
    import io
    import tarfile

    client = docker.DockerClient(base_url=engine_url, version="auto")
    container = client.containers.create(tag, network_mode="none")
    try:
        data = b"".join(container.export())
    finally:
        container.remove()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return set(archive.getnames())


def test_docker_builder_refuses_other_formats(cli, tmp_path):
    project = make_project(tmp_path / "project")

    result = cli("build", ".", "--builder", "docker", "--format", "tar", cwd=project)

    assert result.returncode == 2
    assert "the docker builder makes only the docker format" in result.stderr
    assert not (project / "dist").exists()


def test_linuxkit_builder_finds_local_images_in_the_engine(cli, docker_engine, tmp_path, fake_bin):  # noqa: F811
    project = make_project(tmp_path / "project")
    cache = tmp_path / "store"
    [built] = report(build(cli, project, docker_engine, "--cache", cache))["built"]
    engine = docker.DockerClient(base_url=docker_engine, version="auto")
    engine.images.remove(built["image"], force=True)

    result = report(build(cli, project, docker_engine, "--cache", cache, "--format", "iso-bios"))

    assert [output["format"] for output in result["outputs"]] == ["iso-bios"]
    assert built["image"] in engine.images.get(built["image"]).tags
    [arguments] = recorded_arguments(tmp_path)
    assert "--docker" in arguments
