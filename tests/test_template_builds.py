"""A project rendered from the app-appliance template builds, with its application image built by the engine.

The build runs as the example builds in tests/build/test_examples.py do: stand-ins for
the Docker Hub images are pushed to a registry on 127.0.0.1 that `--mirror` points at,
and the private Docker Engine has a busybox stand-in tagged as the base image.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import yaml
from cookiecutter.main import cookiecutter
from fixtures_engine import tag_busybox_base

from moby_asm.build.runner import image_references
from moby_asm.compose.render import LOCAL_IMAGE_PREFIX
from moby_asm.shipped import shipped_folder
from tests.build.fixture_images import StandInImages
from tests.build.test_build_end_to_end import make_kernel_image

APP_APPLIANCE = shipped_folder("templates") / "app-appliance"
ANSWERS = {"project_name": "shop-box", "app_name": "shop", "hostname": "shop-1", "port": "8081"}
BASE_IMAGE = "busybox:1.36"


def isolated_environment(root: Path) -> dict[str, str]:
    """Return variables that keep the user's moby-asm configuration and Docker credentials out of a build."""
    docker_config = root / "docker-config"
    docker_config.mkdir(exist_ok=True)
    return {"MOBY_ASM_CONFIG": str(root / "no-config.yml"), "DOCKER_CONFIG": str(docker_config)}


def render_project(root: Path) -> Path:
    config = root / "cookiecutter.yml"
    settings = {"replay_dir": str(root / "replay"), "cookiecutters_dir": str(root / "downloads")}
    config.write_text(yaml.safe_dump(settings))
    project = cookiecutter(
        str(APP_APPLIANCE), no_input=True, extra_context=ANSWERS, output_dir=str(root), config_file=str(config)
    )
    return Path(project)


def test_app_appliance_builds(tmp_path, cli, registry, docker_engine):
    project = render_project(tmp_path)
    environment = isolated_environment(tmp_path)
    composed = cli("compose", project, "-o", tmp_path / "composed", cwd=tmp_path, env=environment)
    assert composed.returncode == 0, composed.stderr
    config = yaml.safe_load((tmp_path / "composed" / "linuxkit.yml").read_text())
    pulled = [reference for reference in image_references(config) if not reference.startswith(LOCAL_IMAGE_PREFIX)]
    StandInImages(registry.url, make_kernel_image(registry.url)).provide(pulled, [config["kernel"]["image"]])
    tag_busybox_base(docker_engine, BASE_IMAGE, tmp_path / "base-image")

    result = cli(
        "build", project, "-o", tmp_path / "dist", "--cache", tmp_path / "store",
        "--mirror", f"docker.io={registry.host}", "--build-network", "none", "--json",
        cwd=tmp_path, env={**environment, "DOCKER_HOST": docker_engine},
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [(item["component"], item["how"]) for item in report["built"]] == [("shop", "built")]
    assert report["built"][0]["image"].startswith(f"{LOCAL_IMAGE_PREFIX}shop:")
    assert sorted(report["pulled"]) == sorted(pulled)
    assert sorted(Path(row["path"]).name for row in report["outputs"]) == sorted(
        ["shop-box.tar", "shop-box-kernel", "shop-box-initrd.img", "shop-box-cmdline"]
    )
    with tarfile.open(tmp_path / "dist" / "shop-box.tar") as archive:
        hostname = archive.extractfile("etc/hostname").read()
        page = archive.extractfile("containers/services/shop/lower/www/index.html").read().decode()
    assert hostname == b"shop-1\n"
    assert "shop on shop-1" in page
