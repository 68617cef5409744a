"""Publish a template, create a project from it with `new oci://...`, and build that project, all on 127.0.0.1."""

from __future__ import annotations

import json
import shutil

import yaml

from moby_asm.build.runner import image_references
from moby_asm.shipped import shipped_folder
from tests.build.fixture_images import StandInImages
from tests.build.test_build_end_to_end import make_kernel_image


def test_published_template_creates_a_project_that_builds(cli, registry, tmp_path):
    template = tmp_path / "minimal-node"
    shutil.copytree(shipped_folder("templates") / "minimal-node", template)
    questions = json.loads((template / "cookiecutter.json").read_text())
    questions["_moby_asm"] = {**questions.get("_moby_asm", {}), "version": "1.0.0"}
    (template / "cookiecutter.json").write_text(json.dumps(questions))
    reference = f"oci://{registry.host}/templates/minimal-node:1.0.0"

    published = cli("publish", "template", template, reference, "--json", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    digest = json.loads(published.stdout)["digest"]
    created = cli("new", reference, "--no-input", "-x", "project_name=edge", "-o", tmp_path / "edge", "--json",
                  cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    record = json.loads((tmp_path / "edge" / ".moby-asm" / "template.json").read_text())
    assert (record["kind"], record["template"], record["digest"]) == ("oci", reference, digest)

    composed = cli("compose", tmp_path / "edge", "-o", tmp_path / "composed", cwd=tmp_path)
    assert composed.returncode == 0, composed.stderr
    config = yaml.safe_load((tmp_path / "composed" / "linuxkit.yml").read_text())
    StandInImages(registry.url, make_kernel_image(registry.url)).provide(
        image_references(config), kernel_references=[config["kernel"]["image"]])
    built = cli("build", tmp_path / "edge", "--mirror", f"docker.io={registry.host}", "--cache", tmp_path / "store",
                "--json", cwd=tmp_path, env={"MOBY_ASM_CONFIG": str(tmp_path / "no-config.yml")})

    assert built.returncode == 0, built.stderr
    outputs = json.loads(built.stdout)["outputs"]
    assert [output["format"] for output in outputs] == ["kernel+initrd"] * len(outputs)
    assert (tmp_path / "edge" / "dist" / "edge-initrd.img").stat().st_size > 0
