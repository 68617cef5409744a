"""Flatten the layers of an image into one tree of entries, as OCI image layers stack.

Only tar headers are read here. Contents stay in the layer blobs and are copied when the
output is written (see `tarwriter`). Nothing is written to disk, so no member can reach a
path outside the image root. Names that climb out of the root with `..` are rejected,
and absolute names are taken relative to the root. Symlinks are kept as entries and never
followed, so an entry below a symlink (or below a file) is rejected.

Each layer's whiteouts apply to the layers below it before the layer's own entries are
added: `.wh.NAME` deletes NAME, `.wh..wh..opq` empties its directory, and other `.wh..wh.`
names and folders at the root (aufs bookkeeping) are ignored.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass

from moby_asm.builders.errors import InvalidLayer, PathConflict
from moby_asm.builders.native.entries import Entry, Kind, MemberData, Origin, UnsafePath, normalise_path
from moby_asm.builders.native.streams import StreamRegistry, StreamSource, iter_members
from moby_asm.builders.native.tree import FileTree

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
AUFS_METADATA_PREFIX = ".wh..wh."

MAX_SPARSE_FILE_SIZE = 1 << 30
"""Maximum size in bytes of a sparse member, because the output stores its holes as zeros.

NOTE: the limit guards against small layers that announce huge sparse files. It is a
chosen value: LinuxKit expands sparse files of any size.
"""

_KINDS = {
    tarfile.REGTYPE: Kind.FILE,
    tarfile.AREGTYPE: Kind.FILE,
    tarfile.CONTTYPE: Kind.FILE,
    tarfile.GNUTYPE_SPARSE: Kind.FILE,
    tarfile.DIRTYPE: Kind.DIRECTORY,
    tarfile.SYMTYPE: Kind.SYMLINK,
    tarfile.LNKTYPE: Kind.HARDLINK,
    tarfile.CHRTYPE: Kind.CHAR_DEVICE,
    tarfile.BLKTYPE: Kind.BLOCK_DEVICE,
    tarfile.FIFOTYPE: Kind.FIFO,
}

_XATTR_PREFIX = "SCHILY.xattr."


@dataclass(frozen=True)
class _Whiteout:
    path: str
    opaque: bool


def flatten_layers(
    sources: Iterable[StreamSource],
    registry: StreamRegistry,
    origin: Origin,
    *,
    whiteouts: bool = True,
) -> FileTree:
    """Return the tree of an image whose layers are `sources`, bottom first.

    Each layer is registered in `registry`. With `whiteouts` False, `.wh.` names are plain
    entries, as in a tar that is not an image layer.
    """
    tree = FileTree()
    for source in sources:
        stream = registry.register(source)
        entries, removals = _read_layer(source, stream, origin, whiteouts)
        for removal in removals:
            _apply_whiteout(tree, removal)
        for entry, member_name in entries:
            _add_entry(tree, entry, source, member_name)
    return tree


def _read_layer(
    source: StreamSource, stream: int, origin: Origin, whiteouts: bool
) -> tuple[list[tuple[Entry, str]], list[_Whiteout]]:
    entries: list[tuple[Entry, str]] = []
    removals: list[_Whiteout] = []
    with iter_members(source) as members:
        for member in members:
            path = _member_path(source, member.name, member.name)
            if not path:
                continue  # The root directory itself: its metadata is not kept.
            removal = _whiteout(source, member.name, path) if whiteouts else None
            if removal is not None:
                removals.append(removal)
            elif whiteouts and path.startswith(AUFS_METADATA_PREFIX):
                continue  # aufs bookkeeping such as .wh..wh.plnk/, as Docker skips it
            else:
                entries.append((_entry(source, member, path, _member_data(stream, member), origin), member.name))
    return entries, removals


def _member_data(stream: int, member: tarfile.TarInfo) -> MemberData:
    if member.sparse is None:
        return MemberData(stream, member.offset_data, member.size, member.size)
    chunks = tuple((offset, length) for offset, length in member.sparse if length)
    return MemberData(stream, member.offset_data, sum(length for _, length in chunks), member.size, chunks)


def _member_path(source: StreamSource, member_name: str, name: str) -> str:
    try:
        return normalise_path(name)
    except UnsafePath:
        raise InvalidLayer(source.image, source.name, member_name, f"refers to {name!r}, outside the root") from None


def _whiteout(source: StreamSource, member_name: str, path: str) -> _Whiteout | None:
    parent, base = posixpath.split(path)
    if base == OPAQUE_WHITEOUT:
        return _Whiteout(parent, opaque=True)
    if base.startswith(AUFS_METADATA_PREFIX) or not base.startswith(WHITEOUT_PREFIX):
        return None
    target = base[len(WHITEOUT_PREFIX) :]
    if target in ("", ".", ".."):
        raise InvalidLayer(source.image, source.name, member_name, "is a whiteout that names no file")
    return _Whiteout(posixpath.join(parent, target), opaque=False)


def _apply_whiteout(tree: FileTree, removal: _Whiteout) -> None:
    if not removal.opaque:
        tree.remove(removal.path)
        return
    existing = tree.get(removal.path)
    if removal.path == "" or (existing is not None and existing.is_directory):
        tree.remove_children(removal.path)


def _entry(source: StreamSource, member: tarfile.TarInfo, path: str, data: MemberData, origin: Origin) -> Entry:
    kind = _KINDS.get(member.type)
    if kind is None:
        raise InvalidLayer(source.image, source.name, member.name, f"has the unsupported tar type {member.type!r}")
    entry = Entry(
        path,
        kind,
        member.mode & 0o7777,
        origin,
        uid=member.uid,
        gid=member.gid,
        mtime=int(member.mtime),
        uname=member.uname,
        gname=member.gname,
        xattrs={key: value for key, value in sorted(member.pax_headers.items()) if key.startswith(_XATTR_PREFIX)},
    )
    if kind is Kind.FILE:
        _check_sparse(source, member)
        entry.size = member.size
        entry.data = data
    elif kind is Kind.SYMLINK:
        entry.linkname = member.linkname
    elif kind is Kind.HARDLINK:
        entry.linkname = _member_path(source, member.name, member.linkname)
    elif kind in (Kind.CHAR_DEVICE, Kind.BLOCK_DEVICE):
        entry.devmajor, entry.devminor = member.devmajor, member.devminor
    return entry


def _check_sparse(source: StreamSource, member: tarfile.TarInfo) -> None:
    if member.sparse is not None and member.size > MAX_SPARSE_FILE_SIZE:
        raise InvalidLayer(
            source.image,
            source.name,
            member.name,
            f"is a sparse file of {member.size} bytes, more than the {MAX_SPARSE_FILE_SIZE} bytes allowed",
        )


def _add_entry(tree: FileTree, entry: Entry, source: StreamSource, member_name: str) -> None:
    if entry.kind is Kind.HARDLINK:
        _resolve_hardlink(tree, entry, source, member_name)
    try:
        tree.add(entry)
    except PathConflict as conflict:
        raise InvalidLayer(source.image, source.name, member_name, conflict.reason) from None


def _resolve_hardlink(tree: FileTree, entry: Entry, source: StreamSource, member_name: str) -> None:
    linked = tree.get(entry.linkname)
    if linked is None:
        reason = f"is a hard link to {entry.linkname!r}, which no earlier member or layer contains"
        raise InvalidLayer(source.image, source.name, member_name, reason)
    if linked.is_directory:
        raise InvalidLayer(
            source.image, source.name, member_name, f"is a hard link to the directory {entry.linkname!r}"
        )
    entry.link_entry = linked
    entry.link_target = linked.link_target if linked.kind is Kind.HARDLINK else linked
