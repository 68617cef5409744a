"""The root filesystem tar: LinuxKit's order and paths, bundles, image changes, files and volumes."""

from __future__ import annotations

import json
import tarfile

import pytest
import yaml

from moby_asm.builders.errors import (
    InvalidBuildConfig,
    MissingImageContent,
    PathConflict,
    UnsupportedFormat,
)
from moby_asm.builders.native.entries import FIXED_MTIME
from tests.builders.helpers import (
    MTIME,
    Images,
    build,
    busybox_members,
    file,
    folder,
    hardlink,
    kernel_tar,
    read_tar,
    standard_config,
    symlink,
    tar_names,
)


def build_tar(images: Images, tmp_path, config: dict) -> dict:
    build(images, config, tmp_path / "out", ["tar"])
    return read_tar(tmp_path / "out" / "demo.tar")


def test_sections_in_linuxkit_order(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["tar"])
    names = tar_names(tmp_path / "out" / "demo.tar")

    def first(prefix: str) -> int:
        return next(index for index, name in enumerate(names) if name.startswith(prefix))

    assert names[:3] == ["boot", "boot/cmdline", "boot/kernel"]
    assert first("lib/modules") < first("etc/issue") < first("containers/onboot") < first("containers/services")
    assert names[-1] == "etc/motd"
    assert len(names) == len(set(names)), "every path appears once"


def test_kernel_files(images, tmp_path):
    members = build_tar(images, tmp_path, standard_config())

    assert members["boot/cmdline"][1] == b"console=ttyS0"
    assert members["boot/kernel"][1] == b"KERNEL" * 100
    assert members["boot/kernel"][0].mode == 0o600
    assert members["lib/modules/modules.dep"][1] == b"kernel modules\n"
    assert members["boot"][0].mtime == FIXED_MTIME


def test_kernel_binary_ucode_and_no_tar(images, tmp_path):
    images.add(
        "example.org/kernel:2",
        [[file("bzImage", "BZ"), file("intel-ucode.cpio", "UCODE"), file("kernel.tar", kernel_tar())]],
    )
    kernel = {"image": "example.org/kernel:2", "binary": "bzImage", "ucode": "intel-ucode.cpio", "tar": "none"}
    members = build_tar(images, tmp_path, standard_config(kernel=kernel))

    assert members["boot/kernel"][1] == b"BZ"
    assert members["boot/ucode.cpio"][1] == b"UCODE"
    assert members["boot/cmdline"][1] == b""
    assert "lib/modules" not in members


def test_missing_kernel_file_rejected(images, tmp_path):
    kernel = {"image": "example.org/kernel:1", "binary": "vmlinuz"}

    with pytest.raises(MissingImageContent) as raised:
        build(images, standard_config(kernel=kernel), tmp_path / "out", ["tar"])

    assert raised.value.path == "vmlinuz"


def test_bundle_paths_per_section(images, tmp_path):
    images.add("example.org/tool:1", [busybox_members("true")], cmd=["/bin/true"])
    config = standard_config(
        onboot=[{"name": "first", "image": "example.org/busybox:1"}, {"name": "second", "image": "example.org/tool:1"}],
        onshutdown=[{"name": "bye", "image": "example.org/busybox:1"}],
        services=[{"name": "sshd", "image": "example.org/tool:1"}],
    )
    members = build_tar(images, tmp_path, config)

    for folder_name in (
        "containers/onboot/000-first",
        "containers/onboot/001-second",
        "containers/onshutdown/000-bye",
        "containers/services/sshd",
    ):
        assert f"{folder_name}/config.json" in members
        assert f"{folder_name}/runtime.json" in members


def test_writable_bundle_overlay_folders(images, tmp_path):
    config = standard_config(onboot=[], services=[{"name": "getty", "image": "example.org/busybox:1"}])
    members = build_tar(images, tmp_path, config)
    bundle = "containers/services/getty"

    assert members[f"{bundle}/lower/bin/busybox"][0].mode == 0o755
    assert members[f"{bundle}/tmp"][0].isdir()
    assert members[f"{bundle}/rootfs"][0].isdir()
    assert not any(name.startswith(f"{bundle}/rootfs/") for name in members)
    runtime = json.loads(members[f"{bundle}/runtime.json"][1])
    assert runtime["mounts"][2]["options"][0] == f"lowerdir=/{bundle}/lower"
    spec = json.loads(members[f"{bundle}/config.json"][1])
    assert spec["process"]["args"] == ["/bin/sh"]
    assert "readonly" not in spec["root"]


def test_read_only_bundle_unpacks_into_rootfs(images, tmp_path):
    members = build_tar(images, tmp_path, standard_config(services=[]))
    bundle = "containers/onboot/000-hello"

    assert f"{bundle}/rootfs/bin/busybox" in members
    assert f"{bundle}/lower" not in members
    assert f"{bundle}/tmp" not in members
    runtime = json.loads(members[f"{bundle}/runtime.json"][1])
    assert runtime["mounts"][0] == {
        "destination": f"/{bundle}/rootfs",
        "source": f"/{bundle}/rootfs",
        "options": ["bind"],
    }


