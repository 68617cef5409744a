"""`moby-asm build` end to end: a real registry on 127.0.0.1, images made here, every native format."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml
from fixtures_registry import MissingTool, _run, check_tools, make_busybox_image, push, run_registry

KERNEL_BYTES = b"not a real kernel, but bytes the build must copy unchanged\n"
FORMATS = ["tar", "kernel+initrd", "tar-kernel-initrd", "docker", "oci"]


def make_kernel_image(registry_url: str) -> str:
    """Push an image laid out like LinuxKit's kernel images: /kernel and /kernel.tar with modules."""
    with tempfile.TemporaryDirectory() as work:
        layout, image = Path(work) / "layout", f"{work}/layout:6.6.1"
        _run(["umoci", "init", "--layout", str(layout)])
        _run(["umoci", "new", "--image", image])
        bundle = Path(work) / "bundle"
        _run(["umoci", "unpack", *(["--rootless"] if os.geteuid() else []), "--image", image, str(bundle)])
        (bundle / "rootfs" / "kernel").write_bytes(KERNEL_BYTES)
        modules = io.BytesIO()
        with tarfile.open(fileobj=modules, mode="w") as archive:
            data = b"module\n"
            info = tarfile.TarInfo("lib/modules/6.6.1/test.ko")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        (bundle / "rootfs" / "kernel.tar").write_bytes(modules.getvalue())
        _run(["umoci", "repack", "--image", image, str(bundle)])
        _run(["umoci", "config", "--image", image, "--architecture", "amd64", "--os", "linux"])
        return push(f"oci:{layout}:6.6.1", registry_url, "test/kernel", "6.6.1")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    try:
        check_tools()
    except MissingTool as missing:
        pytest.skip(str(missing))
    registry = run_registry(tmp_path_factory.mktemp("registry"))
    try:
        url = registry.url
        yield {
            "kernel": make_kernel_image(url),
            "init": make_busybox_image(url, "test/init", "1"),
            "hello": make_busybox_image(url, "test/hello", "1", {"capabilities": ["CAP_CHOWN"]}),
            "app": make_busybox_image(url, "test/app", "1"),
        }
    finally:
        registry.stop()


def descriptor(name: str, stage: str, image: str, extra: str = "") -> str:
    return (f"name: {name}\nversions:\n  - version: 1.0.0\n    stage: {stage}\n"
            f"    source:\n      image: {image}\n{extra}")


@pytest.fixture(scope="module")
def project(tmp_path_factory, images) -> Path:
    folder = tmp_path_factory.mktemp("project")
    components = folder / "components"
    components.mkdir()
    (components / "test-kernel.yml").write_text(descriptor(
        "test-kernel", "kernel", images["kernel"], "    kernel:\n      cmdline: console=ttyS0\n"))
    (components / "test-init.yml").write_text(descriptor("test-init", "init", images["init"]))
    (components / "hello.yml").write_text(descriptor(
        "hello", "onboot", images["hello"], "    config:\n      command: [/bin/echo, hello from onboot]\n"))
    (components / "app.yml").write_text(descriptor("app", "service", images["app"]))
    (folder / "assembly.yml").write_text(
        "name: tiny\nrequires: [test-kernel, test-init, hello, app]\n"
        f"outputs: [{', '.join(FORMATS)}]\n"
        "files:\n  - path: etc/motd\n    contents: hello\n    mode: \"0644\"\n")
    return folder


def moby_asm(cli, project: Path, *args):
    return cli(*args, cwd=project, env={"MOBY_ASM_CONFIG": str(project / "no-config.yml")})


@pytest.fixture(scope="module")
def first_build(cli, project, tmp_path_factory):
    cache = tmp_path_factory.mktemp("store")
    result = moby_asm(cli, project, "build", ".", "--cache", cache, "-o", "dist-1", "--json")
    assert result.returncode == 0, result.stderr
    return cache, json.loads(result.stdout)


def test_build_writes_every_format(project, first_build):
    _, report = first_build

    formats = sorted({output["format"] for output in report["outputs"]})

    assert formats == sorted(FORMATS)
    for output in report["outputs"]:
        assert Path(output["path"]).stat().st_size == output["size"]
    assert len(report["pulled"]) == 4


def test_tar_has_linuxkit_layout(project, first_build):
    with tarfile.open(project / "dist-1" / "tiny.tar") as archive:
        names = set(archive.getnames())
        kernel = archive.extractfile("boot/kernel").read()

    assert kernel == KERNEL_BYTES
    assert "boot/cmdline" in names
    assert "lib/modules/6.6.1/test.ko" in names
    assert "bin/busybox" in names
    assert "containers/onboot/000-hello/config.json" in names
    assert "containers/services/app/config.json" in names
    assert "etc/motd" in names


