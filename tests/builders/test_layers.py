"""Layer flattening: whiteouts, opaque directories, replacements, hard links and member types."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from moby_asm.builders.errors import InvalidLayer, UnsupportedLayer
from moby_asm.builders.native.entries import Origin
from moby_asm.builders.native.layers import flatten_layers
from moby_asm.builders.native.streams import StreamRegistry, StreamSource
from moby_asm.builders.native.tarwriter import write_tree
from tests.builders.helpers import (
    BlobFolder,
    Member,
    file,
    folder,
    gnu_sparse_tar,
    hardlink,
    make_layer,
    opaque,
    raw_layer,
    read_tar,
    symlink,
    tar_bytes,
    whiteout,
)


def flatten(tmp_path: Path, layers: list[list[Member]], compression: str = "gzip") -> dict:
    """Flatten `layers` (bottom first), write the tree as a tar and return its members by name."""
    blobs = BlobFolder(tmp_path / "blobs")
    descriptors = [make_layer(blobs, members, compression) for members in layers]
    return flatten_blobs(tmp_path, blobs, [descriptor.digest for descriptor in descriptors])


def flatten_blobs(tmp_path: Path, blobs: BlobFolder, digests: list[str]) -> dict:
    registry = StreamRegistry()
    sources = [StreamSource(blobs.path(digest), "example.org/test:1", digest) for digest in digests]
    tree = flatten_layers(sources, registry, Origin("example.org/test:1", "init[0]"))
    output = tmp_path / "flat.tar"
    with open(output, "wb") as target:
        write_tree(tree, registry, target, tmp_path)
    return read_tar(output)


def test_whiteout_removes_lower_file(tmp_path):
    members = flatten(tmp_path, [[folder("etc"), file("etc/a", "a"), file("etc/b", "b")], [whiteout("etc/a")]])

    assert "etc/a" not in members
    assert members["etc/b"][1] == b"b"
    assert not any(".wh." in name for name in members)


def test_whiteout_of_directory_removes_children(tmp_path):
    lower = [folder("opt"), folder("opt/app"), file("opt/app/x", "x"), folder("opt/app/sub"), file("opt/app/sub/y")]
    members = flatten(tmp_path, [lower, [whiteout("opt/app")]])

    assert sorted(members) == ["opt"]


def test_opaque_directory_hides_lower_children_only(tmp_path):
    lower = [folder("data"), file("data/old", "old"), folder("data/dir"), file("data/dir/deep")]
    upper = [folder("data", mode=0o700), opaque("data"), file("data/new", "new")]
    members = flatten(tmp_path, [lower, upper])

    assert sorted(name for name in members if name.startswith("data/")) == ["data/new"]
    assert members["data"][0].mode == 0o700
    assert members["data/new"][1] == b"new"


def test_whiteout_keeps_same_layer_entry(tmp_path):
    lower = [file("config", "lower")]
    upper = [file("config", "upper"), whiteout("config")]
    members = flatten(tmp_path, [lower, upper])

    assert members["config"][1] == b"upper"


def test_upper_layer_replaces_file(tmp_path):
    members = flatten(tmp_path, [[file("a", "old", mode=0o600)], [file("a", "new", mode=0o640)]])

    assert members["a"][1] == b"new"
    assert members["a"][0].mode == 0o640


def test_file_replacing_directory_removes_children(tmp_path):
    members = flatten(tmp_path, [[folder("x"), file("x/inner")], [file("x", "now a file")]])

    assert "x/inner" not in members
    assert members["x"][1] == b"now a file"


def test_directory_keeps_place_before_children(tmp_path):
    members = flatten(tmp_path, [[folder("d"), file("d/f")], [folder("d", mode=0o750)]])
    names = list(members)

    assert names.index("d") < names.index("d/f")
    assert members["d"][0].mode == 0o750


def test_hard_link_kept_when_target_intact(tmp_path):
    members = flatten(tmp_path, [[file("bin/tool", "code", mode=0o755), hardlink("bin/alias", "bin/tool")]])

    assert members["bin/alias"][0].islnk()
    assert members["bin/alias"][0].linkname == "bin/tool"


def test_hard_link_copied_when_target_replaced(tmp_path):
    lower = [file("bin/tool", "old code", mode=0o755), hardlink("bin/alias", "bin/tool")]
    members = flatten(tmp_path, [lower, [file("bin/tool", "new code", mode=0o755)]])

    assert members["bin/alias"][0].isreg()
    assert members["bin/alias"][1] == b"old code"
    assert members["bin/tool"][1] == b"new code"


def test_hard_link_copied_when_target_deleted(tmp_path):
    lower = [file("lib/a", "shared"), hardlink("lib/b", "lib/a"), hardlink("lib/c", "lib/b")]
    members = flatten(tmp_path, [lower, [whiteout("lib/a")]])

    assert "lib/a" not in members
    assert members["lib/b"][1] == b"shared"
    assert members["lib/c"][0].islnk()
    assert members["lib/c"][0].linkname == "lib/b"


def test_hard_link_copy_from_earlier_stream(tmp_path):
    first = [file("a", "first contents"), hardlink("b", "a"), file("z", "z")]
    members = flatten(tmp_path, [first, [file("a", "second")], [file("late", "late")]])

    assert members["b"][1] == b"first contents"
    assert members["late"][1] == b"late"


def test_uncompressed_and_gzip_layers(tmp_path):
    blobs = BlobFolder(tmp_path / "blobs")
    plain = make_layer(blobs, [file("plain", "p")], compression="none")
    packed = make_layer(blobs, [file("packed", "g")], compression="gzip")
    members = flatten_blobs(tmp_path, blobs, [plain.digest, packed.digest])

    assert members["plain"][1] == b"p"
    assert members["packed"][1] == b"g"


def test_zstd_layer_rejected(tmp_path):
    blobs = BlobFolder(tmp_path / "blobs")
    layer = raw_layer(blobs, b"\x28\xb5\x2f\xfd" + b"\0" * 64)

    with pytest.raises(UnsupportedLayer) as raised:
        flatten_blobs(tmp_path, blobs, [layer.digest])

    assert raised.value.compression == "zstd"
    assert layer.digest in str(raised.value)


def test_empty_layer_has_no_entries(tmp_path):
    blobs = BlobFolder(tmp_path / "blobs")
    empty = raw_layer(blobs, b"")
    members = flatten_blobs(tmp_path, blobs, [empty.digest, make_layer(blobs, [file("a")]).digest])

    assert list(members) == ["a"]


def test_devices_fifos_and_symlinks_kept(tmp_path):
    layer = [
        folder("dev"),
        Member("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        Member("dev/loop0", tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=0),
        Member("run/pipe", tarfile.FIFOTYPE, mode=0o600),
        symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
    ]
    members = flatten(tmp_path, [layer])

    null = members["dev/null"][0]
    assert null.ischr()
    assert (null.devmajor, null.devminor) == (1, 3)
    assert members["dev/loop0"][0].isblk()
    assert members["run/pipe"][0].isfifo()
    assert members["etc/localtime"][0].linkname == "/usr/share/zoneinfo/UTC"
    assert members["run"][0].isdir()


def test_owner_mode_and_xattrs_kept(tmp_path):
    capability = "\x01\x00\x00\x02\x00\x20\x00\x00"
    ping = file("bin/ping", "ping", mode=0o4755, uid=0, gid=0, pax={"SCHILY.xattr.security.capability": capability})
    owned = file("home/user/notes", "n", mode=0o600, uid=1000, gid=1000)
    members = flatten(tmp_path, [[ping, owned]])

    assert members["bin/ping"][0].mode == 0o4755
    assert members["bin/ping"][0].pax_headers["SCHILY.xattr.security.capability"] == capability
    assert (members["home/user/notes"][0].uid, members["home/user/notes"][0].gid) == (1000, 1000)


def test_small_sparse_file_expanded(tmp_path):
    blobs = BlobFolder(tmp_path / "blobs")
    layer = raw_layer(blobs, gnu_sparse_tar("holes", 8192, 4096, b"DATA"))
    members = flatten_blobs(tmp_path, blobs, [layer.digest])

    info, data = members["holes"]
    assert info.size == 8192
    assert data == b"\0" * 4096 + b"DATA" + b"\0" * 4092


def test_aufs_metadata_ignored(tmp_path):
    members = flatten(tmp_path, [[file(".wh..wh.plnk/1.2"), file(".wh..wh.aufs"), file("kept")]])

    assert list(members) == ["kept"]


def test_corrupt_gzip_layer_rejected(tmp_path):
    blobs = BlobFolder(tmp_path / "blobs")
    data = gzip.compress(tar_bytes([file("a", "x" * 5000)]), mtime=0)
    layer = raw_layer(blobs, data[: len(data) // 2])

    with pytest.raises(InvalidLayer) as raised:
        flatten_blobs(tmp_path, blobs, [layer.digest])

    assert raised.value.layer == layer.digest


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("tar_format", ["gnu", "posix"])
def test_gnu_tar_layer_round_trip(tmp_path, tar_format):
    source = tmp_path / "source"
    deep = source / ("long-directory-name-" * 4) / "nested"
    deep.mkdir(parents=True)
    (deep / ("file-with-a-long-name-" * 5)).write_text("long")
    (source / "caf\u00e9.txt").write_text("accent")
    (source / "data").write_bytes(bytes(range(256)) * 40)
    os.link(source / "data", source / "data-link")
    os.symlink("data", source / "data-symlink")
    blobs = BlobFolder(tmp_path / "blobs")
    layer = tmp_path / "layer.tar.gz"
    subprocess.run(["tar", f"--format={tar_format}", "-C", str(source), "-czf", str(layer), "."], check=True)
    digest, _ = blobs.add(layer.read_bytes())

    members = flatten_blobs(tmp_path, blobs, [digest])

    expected = {str(path.relative_to(source)) for path in source.rglob("*")}
    assert set(members) == expected
    linked, regular = sorted(["data", "data-link"], key=lambda name: not members[name][0].islnk())
    assert members[linked][0].linkname == regular, "GNU tar stores the second name as a hard link"
    assert members[regular][1] == bytes(range(256)) * 40
    assert members["data-symlink"][0].linkname == "data"
    assert members["caf\u00e9.txt"][1] == b"accent"
    long_file = str((deep / ("file-with-a-long-name-" * 5)).relative_to(source))
    assert members[long_file][1] == b"long"
