"""An assembly's `config` for a component merges into the component's config as LinuxKit merges.

LinuxKit (linuxkit/linuxkit src/cmd/linuxkit/moby/config.go@07e258c, functions
ConfigToOCI and assignRuntime) combines an entry with its image label field by field:
a field the entry sets replaces the label's. `binds.add` and `capabilities.add` extend
the label's `binds` and `capabilities`, but only when the entry itself has no `binds`
or `capabilities`, which would win outright. `runtime` is merged key by key (cgroups,
mounts, mkdir, interfaces, namespace and each bindNS path). These tests expect the
same rules between a component's config and the assembly's override.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moby_asm.linuxkit import check_config

from .helpers import explain, position_of, read_yaml, write_project

ASSEMBLY = """\
name: overrides
requires:
  - kernel ^6.6
  - init ^1.2
  - runc
  - containerd
  - web
  - docker ^27
  - redis ^7
config:
  web:
    command: ["/bin/web", "--port", "8080"]
    env: ["MODE=staging", "LOG=debug"]
    binds.add: ["/var/log/web:/var/log/web"]
    capabilities.add: [CAP_SYS_ADMIN]
    runtime:
      cgroups: [web]
  docker:
    binds.add: ["/var/lib/extra:/var/lib/extra"]
  redis:
    capabilities.add: [CAP_SYS_RESOURCE]
"""

DOCKER_BINDS = [
    "/etc/resolv.conf:/etc/resolv.conf",
    "/var/lib/docker:/var/lib/docker",
    "/lib/modules:/lib/modules",
    "/etc/docker/daemon.json:/etc/docker/daemon.json",
    "/var/run:/var/run",
]
REDIS_CAPABILITIES = ["CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE"]


@pytest.fixture(scope="module")
def services(tmp_path_factory, moby) -> dict[str, dict]:
    """Compose the override assembly once and return the rendered services by name."""
    project = write_project(tmp_path_factory.mktemp("overrides") / "project", ASSEMBLY, ["web"])
    result = moby("compose", ".", "-o", "build", cwd=project)
    assert result.returncode == 0, explain(result)
    config = read_yaml(project / "build" / "linuxkit.yml")
    assert check_config(config) == []
    return {entry["name"]: entry for entry in config["services"]}


def effective(entry: dict, field: str) -> list[str]:
    """Return the list LinuxKit uses for `binds` or `capabilities` of an entry whose image has no label."""
    if field in entry:
        return entry[field]
    return entry.get(f"{field}.add", [])


def test_set_field_replaces_component_value(services):
    web = services["web"]

    assert web["command"] == ["/bin/web", "--port", "8080"]
    assert web["env"] == ["MODE=staging", "LOG=debug"]


def test_unset_field_keeps_component_value(services):
    assert services["web"]["net"] == "host"


def test_binds_add_extends_component_list(services):
    assert services["web"]["binds.add"] == ["/etc/web:/etc/web:ro", "/var/log/web:/var/log/web"]
    assert "binds" not in services["web"]


def test_capabilities_add_extends_component_list(services):
    assert services["web"]["capabilities.add"] == ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]
    assert "capabilities" not in services["web"]


def test_component_without_override_unchanged(services):
    docker = services["docker"]

    assert docker["command"][:3] == ["/usr/local/bin/docker-init", "--", "/usr/local/bin/dockerd"]
    assert docker["runtime"] == {"mkdir": ["/var/lib/docker"]}


def test_binds_add_extends_component_binds(services):
    assert effective(services["docker"], "binds") == DOCKER_BINDS + ["/var/lib/extra:/var/lib/extra"]


def test_capabilities_add_extends_component_capabilities(services):
    assert effective(services["redis"], "capabilities") == REDIS_CAPABILITIES + ["CAP_SYS_RESOURCE"]


def test_runtime_merges_key_by_key(services):
    assert services["web"]["runtime"] == {"mkdir": ["/var/lib/web"], "bindNS": {"net": "/run/netns/web"},
                                          "cgroups": ["web"]}


def test_config_for_unselected_component_rejected(tmp_path, moby):
    assembly = ASSEMBLY + "  nginx:\n    net: host\n"
    project = write_project(tmp_path / "project", assembly, ["web"])

    result = moby("compose", ".", "-o", "build", cwd=project)

    line, column = position_of(assembly, "nginx")
    assert result.returncode == 2, explain(result)
    assert f"assembly.yml:{line}:{column}:" in result.stderr
    assert not Path(project / "build").exists()
