"""Image layers made from .deb files: merge order, determinism and the `paths` mapping."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from local_archive import DebSpec, build_deb

from moby_asm.builders.native.entries import FIXED_MTIME
from moby_asm.debian.layer import UnmatchedPath, select_paths, store_image, unpack_packages, write_tar
from moby_asm.debian.model import DebianSource
from moby_asm.errors import InputError
from moby_asm.store import ContentStore

TOOL_SCRIPT = b"#!/bin/sh\necho tool\n"
CERTIFICATES = {"usr/share/certs/c.crt": b"third\n", "usr/share/certs/a.crt": b"first\n",
                "usr/share/certs/b.crt": b"second\n"}
MODULES = {"usr/lib/mods/6.1/a.ko": b"module a\n", "usr/lib/mods/6.1/net/b.ko": b"module b\n"}
TOOL = DebSpec("tool", "1.0", {"usr/bin/tool": TOOL_SCRIPT, "usr/share/doc/tool/copyright": b"MIT\n",
                               **CERTIFICATES, **MODULES})


def source(paths: dict | None = None) -> DebianSource:
    return DebianSource(suite="bookworm", packages=["tool"], paths=paths or {})


def layer_bytes(debs: list[tuple[str, Path]], scratch: Path, paths: dict | None = None) -> bytes:
    """Return the layer tar that `debs`, unpacked in order and mapped by `paths`, make."""
    scratch.mkdir()
    entries = select_paths(unpack_packages(debs, scratch), source(paths))
    stream = io.BytesIO()
    write_tar(entries, stream)
    return stream.getvalue()


def read_members(data: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    """Return each member of a tar by name, with its data for regular files."""
    members = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            content = archive.extractfile(member).read() if member.isfile() else None
            members[member.name] = (member, content)
    return members


@pytest.fixture
def tool_deb(tmp_path) -> Path:
    (tmp_path / "debs").mkdir()
    return build_deb(TOOL, tmp_path / "debs")


def test_layer_same_for_rebuilt_package(tmp_path):
    (tmp_path / "early").mkdir()
    (tmp_path / "late").mkdir()
    early = build_deb(TOOL, tmp_path / "early", mtime=1_500_000_000)
    late = build_deb(TOOL, tmp_path / "late", mtime=1_700_000_000)

    first = layer_bytes([("tool", early)], tmp_path / "scratch-1")
    second = layer_bytes([("tool", late)], tmp_path / "scratch-2")

    assert early.read_bytes() != late.read_bytes()
    assert first == second


def test_layer_entries_sorted_and_normalized(tmp_path, tool_deb):
    data = layer_bytes([("tool", tool_deb)], tmp_path / "scratch")

    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    names = [member.name for member in members]

    assert names == sorted(names)
    assert "usr/bin/tool" in names
    assert {member.mtime for member in members} == {FIXED_MTIME}
    assert {(member.uid, member.gid, member.uname, member.gname) for member in members} == {(0, 0, "", "")}


def test_stored_image_digest_repeats(tmp_path, tool_deb):
    digests = []
    for run in ("first", "second"):
        store = ContentStore.open(tmp_path / f"store-{run}")
        scratch = tmp_path / f"scratch-{run}"
        scratch.mkdir()
        entries = select_paths(unpack_packages([("tool", tool_deb)], scratch), source())
        digests.append(store_image(store, "moby-asm.local/tool:deb-test", entries, "amd64"))

    first_store = ContentStore.open(tmp_path / "store-first")
    manifest = first_store.read_json(digests[0])
    config = first_store.read_json(manifest["config"]["digest"])

    assert digests[0] == digests[1]
    assert first_store.resolve("moby-asm.local/tool:deb-test").digest == digests[0]
    assert config["architecture"] == "amd64"
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]


def test_later_package_replaces_file(tmp_path):
    (tmp_path / "debs").mkdir()
    base = build_deb(DebSpec("base", files={"etc/app.conf": b"base\n", "etc/base-only": b"kept\n"}), tmp_path / "debs")
    override = build_deb(DebSpec("override", files={"etc/app.conf": b"override\n"}), tmp_path / "debs")

    members = read_members(layer_bytes([("base", base), ("override", override)], tmp_path / "scratch"))

    assert members["etc/app.conf"][1] == b"override\n"
    assert members["etc/base-only"][1] == b"kept\n"
    assert members["etc"][0].isdir()


def test_hard_link_becomes_copy(tmp_path):
    (tmp_path / "debs").mkdir()
    spec = DebSpec("linked", files={"usr/bin/first": TOOL_SCRIPT}, hard_links={"usr/bin/second": "usr/bin/first"})
    deb = build_deb(spec, tmp_path / "debs")

    members = read_members(layer_bytes([("linked", deb)], tmp_path / "scratch"))

    assert members["usr/bin/second"][0].isfile()
    assert members["usr/bin/second"][1] == TOOL_SCRIPT
    assert members["usr/bin/first"][1] == TOOL_SCRIPT


def test_maintainer_script_package_named(tmp_path, tool_deb):
    spec = DebSpec("scripted", files={"etc/scripted": b"x\n"}, postinst="#!/bin/sh\nexit 0\n")
    scripted = build_deb(spec, tmp_path / "debs")
    (tmp_path / "scratch").mkdir()

    unpacked = unpack_packages([("tool", tool_deb), ("scripted", scripted)], tmp_path / "scratch")

    assert unpacked.scripted == ["scripted"]
    assert "etc/scripted" in unpacked.entries


def test_paths_maps_file(tmp_path, tool_deb):
    members = read_members(layer_bytes([("tool", tool_deb)], tmp_path / "scratch", {"bin/tool": "usr/bin/tool"}))

    assert sorted(members) == ["bin", "bin/tool"]
    assert members["bin/tool"][1] == TOOL_SCRIPT
    assert members["bin"][0].isdir()


def test_paths_maps_single_folder(tmp_path, tool_deb):
    members = read_members(layer_bytes([("tool", tool_deb)], tmp_path / "scratch", {"lib/modules": "usr/lib/mods"}))

    assert sorted(members) == ["lib", "lib/modules", "lib/modules/6.1", "lib/modules/6.1/a.ko",
                               "lib/modules/6.1/net", "lib/modules/6.1/net/b.ko"]
    assert members["lib/modules/6.1/net/b.ko"][1] == b"module b\n"
    assert members["lib/modules"][0].isdir()


def test_paths_tar_target(tmp_path, tool_deb):
    members = read_members(layer_bytes([("tool", tool_deb)], tmp_path / "scratch", {"kernel.tar": "usr/lib/mods"}))
    inner = read_members(members["kernel.tar"][1])

    assert sorted(members) == ["kernel.tar"]
    assert sorted(inner) == ["usr", "usr/lib", "usr/lib/mods", "usr/lib/mods/6.1", "usr/lib/mods/6.1/a.ko",
                             "usr/lib/mods/6.1/net", "usr/lib/mods/6.1/net/b.ko"]
    assert inner["usr/lib/mods/6.1/a.ko"][1] == b"module a\n"
    assert {member.mtime for member, _ in inner.values()} == {FIXED_MTIME}


def test_paths_concatenates_files(tmp_path, tool_deb):
    paths = {"etc/ssl/bundle.crt": "usr/share/certs/*.crt"}

    members = read_members(layer_bytes([("tool", tool_deb)], tmp_path / "scratch", paths))

    assert sorted(members) == ["etc", "etc/ssl", "etc/ssl/bundle.crt"]
    assert members["etc/ssl/bundle.crt"][1] == b"first\nsecond\nthird\n"


def test_paths_list_of_patterns(tmp_path, tool_deb):
    paths = {"etc/joined": ["usr/share/certs/b.crt", "usr/bin/tool"]}

    members = read_members(layer_bytes([("tool", tool_deb)], tmp_path / "scratch", paths))

    assert members["etc/joined"][1] == TOOL_SCRIPT + b"second\n"


def test_paths_several_targets(tmp_path, tool_deb):
    paths = {"bin/tool": "usr/bin/tool", "kernel.tar": "usr/lib/mods"}

    members = read_members(layer_bytes([("tool", tool_deb)], tmp_path / "scratch", paths))

    assert sorted(members) == ["bin", "bin/tool", "kernel.tar"]


@pytest.mark.parametrize("pattern", ["usr/bin/missing", "usr/*tool", "bin/tool", "usr/share/certs/*.pem"])
def test_paths_no_match_rejected(tmp_path, tool_deb, pattern):
    with pytest.raises(UnmatchedPath) as raised:
        layer_bytes([("tool", tool_deb)], tmp_path / "scratch", {"out/file": pattern})

    assert isinstance(raised.value, InputError)
    assert "'out/file'" in str(raised.value)
    assert repr(pattern) in str(raised.value)


def test_paths_folders_and_files_rejected(tmp_path, tool_deb):
    with pytest.raises(UnmatchedPath) as raised:
        layer_bytes([("tool", tool_deb)], tmp_path / "scratch", {"out/file": "usr/share/*"})

    assert "not all regular files" in str(raised.value)
    assert "usr/share/certs" in str(raised.value)