def test_shared_image_unpacked_once(images, tmp_path):
    members = build_tar(images, tmp_path, standard_config())

    assert not any(name.startswith("containers/services/getty/lower") for name in members)
    runtime = json.loads(members["containers/services/getty/runtime.json"][1])
    assert runtime["mounts"][2]["options"][0] == "lowerdir=/containers/onboot/000-hello/rootfs"


def test_init_image_changes(images, tmp_path):
    images.add(
        "example.org/init:2",
        [[file(".dockerenv"), folder("etc"), file("etc/hostname", "build-host"), file("etc/hosts", "1.2.3.4 x")]],
    )
    members = build_tar(images, tmp_path, standard_config(init=["example.org/init:2"]))

    assert ".dockerenv" not in members
    assert "etc/hostname" not in members
    assert members["etc/hosts"][1].startswith(b"127.0.0.1       localhost\n")
    assert members["etc/resolv.conf"][0].issym()
    assert members["etc/resolv.conf"][0].linkname == "/run/resolvconf/resolv.conf"
    assert members["etc/mtab"][0].linkname == "/proc/mounts"
    assert {"dev", "dev/pts", "dev/shm", "proc", "sys"} <= set(members)


def test_bundle_image_gets_resolv_conf_file(images, tmp_path):
    members = build_tar(images, tmp_path, standard_config(services=[]))
    resolv_conf = members["containers/onboot/000-hello/rootfs/etc/resolv.conf"]

    assert resolv_conf[0].isreg()
    assert resolv_conf[1] == b"\n# no resolv.conf configured\n"


def test_timestamps_owner_and_pax_records(images, tmp_path):
    members = build_tar(images, tmp_path, standard_config())
    issue, _ = members["etc/issue"]
    config_json, _ = members["containers/onboot/000-hello/config.json"]

    assert issue.mtime == MTIME
    assert issue.pax_headers["LINUXKIT.source"] == "example.org/init:1"
    assert issue.pax_headers["LINUXKIT.location"] == "init[0]"
    assert config_json.mtime == FIXED_MTIME
    assert (config_json.uid, config_json.gid, config_json.mode) == (0, 0, 0o644)
    assert config_json.pax_headers["LINUXKIT.location"] == "onboot[0]"
    assert members["etc/motd"][0].pax_headers["LINUXKIT.source"] == "linuxkit.files"


def test_files_modes_parents_and_owners(images, tmp_path):
    files = [
        {"path": "/etc/app/app.conf", "contents": "x"},
        {"path": "var/lib/app", "directory": True},
        {"path": "etc/app/current", "symlink": "app.conf", "mode": "0777"},
        {"path": "srv/keys/key", "contents": "k", "mode": "0640", "uid": "hello", "gid": 7},
    ]
    members = build_tar(images, tmp_path, standard_config(files=files))

    assert members["etc/app/app.conf"][0].mode == 0o600
    assert members["etc/app"][0].mode == 0o700
    assert members["etc"][0].mode == 0o755, "an existing parent keeps its mode"
    assert members["var/lib/app"][0].mode == 0o700
    assert members["etc/app/current"][0].linkname == "app.conf"
    key = members["srv/keys/key"][0]
    assert (key.mode, key.uid, key.gid) == (0o640, 100, 7)
    assert (members["srv/keys"][0].mode, members["srv/keys"][0].uid) == (0o750, 100)


def test_files_later_entry_wins(images, tmp_path):
    files = [{"path": "etc/issue", "contents": "from files\n", "mode": "0644"}]
    build(images, standard_config(files=files), tmp_path / "out", ["tar"])
    names = tar_names(tmp_path / "out" / "demo.tar")
    members = read_tar(tmp_path / "out" / "demo.tar")

    assert names.count("etc/issue") == 1
    assert members["etc/issue"][1] == b"from files\n"
    assert names.index("etc/issue") > names.index("containers/onboot")


def test_files_source_optional_and_metadata(images, tmp_path):
    source = tmp_path / "authorized_keys"
    source.write_text("ssh-ed25519 AAAA test\n")
    config = standard_config()
    config["files"] = [
        {"path": "root/.ssh/authorized_keys", "source": str(source)},
        {"path": "etc/missing", "source": str(tmp_path / "absent"), "optional": True},
        {"path": "etc/linuxkit-config", "metadata": "yaml"},
    ]
    members = build_tar(images, tmp_path, config)

    assert members["root/.ssh/authorized_keys"][1] == b"ssh-ed25519 AAAA test\n"
    assert "etc/missing" not in members
    assert yaml.safe_load(members["etc/linuxkit-config"][1]) == config


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"path": "../outside", "contents": "x"}, "leaves the root"),
        ({"path": "etc/x", "source": "/nonexistent/moby-asm"}, "not a readable file"),
        ({"path": "etc/resolv.conf/x", "contents": "x"}, "is a symlink"),
        ({"path": "etc/y", "contents": "x", "uid": "nobody"}, "'nobody'"),
        ({"path": "etc/z", "contents": "x", "mode": "rw"}, "invalid mode"),
    ],
)
def test_invalid_files_rejected(images, tmp_path, spec, message):
    with pytest.raises(InvalidBuildConfig) as raised:
        build(images, standard_config(files=[spec]), tmp_path / "out", ["tar"])

    assert message in str(raised.value)
    assert raised.value.where.startswith("files[0]")


