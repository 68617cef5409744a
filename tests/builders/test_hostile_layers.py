"""Layers built to escape the root: each is rejected or kept inside, and no output is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from moby_asm.builders.errors import InvalidLayer
from tests.builders.helpers import (
    Images,
    build,
    file,
    folder,
    gnu_sparse_tar,
    hardlink,
    make_image,
    raw_layer,
    read_tar,
    standard_config,
    symlink,
    whiteout,
)

ROOTFS = "containers/onboot/000-hostile/rootfs"


def hostile_config() -> dict:
    entry = {"name": "hostile", "image": "example.org/hostile:1", "command": ["/bin/true"], "readonly": True}
    return standard_config(onboot=[entry], services=[])


def build_hostile(images: Images, tmp_path: Path, layers: list[list]) -> Path:
    """Build the standard config with an onboot container made of `layers` and return the output folder."""
    images.add("example.org/hostile:1", layers)
    output = tmp_path / "out"
    build(images, hostile_config(), output, ["tar", "kernel+initrd"])
    return output


def assert_rejected(images: Images, tmp_path: Path, layers: list[list], reason: str) -> InvalidLayer:
    output = tmp_path / "out"
    with pytest.raises(InvalidLayer) as raised:
        build_hostile(images, tmp_path, layers)
    assert reason in raised.value.reason
    assert raised.value.image == "example.org/hostile:1"
    assert list(output.iterdir()) == [], "a failed build must leave no output or scratch files"
    return raised.value


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def test_path_traversal_rejected(images, tmp_path):
    before = files_under(tmp_path.parent)
    error = assert_rejected(images, tmp_path, [[file("../../escaped-by-layer", "x")]], "outside the root")

    assert error.member == "../../escaped-by-layer"
    assert not (tmp_path.parent / "escaped-by-layer").exists()
    assert not any("escaped-by-layer" in name for name in files_under(tmp_path.parent) - before)


def test_traversal_inside_root_normalised(images, tmp_path):
    output = build_hostile(images, tmp_path, [[folder("a"), file("a/../b", "inside")]])
    members = read_tar(output / "demo.tar")

    assert members[f"{ROOTFS}/b"][1] == b"inside"


def test_absolute_names_stay_inside(images, tmp_path):
    output = build_hostile(images, tmp_path, [[file("/etc/moby-asm-absolute-test", "abs"), file("//twice", "t")]])
    members = read_tar(output / "demo.tar")

    assert members[f"{ROOTFS}/etc/moby-asm-absolute-test"][1] == b"abs"
    assert members[f"{ROOTFS}/twice"][1] == b"t"
    assert not Path("/etc/moby-asm-absolute-test").exists()
    assert not any(name.startswith("/") for name in members)


def test_symlink_outside_kept_not_followed(images, tmp_path):
    output = build_hostile(images, tmp_path, [[symlink("escape", "../../../../../../tmp"), symlink("abs", "/etc")]])
    members = read_tar(output / "demo.tar")

    assert members[f"{ROOTFS}/escape"][0].issym()
    assert members[f"{ROOTFS}/escape"][0].linkname == "../../../../../../tmp"
    assert members[f"{ROOTFS}/abs"][0].linkname == "/etc"


def test_write_through_symlink_rejected(images, tmp_path):
    layers = [[symlink("escape", str(tmp_path))], [file("escape/pwned", "owned")]]
    assert_rejected(images, tmp_path, layers, "'escape' is a symlink")

    assert not (tmp_path / "pwned").exists()


def test_write_through_symlink_same_layer_rejected(images, tmp_path):
    layers = [[symlink("etc", "/etc"), file("etc/shadow", "owned")]]
    assert_rejected(images, tmp_path, layers, "is a symlink")


def test_entry_below_file_rejected(images, tmp_path):
    assert_rejected(images, tmp_path, [[file("plain", "x"), file("plain/child", "y")]], "'plain' is a file")


@pytest.mark.parametrize("name", [".wh..", ".wh...", "dir/.wh.."])
def test_whiteout_of_parent_rejected(images, tmp_path, name):
    assert_rejected(images, tmp_path, [[folder("dir"), file("dir/keep")], [file(name)]], "names no file")


def test_whiteout_outside_root_rejected(images, tmp_path):
    assert_rejected(images, tmp_path, [[file("keep")], [file("../.wh.etc")]], "outside the root")


def test_whiteout_through_symlink_changes_nothing(images, tmp_path):
    layers = [[folder("real"), file("real/data", "d"), symlink("link", "real")], [whiteout("link/data")]]
    output = build_hostile(images, tmp_path, layers)
    members = read_tar(output / "demo.tar")

    assert members[f"{ROOTFS}/real/data"][1] == b"d"
    assert members[f"{ROOTFS}/link"][0].issym()


def test_hard_link_outside_root_rejected(images, tmp_path):
    error = assert_rejected(images, tmp_path, [[hardlink("passwd", "../../etc/passwd")]], "outside the root")

    assert error.member == "passwd"


def test_hard_link_to_host_path_rejected(images, tmp_path):
    assert_rejected(images, tmp_path, [[hardlink("passwd", "/etc/passwd")]], "no earlier member")


def test_hard_link_to_directory_rejected(images, tmp_path):
    assert_rejected(images, tmp_path, [[folder("d"), hardlink("link", "d")]], "hard link to the directory")


def test_hard_link_absolute_name_resolved_inside(images, tmp_path):
    output = build_hostile(images, tmp_path, [[file("etc/passwd", "root:x:0:0"), hardlink("copy", "/etc/passwd")]])
    members = read_tar(output / "demo.tar")

    assert members[f"{ROOTFS}/copy"][0].linkname == f"{ROOTFS}/etc/passwd"


def test_huge_sparse_file_rejected(images, tmp_path):
    layer = raw_layer(images.blobs, gnu_sparse_tar("huge", 4 * 2**30, 2**30, b"tail"))
    images.add_image(make_image(images.blobs, "example.org/hostile:1", [layer]))
    output = tmp_path / "out"

    with pytest.raises(InvalidLayer) as raised:
        build(images, hostile_config(), output, ["tar"])

    assert "sparse" in raised.value.reason
    assert list(output.iterdir()) == []
