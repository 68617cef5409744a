"""Output formats: reproducible bytes, the initrd cpio, and archives that skopeo and umoci read."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from moby_asm.builders.native import FORMATS
from tests.builders.helpers import build, file, folder, hardlink, kernel_tar, read_tar, standard_config

TOOL_TIMEOUT_SECONDS = 120


def rich_config(images, tmp_path: Path) -> dict:
    """The standard config plus hard links, a file from disk and volumes, to cover more of the writer."""
    images.add(
        "example.org/linked:1", [[folder("bin"), file("bin/a", "A"), hardlink("bin/b", "bin/a")], [file("bin/a", "A2")]]
    )
    source = tmp_path / "source.txt"
    source.write_text("from disk\n")
    config = standard_config()
    config["onshutdown"] = [{"name": "linked", "image": "example.org/linked:1", "command": ["/bin/a"]}]
    config["files"].append({"path": "etc/from-disk", "source": str(source), "mode": "0644"})
    config["volumes"] = [{"name": "layout", "image": "example.org/linked:1", "format": "oci"}]
    return config


def run_tool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, cwd=cwd, check=False)


def test_builds_are_bit_for_bit_identical(images, tmp_path):
    config = rich_config(images, tmp_path)
    first = build(images, config, tmp_path / "first", list(FORMATS))
    second = build(images, config, tmp_path / "second", list(FORMATS))

    assert [output.path.name for output in first] == [output.path.name for output in second]
    assert {output.format for output in first} == set(FORMATS)
    for first_output, second_output in zip(first, second, strict=True):
        name = first_output.path.name
        assert first_output.path.read_bytes() == second_output.path.read_bytes(), f"{name} differs between builds"
        assert first_output.digest == second_output.digest


def test_outputs_report_size_and_digest(images, tmp_path):
    outputs = build(images, standard_config(), tmp_path / "out", list(FORMATS))

    names = {output.path.name for output in outputs}
    assert names == {
        "demo.tar",
        "demo-kernel",
        "demo-initrd.img",
        "demo-cmdline",
        "demo-initrd.tar",
        "demo-docker.tar",
        "demo-oci.tar",
    }
    for output in outputs:
        data = output.path.read_bytes()
        assert output.size == len(data)
        assert output.digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert output.path.stat().st_mode & 0o777 == 0o644
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(names), "no temporary files remain"


def test_kernel_and_cmdline_files(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["kernel+initrd"])

    assert (tmp_path / "out" / "demo-kernel").read_bytes() == b"KERNEL" * 100
    assert (tmp_path / "out" / "demo-cmdline").read_text() == "console=ttyS0"


@pytest.mark.skipif(shutil.which("cpio") is None, reason="needs GNU cpio (Debian package cpio)")
def test_initrd_cpio_listing_excludes_boot(images, tmp_path):
    build(images, rich_config(images, tmp_path), tmp_path / "out", ["tar", "kernel+initrd"])
    initrd = (tmp_path / "out" / "demo-initrd.img").read_bytes()
    listing = subprocess.run(
        ["cpio", "-t", "--quiet"],
        input=gzip.decompress(initrd),
        capture_output=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=True,
    )
    names = listing.stdout.decode().splitlines()
    tar_names = [name for name in read_tar(tmp_path / "out" / "demo.tar") if not name.startswith("boot/")]

    assert names == tar_names
    assert "boot" in names
    assert not any(name.startswith("boot/") for name in names)
    assert "containers/onboot/000-hello/rootfs/bin/busybox" in names
    assert len(initrd) % 4 == 0


@pytest.mark.skipif(shutil.which("cpio") is None, reason="needs GNU cpio (Debian package cpio)")
def test_initrd_extracts_contents_and_links(images, tmp_path):
    build(images, rich_config(images, tmp_path), tmp_path / "out", ["kernel+initrd"])
    target = tmp_path / "extracted"
    target.mkdir()
    initrd = gzip.decompress((tmp_path / "out" / "demo-initrd.img").read_bytes())
    subprocess.run(
        ["cpio", "-id", "--quiet"],
        input=initrd,
        cwd=target,
        capture_output=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=True,
    )

    assert (target / "etc/motd").read_text() == "hi\n"
    assert (target / "etc/from-disk").read_text() == "from disk\n"
    assert os.readlink(target / "etc/resolv.conf") == "/run/resolvconf/resolv.conf"
    linked = target / "containers/onshutdown/000-linked/lower/bin"
    assert (linked / "a").read_text() == "A2"
    assert (linked / "b").read_text() == "A", "a hard link whose target was replaced keeps the old contents"


def test_initrd_gzip_header_is_fixed(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["kernel+initrd"])
    header = (tmp_path / "out" / "demo-initrd.img").read_bytes()[:10]

    assert header[:4] == b"\x1f\x8b\x08\x00", "gzip, deflate, no file name"
    assert header[4:8] == b"\0\0\0\0", "modification time 0"


def test_ucode_prepended_to_initrd(images, tmp_path):
    images.add(
        "example.org/kernel:3",
        [[file("kernel", "K"), file("kernel.tar", kernel_tar()), file("ucode.cpio", "UCODE123")]],
    )
    config = standard_config(kernel={"image": "example.org/kernel:3", "ucode": "ucode.cpio"})
    build(images, config, tmp_path / "out", ["kernel+initrd", "tar-kernel-initrd"])
    initrd = (tmp_path / "out" / "demo-initrd.img").read_bytes()

    assert initrd.startswith(b"UCODE123\x1f\x8b")
    members = read_tar(tmp_path / "out" / "demo-initrd.tar")
    assert members["ucode.cpio"][1] == b"UCODE123"
    assert members["initrd.img"][1] == initrd[len(b"UCODE123") :]


def test_tar_kernel_initrd_members(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["kernel+initrd", "tar-kernel-initrd"])
    members = read_tar(tmp_path / "out" / "demo-initrd.tar")

    assert list(members) == ["kernel", "initrd.img", "cmdline"]
    assert members["kernel"][1] == b"KERNEL" * 100
    assert members["cmdline"][1] == b"console=ttyS0"
    assert members["initrd.img"][1] == (tmp_path / "out" / "demo-initrd.img").read_bytes()
    assert members["kernel"][0].mode == 0o644


def test_config_without_kernel_writes_initrd_only(images, tmp_path):
    config = standard_config()
    del config["kernel"]
    outputs = build(images, config, tmp_path / "out", ["kernel+initrd"])

    assert [output.path.name for output in outputs] == ["demo-initrd.img"]


def test_docker_archive_layout(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["tar", "docker"])
    members = read_tar(tmp_path / "out" / "demo-docker.tar")
    manifest = json.loads(members["manifest.json"][1])

    assert manifest[0]["RepoTags"] == ["demo:latest"]
    config = json.loads(members[manifest[0]["Config"]][1])
    assert config["config"]["Entrypoint"] == ["/bin/rc.init"]
    layer = members[manifest[0]["Layers"][0]][1]
    assert layer == (tmp_path / "out" / "demo.tar").read_bytes()
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
def test_skopeo_reads_docker_and_oci_archives(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["docker", "oci"])

    for transport, name in (("docker-archive", "demo-docker.tar"), ("oci-archive", "demo-oci.tar")):
        result = run_tool("skopeo", "inspect", f"{transport}:{tmp_path / 'out' / name}")
        assert result.returncode == 0, result.stderr
        inspected = json.loads(result.stdout)
        assert inspected["Architecture"] == "amd64"
        assert inspected["Os"] == "linux"
        assert len(inspected["Layers"]) == 1


@pytest.mark.skipif(shutil.which("umoci") is None or os.geteuid() != 0, reason="needs umoci and root")
def test_umoci_unpacks_oci_archive(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["oci"])
    layout = tmp_path / "layout"
    with tarfile.open(tmp_path / "out" / "demo-oci.tar") as archive:
        archive.extractall(layout, filter="data")
    bundle = tmp_path / "bundle"

    result = run_tool("umoci", "unpack", "--image", f"{layout}:latest", str(bundle))

    assert result.returncode == 0, result.stderr
    assert (bundle / "rootfs/boot/kernel").read_bytes() == b"KERNEL" * 100
    assert (bundle / "rootfs/containers/onboot/000-hello/rootfs/bin/busybox").stat().st_mode & 0o111
    assert json.loads((bundle / "config.json").read_text())["process"]["args"] == ["/bin/rc.init"]


def test_oci_layer_is_gzip_rootfs(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["tar", "oci"])
    members = read_tar(tmp_path / "out" / "demo-oci.tar")
    index = json.loads(members["index.json"][1])
    manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads(members[manifest_name][1])
    layer_name = "blobs/sha256/" + manifest["layers"][0]["digest"].removeprefix("sha256:")

    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert gzip.decompress(members[layer_name][1]) == (tmp_path / "out" / "demo.tar").read_bytes()
    assert json.loads(members["oci-layout"][1]) == {"imageLayoutVersion": "1.0.0"}