def test_apk_databases_of_init_images_merged(images, tmp_path):
    images.add("example.org/apk-a:1", [[file("lib/apk/db/installed", "P:a\nV:1")]])
    images.add("example.org/apk-b:1", [[file("lib/apk/db/installed", "P:b\nV:2")]])
    members = build_tar(images, tmp_path, standard_config(init=["example.org/apk-a:1", "example.org/apk-b:1"]))

    assert members["lib/apk/db/installed"][1] == b"P:a\nV:1\n\nP:b\nV:2\n\n"


def test_volumes_layout_and_binds(images, tmp_path):
    images.add("example.org/data:1", [[file("seed", "seed")]])
    config = standard_config(
        volumes=[
            {"name": "seeded", "image": "example.org/data:1"},
            {"name": "empty"},
            {"name": "layout", "image": "example.org/data:1", "format": "oci"},
        ],
        services=[{"name": "app", "image": "example.org/busybox:1", "binds": ["seeded:/data"]}],
    )
    members = build_tar(images, tmp_path, config)
    names = list(members)

    assert members["containers/volumes/seeded/lower/seed"][1] == b"seed"
    assert {"containers/volumes/empty/tmp", "containers/volumes/empty/merged"} <= set(names)
    index = json.loads(members["containers/volumes/layout/lower/index.json"][1])
    manifest_digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    assert f"containers/volumes/layout/lower/blobs/sha256/{manifest_digest}" in members
    assert names.index("containers/volumes/seeded") < names.index("containers/onboot")
    spec = json.loads(members["containers/services/app/config.json"][1])
    data_mount = next(mount for mount in spec["mounts"] if mount["destination"] == "/data")
    assert data_mount["source"] == "/containers/volumes/seeded/merged"


def test_image_conflicting_with_earlier_section_rejected(images, tmp_path):
    images.add("example.org/init:3", [[file("lib", "a file where the kernel put modules")]])

    with pytest.raises(PathConflict) as raised:
        build(images, standard_config(init=["example.org/init:3"]), tmp_path / "out", ["tar"])

    assert raised.value.path == "lib"
    assert "kernel" in raised.value.reason


def test_container_name_with_slash_rejected(images, tmp_path):
    config = standard_config(onboot=[{"name": "../escape", "image": "example.org/busybox:1"}])

    with pytest.raises(InvalidBuildConfig) as raised:
        build(images, config, tmp_path / "out", ["tar"])

    assert raised.value.where == "onboot[0] (../escape)"


def test_unknown_format_rejected(images, tmp_path):
    with pytest.raises(UnsupportedFormat) as raised:
        build(images, standard_config(), tmp_path / "out", ["iso-efi"])

    assert raised.value.format == "iso-efi"


def test_tar_members_are_relative(images, tmp_path):
    build(images, standard_config(), tmp_path / "out", ["tar"])

    with tarfile.open(tmp_path / "out" / "demo.tar") as archive:
        names = archive.getnames()
    assert not any(name.startswith("/") or ".." in name.split("/") for name in names)


def test_hard_link_target_replaced_by_files(images, tmp_path):
    images.add(
        "example.org/init:4",
        [[folder("bin"), file("bin/a", "original"), hardlink("bin/b", "bin/a"), file("bin/z", "z")]],
    )
    config = standard_config(
        init=["example.org/init:4"], files=[{"path": "bin/a", "contents": "replaced", "mode": "0755"}]
    )
    members = build_tar(images, tmp_path, config)

    assert members["bin/a"][1] == b"replaced"
    assert members["bin/b"][0].isreg()
    assert members["bin/b"][1] == b"original"
    assert members["bin/z"][1] == b"z"


def test_implicit_directory_keeps_earlier_metadata(images, tmp_path):
    images.add("example.org/etc-owner:1", [[folder("opt", mode=0o700, uid=5)]])
    images.add("example.org/no-dirs:1", [[file("opt/tool", "t")]])
    members = build_tar(images, tmp_path, standard_config(init=["example.org/etc-owner:1", "example.org/no-dirs:1"]))

    assert (members["opt"][0].mode, members["opt"][0].uid) == (0o700, 5)
    assert members["opt/tool"][1] == b"t"


def test_entries_below_earlier_symlink_rejected(images, tmp_path):
    images.add("example.org/merged-usr:1", [[folder("usr"), folder("usr/lib"), symlink("lib64", "usr/lib")]])
    images.add("example.org/no-dirs:2", [[file("lib64/libx.so", "x")]])

    with pytest.raises(PathConflict) as raised:
        build(
            images,
            standard_config(init=["example.org/merged-usr:1", "example.org/no-dirs:2"]),
            tmp_path / "out",
            ["tar"],
        )

    assert raised.value.path == "lib64"
    assert "symlink" in raised.value.reason
