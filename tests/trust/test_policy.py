"""Trust policies: lock, build, new and pull refuse what is not signed by the keys a rule names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from fixtures_registry import make_busybox_image

from moby_asm.shipped import shipped_folder
from tests.trust.conftest import make_key_pair


def write_project(folder: Path, image: str, public_key: Path) -> Path:
    components = folder / "components"
    components.mkdir(parents=True)
    (components / "app.yml").write_text(
        f"name: app\nversions:\n  - version: 1.0.0\n    stage: service\n    source:\n      image: {image}\n")
    shutil.copy(public_key, folder / "team.pub")
    repository = image.rpartition(":")[0]
    (folder / "assembly.yml").write_text(
        f"name: signed\nrequires: [app]\noutputs: [tar]\n"
        f"trust:\n  images:\n    - match: \"{repository}\"\n      keys: [team.pub]\n")
    return folder


@pytest.fixture
def signed_setup(registry, tmp_path):
    image = make_busybox_image(registry.url, f"team/app-{tmp_path.name[-12:].lower().replace('_', '-')}", "1")
    team, other = make_key_pair(tmp_path / "keys", "team"), make_key_pair(tmp_path / "keys", "other")
    return image, team, other, write_project(tmp_path / "project", image, team.public_path)


def sign(cli, reference: str, key: Path, cwd: Path) -> None:
    result = cli("sign", reference, "--key", key, cwd=cwd)
    assert result.returncode == 0, result.stderr


def test_build_refuses_an_unsigned_image(cli, signed_setup, tmp_path):
    image, team, _, project = signed_setup

    result = cli("build", project, "--cache", tmp_path / "store", cwd=tmp_path)

    assert result.returncode == 1
    assert image in result.stderr
    assert "team.pub" in result.stderr
    assert "not signed" in result.stderr or "no signature" in result.stderr
    assert not (project / "dist").exists()


def test_build_accepts_the_right_key_only(cli, signed_setup, tmp_path):
    image, team, other, project = signed_setup
    sign(cli, image, other.private_path, tmp_path)

    refused = cli("build", project, "--cache", tmp_path / "store", cwd=tmp_path)
    sign(cli, image, team.private_path, tmp_path)
    accepted = cli("build", project, "--cache", tmp_path / "store", "--json", cwd=tmp_path)

    assert refused.returncode == 1
    assert team.key_id in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    [(reference, key_ids)] = json.loads(accepted.stdout)["verified"].items()
    assert reference.startswith(f"{image}@sha256:")
    assert key_ids == [team.key_id]


def test_lock_checks_and_pins_signed_images(cli, signed_setup, tmp_path):
    image, team, _, project = signed_setup

    unsigned = cli("lock", project, cwd=tmp_path)
    sign(cli, image, team.private_path, tmp_path)
    signed = cli("lock", project, cwd=tmp_path)
    offline = cli("lock", project, "--offline", cwd=tmp_path)

    assert unsigned.returncode == 1
    assert image in unsigned.stderr
    assert signed.returncode == 0, signed.stderr
    source = yaml.safe_load((project / "assembly.lock").read_text())["components"][0]["source"]
    assert source["digest"].startswith("sha256:")
    assert offline.returncode == 1
    assert "--offline" in offline.stderr


def test_new_and_pull_follow_the_user_template_rules(cli, registry, tmp_path):
    team = make_key_pair(tmp_path / "keys", "team")
    template = tmp_path / "template"
    shutil.copytree(shipped_folder("templates") / "minimal-node", template)
    reference = f"oci://{registry.host}/templates/node:1.0.0"
    assert cli("publish", "template", template, reference, cwd=tmp_path).returncode == 0
    config = tmp_path / "config.yml"
    config.write_text(f"trust:\n  templates:\n    - match: \"{registry.host}/templates/*\"\n"
                      f"      keys: [{team.public_path}]\n")
    environment = {"MOBY_ASM_CONFIG": str(config)}

    refused_new = cli("new", reference, "--no-input", "-o", tmp_path / "a", cwd=tmp_path, env=environment)
    refused_pull = cli("pull", reference, "-o", tmp_path / "b", cwd=tmp_path, env=environment)
    sign(cli, reference, team.private_path, tmp_path)
    accepted = cli("new", reference, "--no-input", "-o", tmp_path / "c", cwd=tmp_path, env=environment)

    assert refused_new.returncode == 1
    assert "templates/node" in refused_new.stderr
    assert not (tmp_path / "a").exists()
    assert refused_pull.returncode == 1
    assert not (tmp_path / "b").exists()
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "c" / "assembly.yml").is_file()


@pytest.mark.parametrize(("pattern", "reference", "covered"), [
    ("linuxkit/*", "linuxkit/sshd:v1.0", True),
    ("docker.io/linuxkit/*", "linuxkit/sshd:v1.0", True),
    ("redis", "redis:7", True),
    ("library/redis", "redis:7", True),
    ("docker.io/redis", "redis:7", True),
    ("oci://127.0.0.1:5000/templates/*", "127.0.0.1:5000/templates/node:1", True),
    ("127.0.0.1:5000/team/*", "127.0.0.1:5000/other/app:1", False),
    ("*", "anything/at:all", True),
])
def test_patterns_are_spelled_like_references(pattern, reference, covered):
    from moby_asm.trust.policy import Policy, Rule

    policy = Policy(images=(Rule(pattern, (Path("k.pub"),), Path("assembly.yml")),))

    assert bool(policy.rules_for("images", reference)) is covered


@pytest.mark.parametrize("pattern", ["docker.io/linuxkit/sshd:v1.0", "Linuxkit/*", "", "redis@sha256:0"])
def test_patterns_with_tags_or_capitals_are_invalid(cli, tmp_path, pattern):
    (tmp_path / "assembly.yml").write_text(
        f"name: p\nrequires: [kernel]\ntrust:\n  images:\n    - match: \"{pattern}\"\n      keys: [k.pub]\n")

    result = cli("validate", tmp_path / "assembly.yml", cwd=tmp_path)

    assert result.returncode == 2
    assert "assembly.yml:5:" in result.stderr
    assert "invalid match" in result.stderr


def test_every_unsigned_image_is_listed(cli, registry, tmp_path):
    team = make_key_pair(tmp_path / "keys", "team")
    first = make_busybox_image(registry.url, "team/first", "1")
    second = make_busybox_image(registry.url, "team/second", "1")
    project = write_project(tmp_path / "project", first, team.public_path)
    (project / "components" / "more.yml").write_text(
        f"name: more\nversions:\n  - version: 1.0.0\n    stage: onboot\n    source:\n      image: {second}\n")
    text = (project / "assembly.yml").read_text()
    (project / "assembly.yml").write_text(text.replace("requires: [app]", "requires: [app, more]")
                                          .replace(f'match: "{first.rpartition(":")[0]}"', 'match: "*"'))

    result = cli("lock", project, cwd=tmp_path)

    assert result.returncode == 1
    assert first in result.stderr
    assert second in result.stderr
