"""Deploys on a real single-node swarm: dockerd on a unix socket, swarm on 127.0.0.1, host networking."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import docker
import pytest
import yaml
from fixtures_engine import tag_busybox_base
from fixtures_registry import free_port

IMAGE = "moby-asm-test/busybox:1"
OTHER_IMAGE = "moby-asm-test/busybox:2"


@pytest.fixture(scope="module")
def swarm(docker_engine, tmp_path_factory) -> str:
    """The test engine as a swarm manager without the ingress network, holding two busybox images."""
    client = docker.DockerClient(base_url=docker_engine, version="auto")
    if client.info()["Swarm"]["LocalNodeState"] != "active":
        port = free_port()
        client.swarm.init(advertise_addr=f"127.0.0.1:{port}", listen_addr=f"127.0.0.1:{port}")
    for network in client.networks.list(names=["ingress"]):
        network.remove()
    tag_busybox_base(docker_engine, IMAGE, tmp_path_factory.mktemp("image-1"))
    tag_busybox_base(docker_engine, OTHER_IMAGE, tmp_path_factory.mktemp("image-2"))
    return docker_engine


def write_assembly(folder: Path, command: str = "cat /greeting; sleep 3600", image: str = IMAGE,
                   secret: str = "secret.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "greeting.txt").write_text("hello from a config\n")
    (folder / "secret.txt").write_text("s3cret\n")
    (folder / "assembly.yml").write_text(yaml.safe_dump({
        "name": folder.name, "requires": ["kernel", "init"],
        "services": {"web": {
            "image": image, "command": ["/bin/sh", "-c", command], "networks": ["host"],
            "configs": {"greeting": {"file": "greeting.txt", "target": "/greeting"}},
            "secrets": {"token": {"file": secret}},
            "update": {"parallelism": 1, "delay": "1s"},
        }},
    }))
    return folder


def deploy(cli, folder: Path, engine: str, *args):
    return cli("deploy", folder, "--engine", engine, "--json", "--timeout", "60", *args, cwd=folder)


def actions(result) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return {change["name"]: change["action"] for change in report["changes"]}


def test_deploy_update_redeploy_and_undeploy(cli, swarm, tmp_path):
    folder = write_assembly(tmp_path / "shop")
    client = docker.DockerClient(base_url=swarm, version="auto")

    created = deploy(cli, folder, swarm)
    again = deploy(cli, folder, swarm)
    write_assembly(folder, image=OTHER_IMAGE)
    updated = deploy(cli, folder, swarm)
    removed = cli("undeploy", folder, "--engine", swarm, "--json", cwd=folder)

    assert actions(created)["shop_web"] == "create"
    [state] = json.loads(created.stdout)["services"]
    assert (state["name"], state["replicas"], state["running"], state["errors"]) == ("web", 1, 1, [])
    assert set(actions(again).values()) == {"unchanged"}
    assert actions(updated)["shop_web"] == "update"
    assert json.loads(updated.stdout)["services"][0]["running"] == 1
    assert removed.returncode == 0, removed.stderr
    assert sorted(change["kind"] for change in json.loads(removed.stdout)) == ["config", "secret", "service"]
    assert client.services.list(filters={"label": "com.moby-asm.assembly=shop"}) == []
    assert client.configs.list(filters={"label": "com.moby-asm.assembly=shop"}) == []


def test_failing_service_reports_its_task_error(cli, swarm, tmp_path):
    folder = write_assembly(tmp_path / "broken", command="echo starting; exit 3")
    try:
        result = deploy(cli, folder, swarm)
    finally:
        cli("undeploy", folder, "--engine", swarm, cwd=folder)

    assert result.returncode == 1
    assert "service web: 0 of 1 running" in result.stderr
    assert "exit (3)" in result.stderr


def test_tcp_and_udp_same_port_published(cli, swarm, tmp_path):
    folder = write_assembly(tmp_path / "ports")
    data = yaml.safe_load((folder / "assembly.yml").read_text())
    data["services"]["web"]["ports"] = [{"target": 5353, "protocol": "tcp"}, {"target": 5353, "protocol": "udp"}]
    (folder / "assembly.yml").write_text(yaml.safe_dump(data))
    client = docker.DockerClient(base_url=swarm, version="auto")
    try:
        result = deploy(cli, folder, swarm)
        ports = client.services.get("ports_web").attrs["Spec"]["EndpointSpec"]["Ports"]
    finally:
        cli("undeploy", folder, "--engine", swarm, cwd=folder)

    assert result.returncode == 0, result.stderr
    assert sorted(port["Protocol"] for port in ports) == ["tcp", "udp"]


def test_unmet_placement_names_the_scheduler_reason(cli, swarm, tmp_path):
    folder = write_assembly(tmp_path / "placed")
    data = yaml.safe_load((folder / "assembly.yml").read_text())
    data["services"]["web"]["placement"] = {"constraints": ["node.role == worker"]}
    (folder / "assembly.yml").write_text(yaml.safe_dump(data))
    try:
        result = cli("deploy", folder, "--engine", swarm, "--timeout", "8", cwd=folder)
    finally:
        cli("undeploy", folder, "--engine", swarm, cwd=folder)

    assert result.returncode == 1
    assert "not running after 8 s (no suitable node" in result.stderr


def test_missing_secret_file_changes_nothing(cli, swarm, tmp_path):
    folder = write_assembly(tmp_path / "nosecret", secret="missing.txt")
    client = docker.DockerClient(base_url=swarm, version="auto")

    result = deploy(cli, folder, swarm)

    assert result.returncode == 2
    assert "missing.txt" in result.stderr
    assert client.services.list(filters={"label": "com.moby-asm.assembly=nosecret"}) == []
    assert client.configs.list(filters={"label": "com.moby-asm.assembly=nosecret"}) == []


def test_unreachable_engine_is_explained(cli, tmp_path):
    folder = write_assembly(tmp_path / "away")

    result = deploy(cli, folder, "unix:///nonexistent/docker.sock")

    assert result.returncode == 1
    assert "cannot reach the Docker Engine" in result.stderr


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker command")
def test_rendered_stack_file_deploys_with_docker_stack(cli, swarm, tmp_path):
    folder = write_assembly(tmp_path / "stacked")
    composed = cli("compose", folder, "-o", tmp_path / "build", cwd=folder)
    assert composed.returncode == 0, composed.stderr
    stack = tmp_path / "build" / "stack.yml"
    command = ["docker", "-H", swarm, "stack", "deploy", "-c", str(stack), "stacked"]

    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    client = docker.DockerClient(base_url=swarm, version="auto")
    names = [service.name for service in client.services.list(filters={"label": "com.docker.stack.namespace=stacked"})]
    subprocess.run(["docker", "-H", swarm, "stack", "rm", "stacked"], capture_output=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert names == ["stacked_web"]


def test_engine_outside_swarm_mode_is_refused(cli, swarm, tmp_path):
    # Runs last in this module: it takes the test engine out of swarm mode.
    folder = write_assembly(tmp_path / "noswarm")
    client = docker.DockerClient(base_url=swarm, version="auto")
    client.swarm.leave(force=True)

    result = deploy(cli, folder, swarm)

    assert result.returncode == 1
    assert "not a swarm manager (state 'inactive')" in result.stderr
    assert client.containers.list(all=True, filters={"label": "com.moby-asm.assembly=noswarm"}) == []