def test_onboot_bundle_merges_label_and_entry(project, first_build):
    with tarfile.open(project / "dist-1" / "tiny.tar") as archive:
        config = json.load(archive.extractfile("containers/onboot/000-hello/config.json"))

    assert config["process"]["args"] == ["/bin/echo", "hello from onboot"]
    assert "CAP_CHOWN" in config["process"]["capabilities"]["bounding"]


def test_initrd_excludes_boot(project, first_build):
    initrd = gzip.decompress((project / "dist-1" / "tiny-initrd.img").read_bytes())
    listing = subprocess.run(["cpio", "-t"], input=initrd, capture_output=True, check=True).stdout.decode()

    assert (project / "dist-1" / "tiny-kernel").read_bytes() == KERNEL_BYTES
    assert (project / "dist-1" / "tiny-cmdline").read_text().strip() == "console=ttyS0"
    assert "bin/busybox" in listing.split()
    assert not [name for name in listing.split() if name.startswith("boot/")]


def test_oci_output_readable_by_skopeo(project, first_build):
    result = subprocess.run(["skopeo", "inspect", f"oci-archive:{project / 'dist-1' / 'tiny-oci.tar'}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        listing = sorted(p.name for p in (project / "dist-1").iterdir())
        pytest.fail(f"skopeo could not read the oci output ({listing}): {result.stderr}")

    assert json.loads(result.stdout)["Os"] == "linux"


def test_rebuild_uses_cache_and_is_identical(cli, project, first_build):
    cache, report = first_build

    result = moby_asm(cli, project, "build", ".", "--cache", cache, "-o", "dist-2", "--json")
    second = json.loads(result.stdout)

    assert result.returncode == 0, result.stderr
    assert second["pulled"] == []
    assert len(second["cached"]) == 4
    first_digests = {Path(o["path"]).name: o["digest"] for o in report["outputs"]}
    second_digests = {Path(o["path"]).name: o["digest"] for o in second["outputs"]}
    assert first_digests == second_digests


def test_offline_build_needs_cached_images(cli, project, tmp_path):
    result = moby_asm(cli, project, "build", ".", "--cache", tmp_path / "empty", "--offline", "-o", "dist-3")

    assert result.returncode == 1
    assert "is not in the cache and --offline forbids pulling it" in result.stderr
    assert "Traceback" not in result.stderr


def test_linuxkit_formats_need_linuxkit(cli, project, first_build, tmp_path):
    cache, _ = first_build

    result = moby_asm(cli, project, "build", ".", "--cache", cache, "--format", "iso-bios", "-o", tmp_path / "d")

    assert result.returncode == 1
    assert "linuxkit is not installed" in result.stderr
    assert "the native builder makes tar, kernel+initrd" in result.stderr


def test_locked_digest_wins_over_a_moved_tag(cli, tmp_path):
    try:
        check_tools()
    except MissingTool as missing:
        pytest.skip(str(missing))
    registry = run_registry(tmp_path / "registry")
    try:
        first_image = make_busybox_image(registry.url, "test/moving", "1", {"capabilities": ["CAP_CHOWN"]})
        components = tmp_path / "project" / "components"
        components.mkdir(parents=True)
        (components / "moving.yml").write_text(descriptor("moving", "service", first_image))
        (tmp_path / "project" / "assembly.yml").write_text("name: moving\nrequires: [moving]\noutputs: [tar]\n")
        assert moby_asm(cli, tmp_path / "project", "lock", ".").returncode == 0
        first = moby_asm(cli, tmp_path / "project", "build", ".", "--cache", tmp_path / "a", "--json")
        assert first.returncode == 0, first.stderr
        pinned = yaml.safe_load((tmp_path / "project" / "assembly.lock").read_text())["components"][0]["source"]
        make_busybox_image(registry.url, "test/moving", "1", {"capabilities": ["CAP_KILL"]})

        second = moby_asm(cli, tmp_path / "project", "build", ".", "--cache", tmp_path / "b", "--json")
    finally:
        registry.stop()

    assert second.returncode == 0, second.stderr
    assert pinned["digest"].startswith("sha256:")
    assert json.loads(second.stdout)["pulled"] == [f"{first_image}@{pinned['digest']}"]
    assert json.loads(second.stdout)["outputs"][0]["digest"] == json.loads(first.stdout)["outputs"][0]["digest"]
